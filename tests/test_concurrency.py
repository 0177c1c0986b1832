"""Concurrent runs on one tree: Snakemake's directory lock refuses a second run that would write the same files,
while disjoint targets and dry runs go ahead (the README's "Concurrent runs" lists what is safe).

A tiny Snakefile in a temporary folder stands in for the project's (whose planning alone takes a minute): the
lock is Snakemake's and the project's profile leaves it on; the test pins down the behaviour the README states.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from wsss.config import REPO_ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SNAKEFILE = """
rule slow:
    output: "slow.txt"
    shell: "sleep 60; echo done > {output}"

rule quick:
    output: "quick.txt"
    shell: "echo done > {output}"
"""
LOCKED = "Error: Directory cannot be locked"


def snakemake(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "-c1", *args], cwd=folder, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def running(tmp_path):
    """A Snakemake run of ``slow.txt`` in progress (its lock taken); killed at the end."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    process = subprocess.Popen([SNAKEMAKE, "-c1", "slow.txt"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.monotonic() + 60
    while not (locks.is_dir() and any(locks.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.2)
    yield tmp_path, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_second_run_of_the_same_target_fails_at_once_with_a_clear_message(running):
    folder, _ = running
    start = time.monotonic()
    result = snakemake(folder, "slow.txt")
    assert result.returncode != 0 and LOCKED in result.stdout + result.stderr
    assert time.monotonic() - start < 30  # refused after planning, not after the first run ends
    assert not (folder / "slow.txt").exists()


def test_disjoint_targets_and_dry_runs_go_ahead(running):
    folder, process = running
    assert snakemake(folder, "quick.txt").returncode == 0 and (folder / "quick.txt").is_file()
    dry = snakemake(folder, "-n", "slow.txt")
    assert dry.returncode == 0 and "slow" in dry.stdout
    assert process.poll() is None  # the first run is untouched


def test_a_killed_run_leaves_a_lock_that_unlock_removes(running):
    folder, process = running
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    refused = snakemake(folder, "slow.txt")
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr
    assert snakemake(folder, "--unlock").returncode == 0
    assert snakemake(folder, "-n", "slow.txt").returncode == 0


def test_the_project_profile_keeps_the_lock():
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert not profile.get("nolock") and not profile.get("no-lock")
