"""A tiny synthetic run in the artifact layout (DESIGN §4), for inspection tests.

``make_synthetic_run(root)`` writes::

    root/data/minivoc/{JPEGImages,SegmentationClass,ImageSets/Segmentation/train.txt}
    root/results/minivoc/cam/{highres/<id>.npy, keys.json, labels/<id>.png + metrics.json + per_image.json}
    root/results/minivoc/image/{seeds,random_walk,a2gnn,crf,pseudolabels}/<id>.png + metrics.json + per_image.json
    root/results/minivoc/image/random_walk/scores/<id>.npy
    root/results/minivoc/image/affinity/model.pt      (a model folder: not a label stage)

Each image holds two or three rectangles of known classes; each stage's labels
are the ground truth degraded by a stage-specific amount, so the per-image IoUs
differ from stage to stage and from image to image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.io import IGNORE_INDEX, save_json, save_label_png, save_npy
from wsss.metrics import SegmentationScorer

STAGES = ("seeds", "random_walk", "a2gnn", "crf", "pseudolabels")


@dataclass
class SyntheticRun:
    root: Path
    data_root: Path
    results: Path
    cam_dir: Path
    stages_dir: Path
    ids: list[str]


def _scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(60, 110, size=(height, width, 3)).astype(np.uint8)
    gt = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        cls = int(rng.choice([3, 8, 12, 15, 20]))
        y0, x0 = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
        y1, x1 = y0 + int(rng.integers(height // 5, height // 2)), x0 + int(rng.integers(width // 5, width // 2))
        gt[y0:y1, x0:x1] = cls
        image[y0:y1, x0:x1] = (np.array([cls * 37 % 255, cls * 91 % 255, cls * 53 % 255]) * 0.8 + 40).astype(np.uint8)
    border = np.zeros_like(gt, bool)
    border[1:] |= gt[1:] != gt[:-1]
    border[:, 1:] |= gt[:, 1:] != gt[:, :-1]
    gt[border] = IGNORE_INDEX
    return image, gt


def _degrade(gt: np.ndarray, rng: np.random.Generator, amount: float, unknown: bool = False) -> np.ndarray:
    label = np.where(gt == IGNORE_INDEX, 0, gt).astype(np.uint8)
    shift = int(round(amount * 10))
    if shift:
        label = np.roll(label, shift, axis=int(rng.integers(0, 2)))
    noise = rng.random(label.shape) < amount * 0.3
    label[noise] = 0
    if unknown:
        label[rng.random(label.shape) < 0.3] = IGNORE_INDEX
    return label


def _score_folder(folder: Path, labels: dict[str, np.ndarray], gts: dict[str, np.ndarray], stage: str) -> None:
    scorer = SegmentationScorer()
    per_image = {}
    for image_id, label in labels.items():
        save_label_png(folder / f"{image_id}.png", label)
        per_image[image_id] = scorer.add(label, gts[image_id], name=image_id)
    save_json(folder / "per_image.json", per_image)
    save_json(folder / "metrics.json", scorer.record({"split": "train", "stage": stage, "ignore_index": 255}))


def make_synthetic_run(root: str | Path, n_images: int = 5, size: tuple[int, int] = (72, 96), seed: int = 0,
                       missing: dict[str, str] | None = None) -> SyntheticRun:
    """Write the synthetic run under ``root``; ``missing = {stage: image_id}`` leaves that PNG out."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    data_root = root / "data" / "minivoc"
    results = root / "results"
    cam_dir = results / "minivoc" / "cam"
    stages_dir = results / "minivoc" / "image"
    ids = [f"2007_{k:06d}" for k in range(n_images)]
    (data_root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (data_root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    (data_root / "JPEGImages").mkdir()
    images, gts = {}, {}
    for image_id in ids:
        height, width = size
        image, gt = _scene(rng, height, width)
        Image.fromarray(image).save(data_root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        save_label_png(data_root / "SegmentationClass" / f"{image_id}.png", gt)
        images[image_id], gts[image_id] = image, gt

    keys = {}
    cam_labels = {}
    for image_id, gt in gts.items():
        classes = sorted(int(c) for c in np.unique(gt) if 0 < c < 21)
        cam = np.zeros((len(classes), *gt.shape), np.float32)
        for k, cls in enumerate(classes):
            cam[k] = (gt == cls) * 0.9 + rng.random(gt.shape) * 0.1
        save_npy(cam_dir / "highres" / f"{image_id}.npy", cam.astype(np.float16))
        keys[image_id] = classes
        cam_labels[image_id] = _degrade(gt, rng, 0.6)
    save_json(cam_dir / "keys.json", keys)
    _score_folder(cam_dir / "labels", cam_labels, gts, "cam")

    for number, stage in enumerate(STAGES):
        amount = [0.5, 0.4, 0.45, 0.2, 0.2][number]
        labels = {i: _degrade(g, rng, amount, unknown=stage == "seeds") for i, g in gts.items()}
        _score_folder(stages_dir / stage, labels, gts, stage)
        if stage == "random_walk":
            for image_id in ids:
                save_npy(stages_dir / stage / "scores" / f"{image_id}.npy", np.zeros((2, 4, 4), np.float16))
    for stage, image_id in (missing or {}).items():
        (stages_dir / stage / f"{image_id}.png").unlink()
    (stages_dir / "affinity").mkdir(parents=True)
    (stages_dir / "affinity" / "model.pt").write_bytes(b"not a label stage")
    return SyntheticRun(root, data_root, results, cam_dir, stages_dir, ids)


def open_synthetic_dataset(run: SyntheticRun):
    """The VOC reader over the synthetic run's dataset (split ``train``)."""
    from wsss.data.voc import VOCDataset

    return VOCDataset(run.data_root, "train")
