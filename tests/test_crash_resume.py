"""Crash-and-resume harness: a stage killed with SIGKILL at seeded moments, rerun, gives the bytes of a run that
was never interrupted.

Kill points per per-image stage (4, one after the other in one folder, then a run to the end): a seeded n-th
write of a per-image file with its temporary complete but not yet renamed, one just after its rename, the final
write (``metrics.json`` / ``keys.json``) at its rename, and a seeded moment in time; per training run (3):
 during a checkpoint write, just after one, and at the rename of ``model.pt``; the rerun must say from which
epoch it resumes and end with identical weights and history. ``WSSS_CRASH_AT`` (wsss.io) places the exact kills.

The rerun goes into the same folders without cleaning them (stronger than Snakemake, which deletes a failed
job's declared outputs first); the training stage's ``work_dir`` (undeclared, kept by Snakemake) holds the
checkpoint it resumes from. Per-image stages: the CAM-free point chain (make_seeds → propagate (APro) →
refine_crf, also with 2 workers) on a tiny VOC-layout folder; training: train_classifier (3 epochs of a width-8 ResNet-10).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.voc_fixture import make_tiny_voc
from wsss.config import REPO_ROOT

pytestmark = pytest.mark.slow
RNG_SEED = 19


def run(args: list[str], crash: str | None = None, kill_after: float | None = None) -> subprocess.CompletedProcess:
    """``python -m stages.<args>``; ``crash``: a WSSS_CRASH_AT point; ``kill_after``: SIGKILL after that many s."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WSSS_PROGRESS_INTERVAL": "60"}
    env.pop("WSSS_CRASH_AT", None)
    if crash:
        env["WSSS_CRASH_AT"] = crash
    command = [sys.executable, "-m", f"stages.{args[0]}", *args[1:], "num_threads=1"]
    if kill_after is None:
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def artifacts(folder: Path) -> dict[str, bytes]:
    """Every file of a stage folder but its run config (``.hydra``) and temporaries left by a kill."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts and not (p.name.startswith(".") and ".tmp" in p.name)}


@pytest.fixture(scope="module")
def chain(tmp_path_factory, kernels_built):
    """The tiny dataset and an uninterrupted run of every stage (the reference), with each stage's command."""
    base = tmp_path_factory.mktemp("crash")
    root = make_tiny_voc(base / "VOC2012", n_train=4, n_val=1)
    common = ["dataset=voc", f"dataset.root={root}", "supervision=point", f"paths.results={base / 'results'}"]
    ref = base / "reference"
    stages = {
        "make_seeds": lambda out: ["make_seeds", *common, "seeds=camfree", f"out_dir={out}"],
        "propagate": lambda out: ["propagate", *common, "cam=none", "propagation=apro", f"seeds_dir={ref / 'make_seeds'}",
                                  f"out_dir={out}"],
        "refine_crf": lambda out: ["refine_crf", *common, "crf=a2gnn", f"scores_dir={ref / 'propagate'}",
                                   f"out_dir={out}"],
        # the CRF in 2 worker processes (wsss.parallel): the stage killed while they run
        "refine_crf_pool": lambda out: ["refine_crf", *common, "crf=a2gnn", f"scores_dir={ref / 'propagate'}",
                                        f"out_dir={out}", "workers=2"],
    }
    timings = {}
    for name, command in stages.items():
        start = time.monotonic()
        result = run(command(ref / name))
        timings[name] = time.monotonic() - start
        assert result.returncode == 0, result.stderr[-2000:]
    return base, stages, timings


PER_IMAGE = {  # stage -> (pattern of its per-image files, its final file)
    "make_seeds": ("*.png", "metrics.json"),
    "propagate": ("*.npy", "keys.json"),
    "refine_crf": ("*.png", "metrics.json"),
    "refine_crf_pool": ("*.png", "metrics.json"),
}


@pytest.mark.parametrize("stage", list(PER_IMAGE))
def test_per_image_stage_killed_anywhere_reruns_to_the_same_bytes(chain, stage):
    base, stages, timings = chain
    rng = random.Random(f"{RNG_SEED}-{stage}")
    pattern, final = PER_IMAGE[stage]
    expected = artifacts(base / "reference" / stage)
    assert len(expected) >= 6
    kills = [
        ("crash", f"before_rename:{pattern}:{rng.randint(1, 4)}"),   # a per-image file complete, not renamed
        ("crash", f"after_rename:{pattern}:{rng.randint(1, 3)}"),    # just after one is renamed
        ("crash", f"before_rename:{final}:1"),                       # the final rename
        ("time", rng.uniform(0.5, 1.0) * timings[stage]),           # a seeded moment
    ]
    # one folder, killed again and again (each rerun starts where the last kill left it), then run to the end
    out = base / f"kill-{stage}"
    for kind, point in kills:
        killed = run(stages[stage](out), crash=point if kind == "crash" else None,
                     kill_after=point if kind == "time" else None)
        if kind == "crash":
            assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
            assert artifacts(out) != expected  # it was stopped before the end
    rerun = run(stages[stage](out))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert artifacts(out) == expected, f"{stage} killed at {kills}: the rerun differs"


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


def test_training_killed_during_and_after_checkpoints_resumes_to_the_same_weights(chain):
    base, _, _ = chain
    root = base / "VOC2012"

    def command(name: str) -> list[str]:
        return ["train_classifier", "dataset=voc", f"dataset.root={root}", "backbone.arch=resnet10",
                "backbone.width=8", "train.epochs=3", "train.batch_size=2", f"out_dir={base / name / 'out'}",
                f"work_dir={base / name / 'work'}"]

    reference = run(command("train-reference"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = _state(base / "train-reference" / "out")
    history = (base / "train-reference" / "out" / "history.json").read_bytes()
    assert [h["epoch"] for h in json.loads(history)] == [1, 2, 3]
    kills = [  # (kill point, the epoch the rerun resumes from)
        ("before_rename:checkpoint.pt:2", 1),  # during the second checkpoint write: the first one is kept
        ("after_rename:checkpoint.pt:1", 1),   # just after the first checkpoint
        ("before_rename:model.pt:1", 3),       # the final rename: the last checkpoint is there
    ]
    for number, (point, resumed_from) in enumerate(kills):
        name = f"train-kill-{number}"
        killed = run(command(name), crash=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert not (base / name / "out" / "model.pt").exists()
        rerun = run(command(name))
        assert rerun.returncode == 0, (point, rerun.stderr[-2000:])
        log = rerun.stdout + rerun.stderr
        assert f"resuming from epoch {resumed_from}/3" in log, (point, log[-2000:])
        state = _state(base / name / "out")
        for key, tensor in expected.items():
            torch.testing.assert_close(state[key], tensor, rtol=0, atol=0, msg=f"{point}: {key}")
        assert (base / name / "out" / "history.json").read_bytes() == history, point
        assert not (base / name / "work" / "checkpoint.pt").exists()  # cleared once the model is written
