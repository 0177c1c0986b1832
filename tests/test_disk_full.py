"""A stage writing into a full filesystem: one line naming the folder, exit 1, no partial file; once space is
freed the rerun completes with the bytes of a run that never ran out. Needs root (it mounts a small tmpfs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.voc_fixture import make_tiny_voc
from wsss.config import REPO_ROOT
from wsss.io import load_label_png

PAGE = 4096


def _mount(folder: Path, size: int) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    if not _mount(folder, 64 * PAGE):
        pytest.skip("needs root and tmpfs to mount a small filesystem")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def _seeds(root: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WSSS_PROGRESS_INTERVAL": "60"}
    return subprocess.run([sys.executable, "-m", "stages.make_seeds", "dataset=voc", f"dataset.root={root}",
                           "supervision=point", "seeds=camfree", "split=train", f"out_dir={out}", "num_threads=1"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def _fill(disk: Path, free_pages: int) -> None:
    """Fill ``disk`` so that ``free_pages`` pages are left."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - free_pages * PAGE))


def _artifacts(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts}


@pytest.fixture(scope="module")
def dataset_and_reference(tmp_path_factory):
    """A tiny VOC folder and its seeds written where space is plenty (the bytes every rerun must give)."""
    base = tmp_path_factory.mktemp("diskfull")
    root = make_tiny_voc(base / "VOC2012", n_train=6, n_val=1)
    reference = _seeds(root, base / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    return root, _artifacts(base / "reference")


@pytest.mark.parametrize("free_pages", [0, 4])  # 0: the run config cannot be written; 4: some PNGs can
def test_full_disk_is_one_line_and_the_rerun_matches(small_disk, dataset_and_reference, free_pages):
    root, expected = dataset_and_reference

    out = small_disk / "seeds"
    _fill(small_disk, free_pages)
    failed = _seeds(root, out)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert "Traceback" not in failed.stderr
    assert lines[-1].startswith(f"error: {out}") and "No space left on device" in lines[-1], failed.stderr
    # nothing half-written: no temporary, every file left is whole (a finished PNG of the reference run)
    left = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in left if ".tmp" in p.name]
    for path in left:
        if path.suffix == ".png":
            load_label_png(path)
            assert path.read_bytes() == expected[str(path.relative_to(out))]
        elif path.suffix in (".json", ".yaml"):
            assert path.read_text().strip()
            if path.suffix == ".json":
                json.loads(path.read_text())
    assert not (out / "metrics.json").exists()

    (small_disk / "filler").unlink()
    rerun = _seeds(root, out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _artifacts(out) == expected
