"""Locating the real-data fixtures in ``shared/realdata`` beside the checkout (tests skip when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata(*parts: str) -> Path:
    """Path under ``shared/realdata``; skips the calling test when it does not exist."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-data fixture {path} not available")
    return path


def voc_copy(tmp_path: Path, source: Path, ids: list[str], split: str = "train") -> Path:
    """A VOC root in ``tmp_path`` whose folders link to the read-only ``source`` and whose split lists ``ids``."""
    root = tmp_path / source.parent.name / source.name
    root.mkdir(parents=True)
    for folder in source.iterdir():
        (root / folder.name).symlink_to(folder, target_is_directory=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root
