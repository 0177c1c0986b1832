"""A tiny VOC-layout folder (images, class/object masks with a void band, XML boxes, point files) for stage tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wsss.data.classes import VOC_CLASSES
from wsss.io import save_label_png

#: (class id, colour) of the objects the fixture draws
_KINDS = [(8, (220, 40, 40)), (12, (40, 200, 60)), (15, (50, 60, 220))]


def _xml(name: str, width: int, height: int, objects: list[tuple[int, tuple[int, int, int, int]]]) -> str:
    body = "".join(
        f"<object><name>{VOC_CLASSES[c]}</name><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin>"
        f"<ymin>{y0 + 1}</ymin><xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox></object>"
        for c, (x0, y0, x1, y1) in objects
    )
    return (f"<annotation><filename>{name}.jpg</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{body}</annotation>")


def make_tiny_voc(root: Path, n_train: int = 3, n_val: int = 2, size: tuple[int, int] = (48, 64),
                  seed: int = 0) -> Path:
    """Write a VOC-layout folder at ``root``: ``n_train`` + ``n_val`` images of ``size = (H, W)``, each with
    two non-overlapping rectangles of the classes in ``_KINDS``; SegmentationClass/Object with a 1-px 255 band,
    Annotations XML, Points/<id>.txt (object centres, 0-based class). Returns ``root``."""
    rng = np.random.default_rng(seed)
    height, width = size
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "Points",
                   "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = {"train": [f"2000_{i:06d}" for i in range(n_train)],
             "val": [f"2001_{i:06d}" for i in range(n_val)]}
    for split, ids in names.items():
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for n, name in enumerate(ids):
            image = rng.integers(90, 130, size=(height, width, 3)).astype(np.uint8)
            classes = np.zeros(size, np.uint8)
            objects = np.zeros(size, np.uint8)
            boxes, points = [], []
            halves = [(0, width // 2 - 1), (width // 2, width - 1)]
            for k, (lo, hi) in enumerate(halves):
                cls, colour = _KINDS[(n + k) % len(_KINDS)]
                w = int(rng.integers(8, (hi - lo) - 3))
                h = int(rng.integers(8, height - 6))
                x0 = int(rng.integers(lo + 1, hi - w))
                y0 = int(rng.integers(1, height - h - 1))
                x1, y1 = x0 + w - 1, y0 + h - 1
                image[y0:y1 + 1, x0:x1 + 1] = np.array(colour) + rng.integers(-15, 15, size=(h, w, 3))
                classes[y0:y1 + 1, x0:x1 + 1] = 255
                classes[y0 + 1:y1, x0 + 1:x1] = cls
                objects[y0:y1 + 1, x0:x1 + 1] = 255
                objects[y0 + 1:y1, x0 + 1:x1] = k + 1
                boxes.append((cls, (x0, y0, x1, y1)))
                points.append(f"{(x0 + x1) // 2} {(y0 + y1) // 2} {cls - 1} 1.000")
            Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
            save_label_png(root / "SegmentationClass" / f"{name}.png", classes)
            save_label_png(root / "SegmentationObject" / f"{name}.png", objects)
            (root / "Annotations" / f"{name}.xml").write_text(_xml(name, width, height, boxes))
            (root / "Points" / f"{name}.txt").write_text("\n".join(points) + "\n")
    return root


def gt_as_pseudolabels(root: Path, out: Path, split: str = "train") -> Path:
    """Copy the split's SegmentationClass masks to ``out/<id>.png`` (ground truth as stand-in pseudo-labels)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (root / "ImageSets/Segmentation" / f"{split}.txt").read_text().split():
        (out / f"{name}.png").write_bytes((root / "SegmentationClass" / f"{name}.png").read_bytes())
    return out


def fake_propagation(root: Path, out: Path, split: str = "train", seed: int = 0, seeds_dir: Path | None = None) -> Path:
    """A ``propagate`` folder at ``out`` for the split of ``root``: ``scores/<id>.npy`` (float16 ``(K+1,H,W)``,
    channel 0 background, then the K classes of the image's mask: the mask plus smooth noise) and
    ``keys.json``. ``seeds_dir``: also seeds there (``<id>.png``, a few mask pixels confident, the rest 255)."""
    import json

    from wsss.io import load_label_png, save_npy

    rng = np.random.default_rng(seed)
    keys = {}
    for name in (root / "ImageSets/Segmentation" / f"{split}.txt").read_text().split():
        mask = load_label_png(root / "SegmentationClass" / f"{name}.png")
        classes = [int(c) for c in np.unique(mask) if c not in (0, 255)]
        height, width = mask.shape
        channels = []
        for c in [0, *classes]:
            coarse = rng.random((height // 8 + 1, width // 8 + 1))
            smooth = np.kron(coarse, np.ones((8, 8)))[:height, :width]
            channels.append(0.6 * (mask == c) + 0.4 * smooth)
        save_npy(out / "scores" / f"{name}.npy", np.stack(channels).astype(np.float16))
        keys[name] = classes
        if seeds_dir is not None:
            seeds = np.where(rng.random(mask.shape) < 0.05, mask, 255).astype(np.uint8)
            save_label_png(seeds_dir / f"{name}.png", seeds)
    (out / "keys.json").write_text(json.dumps(keys))
    return out
