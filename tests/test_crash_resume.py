"""Crash-and-resume through Snakemake (``tests/crash_harness.py``): every stage of the DAG killed with SIGKILL at
seeded moments (a per-image file complete but not renamed, the last rename, a moment in time; for training
stages during a checkpoint write, just after one, the last rename), Snakemake itself killed twice, the workflow
rerun, and every file under ``results/`` and ``data/`` compared byte for byte with an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.crash_harness import run_harness
from wsss.faults import WritePoint

pytestmark = pytest.mark.slow

EVERY_STAGE = {"make_minivoc", "check_dataset", "train_classifier", "make_cam", "make_seeds", "train_affinity",
               "propagate", "refine_crf", "export_pseudolabels", "export_instances", "train_deeplab",
               "train_maskrcnn", "make_gallery", "compare"}
TRAINING = {"train_classifier", "train_affinity", "train_deeplab", "train_maskrcnn"}


@pytest.fixture(scope="module")
def report(tmp_path_factory, kernels_built):
    return run_harness(tmp_path_factory.mktemp("crash"))


def test_every_stage_is_killed_three_times_and_snakemake_twice(report):
    assert set(report["stages"]) == EVERY_STAGE
    fired = Counter(kill["stage"] for kill in report["kills"] if kill["fired"])
    assert all(fired[stage] >= 3 for stage in EVERY_STAGE), fired
    assert [k for k in report["kills"] if not k["fired"]] == []
    for stage in TRAINING:
        whats = {kill["what"] for kill in report["kills"] if kill["stage"] == stage}
        assert {"during a checkpoint write", "just after a checkpoint", "the last rename"} <= whats, stage
    killed = [run for run in report["snakemake_runs"] if run["killed_after_s"] is not None]
    assert len(killed) == 2 and all(run["returncode"] == -9 for run in killed)


def test_the_rerun_writes_the_bytes_of_an_uninterrupted_run(report):
    assert report["files_compared"] > 400
    for kind in (".png", ".npy", ".json", ".pt", ".jpg", ".html"):
        assert report["file_kinds"].get(kind, 0) > 0, kind
    assert report["missing"] == [] and report["extra"] == []
    assert report["differing"] == []


def test_training_stages_say_which_checkpoint_they_resumed_from(report):
    resumed = " ".join(report["resumed"].values())
    for stage in TRAINING:
        assert f"[{stage}] resuming from" in resumed, report["resumed"]


def test_write_points_parse_and_match():
    point = WritePoint.parse("before_rename:results/*/crf/*.png:3")
    assert point.count == 3 and point.matches("before_rename", Path("results/a/crf/x.png"))
    assert not point.matches("after_rename", Path("results/a/crf/x.png"))
    assert WritePoint.parse("after_rename:model.pt:1").matches("after_rename", Path("o/model.pt"))
    for bad in ("during:x:1", "before_rename:x:0", "before_rename::1", "nonsense"):
        with pytest.raises(ValueError, match="crash point"):
            WritePoint.parse(bad)


def test_a_kill_at_a_moment_the_stage_outran_strikes_at_its_end(tmp_path):
    """A stage that ends before its planned moment (a faster machine than the reference's) is killed at its
    end, after its writes: every kill of a plan fires, whatever the speed."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"stage": "s", "job": "out", "after_s": 600.0, "what": "a seeded moment"}]))
    script = "from wsss import faults; faults.start('s', 'out'); print('worked', flush=True); faults.finish(); print('exited')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WSSS_CRASH_PLAN": str(plan)})
    assert done.returncode == -9 and done.stdout == "worked\n"
    assert (tmp_path / "plan.json.fired" / "0").is_file()
    # fired: the rerun arms nothing and ends normally
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WSSS_CRASH_PLAN": str(plan)})
    assert done.returncode == 0 and done.stdout == "worked\nexited\n"
