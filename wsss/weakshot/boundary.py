"""RETAB's boundary network (SEEDS_ANATOMY §1.9): learnt on the base images' masks, predicted on every image.

* target: :func:`boundary_target` — the mask's void band (255) and the pixels where two classes meet;
* model: :class:`BoundaryNet` — AffinityNet's trunk and multi-level heads with one output channel, upsampled
  bilinearly to the input (RETAB: PSA's feature head, 448 → 1 logit);
* loss: :func:`boundary_loss` — RETAB's weighted BCE, boundary mean + ½ background mean + ½ foreground mean;
* :func:`train_boundary` (epochs, resumable, as AffinityNet's) and :func:`predict_boundary` (probability, h-flip
  averaged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from wsss.affinity.model import AffinityNet
from wsss.data.cache import DecodeCache
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize, random_crop, resize_long, to_batch
from wsss.training import Checkpointer, EpochSchedule, train_epochs

IGNORE = 255
#: values of the training target map (:func:`target_map`)
TARGET_BACKGROUND, TARGET_OBJECT, TARGET_BOUNDARY = 0, 1, 2


def boundary_target(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """``(H, W)`` bool: the boundary pixels of a semantic mask ``(H, W)`` (0..K-1, 255 void).

    A pixel is boundary when it is void (VOC's 255 band around objects) or when a pixel of another class lies
    within ``width`` pixels of it (8-neighbourhood at width 1: both sides of a class change are marked).
    """
    mask = np.asarray(mask)
    void = mask == IGNORE
    size = 2 * int(width) + 1
    kernel = np.ones((size, size), np.uint8)
    # another (non-void) class within reach: the local max and min over the non-void pixels differ
    high = np.where(void, 0, mask).astype(np.uint8)
    low = np.where(void, 254, mask).astype(np.uint8)
    change = (cv2.dilate(high, kernel, borderType=cv2.BORDER_REPLICATE) != high) | \
             (cv2.erode(low, kernel, borderType=cv2.BORDER_REPLICATE) != low)
    return void | (change & ~void)


def target_map(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """``(H, W)`` uint8 training target: 2 boundary, 1 object (non-boundary), 0 background (non-boundary)."""
    target = np.where(np.asarray(mask) == 0, TARGET_BACKGROUND, TARGET_OBJECT).astype(np.uint8)
    target[boundary_target(mask, width)] = TARGET_BOUNDARY
    return target


def boundary_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RETAB's weighted BCE. ``logits`` ``(B, H, W)``; ``target`` ``(B, H, W)`` int (:func:`target_map`, 255 ignored).

    ``mean_boundary(BCE(·, 1)) + ½ mean_background(BCE(·, 0)) + ½ mean_object(BCE(·, 0))``; an empty group adds 0.
    """
    positive = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    negative = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")

    def mean_over(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        return (values * group).sum() / group.sum().clamp(min=1)

    return (mean_over(positive, target == TARGET_BOUNDARY)
            + 0.5 * mean_over(negative, target == TARGET_BACKGROUND)
            + 0.5 * mean_over(negative, target == TARGET_OBJECT))


class BoundaryNet(AffinityNet):
    """Image ``(B, 3, H, W)`` → boundary logits ``(B, H, W)``: AffinityNet's features with one channel, upsampled."""

    def __init__(self, arch: str, output_stride: int, stride: int = 4, width: int = 64) -> None:
        super().__init__(arch, output_stride, feature_dim=1, stride=stride, width=width)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = super().forward(image)
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


@dataclass
class BoundaryTrainConfig(EpochSchedule):
    arch: str
    output_stride: int
    width: int
    stride: int
    crop: int
    resize_long: tuple[int, int]
    #: reach (px) of :func:`boundary_target`'s class-change test
    target_width: int


class BoundaryCropDataset(Dataset):
    """``(image (3, crop, crop), target (crop, crop) int64)`` samples of the base images (their masks in ``masks_dir``)."""

    def __init__(self, dataset: DatasetReader, masks_dir, image_ids: Sequence[str], settings: BoundaryTrainConfig,
                 seed: int, cache: DecodeCache | None = None) -> None:
        from pathlib import Path

        self.dataset, self.ids, self.settings, self.seed = dataset, list(image_ids), settings, seed
        self.masks_dir = Path(masks_dir)
        self.cache = cache if cache is not None else DecodeCache(0)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        from wsss.io import load_label_png

        rng = np.random.default_rng([self.seed, self.epoch, index])
        image_id = self.ids[index]
        image = self.cache.get(("image", image_id), lambda: self.dataset.load_image(image_id))
        target = self.cache.get(("boundary", image_id), lambda: target_map(
            load_label_png(self.masks_dir / f"{image_id}.png"), self.settings.target_width))
        low, high = self.settings.resize_long
        image, target = resize_long(image, int(rng.integers(low, high + 1)), target)
        if rng.random() < 0.5:
            image, target = image[:, ::-1], target[:, ::-1]
        image, target, _ = random_crop(image, self.settings.crop, rng, np.ascontiguousarray(target), ignore=IGNORE)
        return torch.from_numpy(normalize(image)), torch.from_numpy(target.astype(np.int64))


def train_boundary(dataset: DatasetReader, masks_dir, image_ids: Sequence[str], classifier_state: dict | None,
                   settings: BoundaryTrainConfig, seed: int, device: torch.device,
                   checkpointer: Checkpointer | None = None, cache: DecodeCache | None = None,
                   ) -> tuple[BoundaryNet, list[dict]]:
    """Train a :class:`BoundaryNet` on the masks (``masks_dir/<id>.png``) of ``image_ids`` (the base images).

    The trunk starts from ``classifier_state`` (a CAMClassifier state dict) when given. Returns the model (eval,
    CPU) and the per-epoch history ``[{"epoch", "loss", "boundary_fraction", "lr"}]``.
    """
    if not image_ids:
        raise ValueError("train_boundary: no base image to learn boundaries from")
    torch.manual_seed(seed)
    model = BoundaryNet(settings.arch, settings.output_stride, settings.stride, settings.width)
    if classifier_state is not None:
        model.load_trunk_from(classifier_state)
    model.to(device)
    samples = BoundaryCropDataset(dataset, masks_dir, image_ids, settings, seed, cache)

    def step(batch):
        images, targets = batch
        images, targets = images.to(device), targets.to(device)
        loss = boundary_loss(model(images).float(), targets)
        valid = (targets != IGNORE).sum().item()
        return loss, {"loss": loss.item(), "batches": 1, "boundary": (targets == TARGET_BOUNDARY).sum().item(),
                      "valid": valid}

    def summarize(sums):
        return {"loss": sums.get("loss", 0.0) / max(sums.get("batches", 0), 1),
                "boundary_fraction": sums.get("boundary", 0) / max(sums.get("valid", 0), 1)}

    history = train_epochs(model, samples, step, summarize, settings, seed, checkpointer, "train_boundary")
    model.eval()
    return model.cpu(), history


class BoundaryScorer:
    """Pixel precision / recall / F1 of predicted boundary maps against :func:`boundary_target` of the ground truth,
    per named group of images (``base``, ``novel``) and over all."""

    def __init__(self, target_width: int = 1) -> None:
        self.target_width = target_width
        self.counts: dict[str, np.ndarray] = {}  # group -> [true positives, predicted, actual]

    def add(self, group: str, predicted: np.ndarray, mask: np.ndarray) -> None:
        actual = boundary_target(mask, self.target_width)
        counts = self.counts.setdefault(group, np.zeros(3, np.int64))
        counts += [int((predicted & actual).sum()), int(predicted.sum()), int(actual.sum())]

    def record(self) -> dict:
        """``{group: {precision, recall, f1, boundary_fraction...}}`` in percent, ``all`` included."""
        groups = dict(self.counts)
        if groups:
            groups["all"] = sum(groups.values())
        result = {}
        for name, (tp, predicted, actual) in groups.items():
            precision = 100.0 * tp / predicted if predicted else float("nan")
            recall = 100.0 * tp / actual if actual else float("nan")
            f1 = 2 * precision * recall / (precision + recall) if predicted and actual and tp else 0.0
            result[name] = {"precision": precision, "recall": recall, "f1": f1, "predicted_pixels": int(predicted),
                            "boundary_pixels": int(actual)}
        return result


def save_boundary(path, boundary: np.ndarray) -> None:
    """An ``(H, W)`` bool boundary map as a PNG: 255 boundary (drawn as VOC's void band), 0 elsewhere."""
    from wsss.io import save_label_png

    save_label_png(path, np.where(boundary, IGNORE, 0).astype(np.uint8))


def load_boundary(folder, image_id: str) -> np.ndarray:
    """The ``(H, W)`` bool boundary map ``<folder>/<id>.png`` of ``train_boundary`` (missing: one-line error)."""
    from pathlib import Path

    from wsss.errors import WsssError
    from wsss.io import load_label_png

    path = Path(folder) / f"{image_id}.png"
    if not path.is_file():
        raise WsssError(f"{path}: boundary map not found (run train_boundary first)")
    return load_label_png(path) == IGNORE


@torch.no_grad()
def predict_boundary(model: BoundaryNet, image: np.ndarray, device: torch.device | str = "cpu",
                     flip: bool = True) -> np.ndarray:
    """Boundary probability ``(H, W)`` float32 of an ``(H, W, 3)`` uint8 image (sigmoid, averaged with the h-flip)."""
    batch = to_batch(image, device)
    if flip:
        batch = torch.cat([batch, batch.flip(-1)])
    probability = torch.sigmoid(model(batch).float())
    if flip:
        probability = 0.5 * (probability[0] + probability[1].flip(-1))
    else:
        probability = probability[0]
    return probability.cpu().numpy().astype(np.float32)
