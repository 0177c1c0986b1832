"""Per-job logs: a stage's log file holds plain progress lines with rate and ETA, and Snakemake (with the
project's profile) prints a failed job's log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.synthetic_run import make_synthetic_run
from wsss.config import REPO_ROOT

PROGRESS = re.compile(r"^\[export_pseudolabels\] (\d+)/4 images \(\d+\.\d%\) \d+\.\d\d images/s, "
                      r"elapsed \d+s, ETA (\d+s|\d+m\d\ds|\?)$")


@pytest.mark.slow
def test_stage_log_has_progress_lines_with_rate_and_eta(tmp_path):
    """A real stage run the way the Snakefile runs it: stdout and stderr into one log file."""
    run = make_synthetic_run(tmp_path, n_images=4)
    log = tmp_path / "logs" / "export_pseudolabels.log"
    log.parent.mkdir()
    command = [sys.executable, "-m", "stages.export_pseudolabels", f"dataset.root={run.data_root}",
               f"source_dir={run.stages_dir / 'crf'}", f"out_dir={tmp_path / 'pseudolabels'}"]
    env = {**os.environ, "WSSS_PROGRESS_INTERVAL": "0"}  # a line per image instead of one per 5 s
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                timeout=300)
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text
    counts = [int(m[1]) for m in map(PROGRESS.match, text.splitlines()) if m]
    assert counts == [1, 2, 3, 4], text
    assert re.search(r"^\[pseudolabels\] mIoU \d+\.\d\d over 4 images", text, re.M), text


@pytest.mark.slow
def test_snakemake_prints_the_log_of_a_failed_job(tmp_path):
    """``show-failed-logs: true`` in profiles/default works with this Snakemake: the log is printed."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule broken:
            output: "out.txt"
            log: "logs/broken.log"
            shell: "(echo '[broken] 1/2 images (50.0%) 1.00 images/s, elapsed 1s, ETA 1s'; "
                   "echo 'error: data/x.png: unreadable PNG'; exit 1) > {log} 2>&1"
    """))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(REPO_ROOT / "profiles" / "default"),
                             "--cores", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Logfile logs/broken.log:" in output, output
    assert "error: data/x.png: unreadable PNG" in output
