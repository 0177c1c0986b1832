"""refine_crf's worker pool (wsss.parallel.ordered_map): the same bytes as the loop, the same one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_bad_inputs import _run_stage
from tests.voc_fixture import fake_propagation, make_tiny_voc
from wsss.config import REPO_ROOT
from wsss.errors import WsssError
from wsss.parallel import ordered_map, resolve_workers


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A tiny VOC folder (4 train images, 48x64), its propagated scores and seeds."""
    base = tmp_path_factory.mktemp("crf")
    root = make_tiny_voc(base / "VOC2012", n_train=4, n_val=1)
    fake_propagation(root, base / "propagate", seeds_dir=base / "seeds")
    return root, base / "propagate", base / "seeds"


def _refine(upstream, out, capfd, *overrides: str) -> tuple[int, str]:
    root, scores, seeds = upstream
    return _run_stage(f"refine_crf dataset=voc dataset.root={root} split=train scores_dir={scores} seeds_dir={seeds} "
                      f"out_dir={out} paths.results={out.parent / 'results'} " + " ".join(overrides), capfd)


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts}


def test_the_pool_writes_the_bytes_of_the_loop(upstream, tmp_path, capfd):
    runs = {}
    for workers in (1, 2):
        status, err = _refine(upstream, tmp_path / f"w{workers}", capfd, "keep_seeds=true", f"workers={workers}")
        assert status == 0, err
        assert "[refine_crf] 4/4 images (100.0%)" in err  # the progress line still comes
        runs[workers] = _files(tmp_path / f"w{workers}")
    assert {"metrics.json", "per_image.json", "2000_000003.png", "scores/2000_000003.npy"} <= set(runs[1])
    assert len(runs[1]) == 4 * 2 + 2
    assert runs[1] == runs[2]
    # over the classes present only: background + the two classes of each image
    assert np.load(tmp_path / "w2" / "scores" / "2000_000000.npy").shape == (3, 48, 64)


def test_a_failing_image_in_a_worker_is_the_loops_one_line_error(upstream, tmp_path, capfd):
    root, scores, seeds = upstream
    broken = tmp_path / "propagate"
    broken.mkdir()
    (broken / "keys.json").write_bytes((scores / "keys.json").read_bytes())
    (broken / "scores").mkdir()
    for path in (scores / "scores").iterdir():
        array = np.load(path)
        if path.stem == "2000_000002":
            array[0, 0, 0] = np.nan
        np.save(broken / "scores" / path.name, array)
    lines = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        status, err = _run_stage(f"refine_crf dataset=voc dataset.root={root} split=train scores_dir={broken} "
                                 f"out_dir={out} paths.results={tmp_path / 'results'} workers={workers}", capfd)
        assert status == 1 and "Traceback" not in err, err
        lines[workers] = err.strip().splitlines()[-1]
        assert not (out / "metrics.json").exists()
        assert not [p for p in out.rglob("*") if ".tmp" in p.name]
        assert not (out / "2000_000002.png").exists() and (out / "2000_000001.png").exists()
    assert lines[1] == lines[2] == f"error: {broken}/scores/2000_000002.npy: 1 non-finite values (NaN or inf) in the array"


@pytest.mark.parametrize("workers", [0, -2])
def test_workers_must_be_positive(workers):
    with pytest.raises(WsssError, match=r"^workers: must be a positive number of processes .* got " + str(workers)):
        resolve_workers(workers, num_threads=2)


def test_workers_default_to_the_jobs_threads():
    assert resolve_workers(None, num_threads=3) == 3
    assert resolve_workers(None, num_threads=0) == len(os.sched_getaffinity(0))
    assert resolve_workers(None, num_threads=8, n_items=2) == 2 and resolve_workers(4, 1) == 4


# ------------------------------------------------------------------ ordered_map itself
def _late_first(fail_at, item):
    time.sleep(0.05 * (4 - item))  # the early items finish last
    if item == fail_at:
        raise WsssError(f"item {item}: bad")
    return item * 10


def _die(context, item):
    if item == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_ordered_map_keeps_the_order_and_the_first_error():
    assert list(ordered_map(_late_first, range(5), workers=2, context=None)) == [0, 10, 20, 30, 40]
    seen = []
    with pytest.raises(WsssError, match=r"^item 2: bad$"):
        for result in ordered_map(_late_first, range(5), workers=2, context=2):
            seen.append(result)
    assert seen == [0, 10]


def test_ordered_map_raises_an_items_error_at_its_turn():
    def items():
        yield from (0, 1)
        raise WsssError("image 2: unreadable")

    seen = []
    with pytest.raises(WsssError, match="image 2"):
        for result in ordered_map(_late_first, items(), workers=2, context=None):
            seen.append(result)
    assert seen == [0, 10]


def _record_pid_and_sleep(folder, item):
    (Path(folder) / f"{os.getpid()}.pid").touch()
    time.sleep(60)


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    """A SIGKILLed stage must not leave its workers behind (they would hold Snakemake's log pipe open)."""
    script = ("import os, signal, sys, time\n"
              "from tests.test_refine_crf import _record_pid_and_sleep\n"
              "from wsss.parallel import ordered_map\n"
              "results = ordered_map(_record_pid_and_sleep, range(4), workers=2, context=sys.argv[1])\n"
              "import threading\n"
              "def kill():\n"
              "    while len(os.listdir(sys.argv[1])) < 2: time.sleep(0.05)\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "threading.Thread(target=kill).start()\n"
              "next(results)\n")
    parent = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_a_dead_worker_is_one_line():
    with pytest.raises(WsssError, match=r"^crf: a worker process died \(killed, or out of memory\?\)"):
        list(ordered_map(_die, range(3), workers=2, desc="crf"))


def test_the_stage_module_leaves_torch_out():
    """Every spawn worker imports the stage's module: with torch it would take seconds to start."""
    code = "import sys, stages.refine_crf; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.stdout.strip() == "False", result.stderr
