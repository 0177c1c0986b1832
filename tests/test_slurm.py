"""The workflow on SLURM: ``snakemake --profile profiles/slurm`` on a one-node cluster started on this machine
(:mod:`tests.slurm_cluster`), every job through ``sbatch``, the outputs byte for byte those of a local run.

The cluster test needs root and Debian's SLURM packages (installed when missing); elsewhere it skips with the
reason. The job ids it saw are reported as a warning, so they show in ``pytest -q``'s summary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from tests.crash_harness import TINY_CONFIG, tree_files
from tests.slurm_cluster import SlurmCluster, unavailable_reason
from tests.workflow_copy import copy_workflow
from wsss.workflow.rules import StageRule

REPO = Path(__file__).resolve().parents[1]
#: the dataset, the kernels, the classifier (a training rule: one GPU asked for) and its CAMs (a per-image rule):
#: the start of the main job, on 6 train / 2 val images (crash_harness.TINY_CONFIG). Each job costs about 25 s
#: more under SLURM than locally on two cores (two Snakemake start-ups in the job, the status polls), so the
#: chain stops at the CAMs
TARGET = "results/minivoc/cam"
RULES = {"make_minivoc", "build_kernels", "train_classifier", "make_cam"}
#: for the test cluster: the first status check after 1 s (plugin default 40 s); squeue, as there is no
#: accounting (sacct); the SLURM logs of successful jobs kept, to match their ids
SLURM_ARGS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
              "--slurm-keep-successful-logs")


# ---------------------------------------------------------------------------------------------- launch()
def _launch(monkeypatch, env: dict[str, str], launcher: bool = True) -> str:
    for name in ("SLURM_JOB_ID", "SLURM_GPUS_ON_NODE", "WSSS_TRAIN_GPUS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return StageRule("train_deeplab", "x", scope="s", launcher=launcher).launch()


def test_launch_outside_slurm_follows_wsss_train_gpus(monkeypatch):
    assert _launch(monkeypatch, {}) == sys.executable
    assert _launch(monkeypatch, {"WSSS_TRAIN_GPUS": "1"}) == sys.executable
    assert _launch(monkeypatch, {"WSSS_TRAIN_GPUS": "3"}).endswith(
        "-m torch.distributed.run --standalone --nproc_per_node=3")
    assert _launch(monkeypatch, {"WSSS_TRAIN_GPUS": "3"}, launcher=False) == sys.executable


def test_launch_in_a_slurm_job_uses_the_gpus_slurm_gave(monkeypatch):
    job = {"SLURM_JOB_ID": "7"}
    assert _launch(monkeypatch, {**job, "SLURM_GPUS_ON_NODE": "4"}).endswith("--nproc_per_node=4")
    # SLURM's count wins over an exported WSSS_TRAIN_GPUS, both ways
    assert _launch(monkeypatch, {**job, "SLURM_GPUS_ON_NODE": "2", "WSSS_TRAIN_GPUS": "8"}).endswith(
        "--nproc_per_node=2")
    assert _launch(monkeypatch, {**job, "SLURM_GPUS_ON_NODE": "1", "WSSS_TRAIN_GPUS": "8"}) == sys.executable
    # a job without GPUs (or a stray variable outside a job): WSSS_TRAIN_GPUS as before
    assert _launch(monkeypatch, {**job, "WSSS_TRAIN_GPUS": "2"}).endswith("--nproc_per_node=2")
    assert _launch(monkeypatch, {"SLURM_GPUS_ON_NODE": "4"}) == sys.executable
    assert _launch(monkeypatch, {**job, "SLURM_GPUS_ON_NODE": "4"}, launcher=False) == sys.executable


def test_the_profile_names_only_rules_of_the_workflow():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    listed = set(profile["set-threads"]) | set(profile["set-resources"])
    known = set()
    for shards in ("1", "2"):  # the shard rules (<stage>_shard) exist under --config shards > 1
        rules = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--config", f"shards={shards}"],
                               cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                               timeout=300)
        assert rules.returncode == 0, rules.stderr[-2000:]
        known |= {line.split()[0] for line in rules.stdout.splitlines() if line.strip()}
    assert listed <= known, listed - known
    per_image = {rule.removesuffix("_shard") for rule in known if rule.endswith("_shard")}
    assert {f"{rule}_shard" for rule in per_image} <= listed, "a shard rule without its cluster settings"
    for rule in ("train_classifier", "train_affinity", "train_deeplab", "train_maskrcnn", "train_p2seg"):
        assert profile["set-resources"][rule]["gpu"] >= 1
        assert profile["set-threads"][rule] >= 1


# ---------------------------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    started = SlurmCluster(tmp_path_factory.mktemp("slurm"), gpus=2).start()
    yield started
    started.stop()
    assert not started.running(), started.running()


def _fit_profile(tree: Path, cpus: int, memory_mb: int) -> dict[str, int]:
    """The copied profile with its CPUs and memory cut to the test node (what a user of a small cluster edits);
    returns its set-threads, for the local run."""
    path = tree / "profiles" / "slurm" / "config.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["set-threads"] = {rule: min(int(n), cpus) for rule, n in profile["set-threads"].items()}
    for resources in (profile["default-resources"], *profile["set-resources"].values()):
        if "mem_mb" in resources:
            resources["mem_mb"] = min(int(resources["mem_mb"]), memory_mb // 2)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return profile["set-threads"]


def _snakemake(tree: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", TARGET, *args, "--config", *TINY_CONFIG]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900,
                          env={**env, "PYTHONPATH": str(tree), "WSSS_PROGRESS_INTERVAL": "60"})


@pytest.mark.slow
def test_launch_inside_a_slurm_job_with_two_gpus(cluster, tmp_path):
    """A batch job given two (counted) GPUs: launch() there is torchrun over two processes, an exported
    WSSS_TRAIN_GPUS=5 notwithstanding."""
    out = tmp_path / "launch.out"
    code = ("from wsss.workflow.rules import StageRule; "
            "print(StageRule('train_deeplab', 'x', scope='s', launcher=True).launch())")
    env = {**cluster.client_env(), "PYTHONPATH": str(REPO), "WSSS_TRAIN_GPUS": "5"}
    submit = subprocess.run(["sbatch", "--parsable", "--wait", "--gpus=2", "--cpus-per-task=1", "--mem=500",
                             f"--output={out}", "--wrap", f"{sys.executable} -c \"{code}\""],
                            env=env, capture_output=True, text=True, timeout=300)
    assert submit.returncode == 0, submit.stderr
    assert out.read_text().strip().endswith("--standalone --nproc_per_node=2"), out.read_text()


@pytest.mark.slow
def test_profile_runs_the_jobs_through_sbatch_with_the_outputs_of_a_local_run(cluster, tmp_path, kernels_built):
    hardware = cluster.hardware
    tree, reference = tmp_path / "tree", tmp_path / "reference"

    # the local run first, in the folder the SLURM run will use (configs that hold paths then agree)
    copy_workflow(tree)
    threads = _fit_profile(tree, hardware["CPUs"], hardware["RealMemory"])
    set_threads = [f"{rule}={n}" for rule, n in threads.items()]
    start = time.monotonic()
    local = _snakemake(tree, ["--cores", str(hardware["CPUs"]), "--set-threads", *set_threads], dict(os.environ))
    local_seconds = time.monotonic() - start
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    tree.rename(reference)

    copy_workflow(tree)
    _fit_profile(tree, hardware["CPUs"], hardware["RealMemory"])
    start = time.monotonic()
    run = _snakemake(tree, ["--profile", "profiles/slurm", *SLURM_ARGS], cluster.client_env())
    slurm_seconds = time.monotonic() - start
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]

    # every job went to sbatch: the ids the plugin reported are the jobs slurmctld ran, one per rule
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    jobs = {job["id"]: job for job in cluster.jobs()}
    assert set(submitted.values()) <= set(jobs), (submitted, jobs)
    ran = {}
    for job_id in submitted.values():
        job = jobs[job_id]
        assert job["state"] == "COMPLETED", job
        rule = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", job["comment"]).group(1)
        ran[rule] = job_id
    assert set(ran) == RULES, ran
    # the training job asked for a GPU (the profile's gpu: 1 -> sbatch --gpus=1), the per-image ones did not
    assert "gres:gpu:1" in cluster.show_job(ran["train_classifier"])
    assert "gres:gpu" not in cluster.show_job(ran["make_cam"])
    logs = {path.stem for path in (tree / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(ran.values()) <= logs, (ran, logs)

    jobs_line = ", ".join(f"{rule}={job_id}" for rule, job_id in sorted(ran.items(), key=lambda kv: int(kv[1])))
    warnings.warn(UserWarning(f"SLURM job ids of the profile's run: {jobs_line} (SLURM run {slurm_seconds:.0f} s, "
                              f"the same target locally {local_seconds:.0f} s)"))
    print("SLURM jobs:", jobs_line)

    # the outputs: byte for byte (PNG, npy, metrics.json, ...), NOT_COMPARED left out as in the crash harness
    expected, produced = tree_files(reference), tree_files(tree)
    assert expected and sorted(expected) == sorted(produced), (set(expected) ^ set(produced))
    differing = [rel for rel in expected if expected[rel].read_bytes() != produced[rel].read_bytes()]
    assert not differing, differing
    assert any(rel.endswith(".png") for rel in expected) and any(rel.endswith("metrics.json") for rel in expected)

    # and a rerun through the profile has nothing to do
    again = _snakemake(tree, ["--profile", "profiles/slurm", *SLURM_ARGS, "-n"], cluster.client_env())
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]
    shutil.rmtree(reference, ignore_errors=True)
