"""Affinity labels from seeds, PSA's affinity loss, and AffinityNet training (stage ``train_affinity``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from wsss.affinity.model import AffinityNet
from wsss.data.cache import DecodeCache
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize, random_crop, resize_long
from wsss.training import Checkpointer, EpochSchedule, train_epochs

IGNORE = 255


def downsample_labels(label: np.ndarray, stride: int) -> np.ndarray:
    """Nearest-neighbour label at ``stride`` (IRN): ``(H,W)`` → ``(ceil(H/s), ceil(W/s))``, cell centres sampled."""
    height, width = label.shape
    rows = np.minimum(np.arange(0, height, stride) + stride // 2, height - 1)
    cols = np.minimum(np.arange(0, width, stride) + stride // 2, width - 1)
    return label[np.ix_(rows, cols)]


def pair_labels(label: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PSA's affinity targets for every pair ``(i, i + offset_d)`` of :func:`kernels.direction_offsets`.

    ``label``: ``(B,h,w)`` int with 255 = unknown. Returns boolean ``(B,D,h,w)``
    masks ``bg_pos`` (both background), ``fg_pos`` (same foreground class) and
    ``neg`` (different classes); pairs with an unknown end or leaving the map are
    in none of them.
    """
    from kernels import direction_offsets

    batch, height, width = label.shape
    padded = F.pad(label, (radius, radius, 0, radius), value=IGNORE)
    sources, targets = [], []
    for dy, dx in direction_offsets(radius):
        sources.append(label)
        targets.append(padded[:, dy : dy + height, radius + dx : radius + dx + width])
    source = torch.stack(sources, dim=1)
    target = torch.stack(targets, dim=1)
    valid = (source != IGNORE) & (target != IGNORE)
    same = source == target
    bg_pos = valid & same & (source == 0)
    fg_pos = valid & same & (source != 0)
    neg = valid & ~same
    return bg_pos, fg_pos, neg


def affinity_loss(affinity: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """PSA's loss ``¼·L_bg+ + ¼·L_fg+ + ½·L_neg`` on affinities ``(B,D,h,w)`` in [0, 1].

    ``L_+ = Σ −log(a + 1e-5) / Σ y`` over positives, ``L_neg = Σ −log(1 + 1e-5 − a) / Σ y``
    over negatives; an empty set contributes 0.
    """

    def mean_over(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        count = mask.sum()
        return (values * mask).sum() / count.clamp(min=1)

    loss_bg = mean_over(bg_pos, -torch.log(affinity + 1e-5))
    loss_fg = mean_over(fg_pos, -torch.log(affinity + 1e-5))
    loss_neg = mean_over(neg, -torch.log(1.0 + 1e-5 - affinity))
    return 0.25 * loss_bg + 0.25 * loss_fg + 0.5 * loss_neg


class SeedCropDataset(Dataset):
    """``(image (3,crop,crop), label (crop/s, crop/s) int64)`` samples: seeds downsampled to the feature stride."""

    def __init__(self, dataset: DatasetReader, seeds_dir, crop: int, resize_range: tuple[int, int], stride: int, seed: int,
                 cache: DecodeCache | None = None, ignored: Callable[[str], np.ndarray | None] | None = None) -> None:
        from pathlib import Path

        self.dataset = dataset
        self.cache = cache if cache is not None else DecodeCache(0)  # decoded images and seed maps across epochs
        self.ids = list(dataset.ids)
        self.seeds_dir = Path(seeds_dir)
        self.crop, self.resize_range, self.stride, self.seed = crop, resize_range, stride, seed
        self.ignored = ignored  # image id -> (H, W) bool pixels to leave out of the pairs (or None)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.ids)

    def _labels(self, image_id: str) -> np.ndarray:
        from wsss.io import load_label_png

        seeds = load_label_png(self.seeds_dir / f"{image_id}.png")
        ignored = self.ignored(image_id) if self.ignored is not None else None
        return seeds if ignored is None else np.where(ignored, 255, seeds).astype(seeds.dtype)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image_id = self.ids[index]
        image = self.cache.get(("image", image_id), lambda: self.dataset.load_image(image_id))
        seeds = self.cache.get(("seeds", image_id), lambda: self._labels(image_id))
        image, seeds = resize_long(image, int(rng.integers(self.resize_range[0], self.resize_range[1] + 1)), seeds)
        if rng.random() < 0.5:
            image, seeds = image[:, ::-1], seeds[:, ::-1]
        image, seeds, _ = random_crop(image, self.crop, rng, seeds)
        return torch.from_numpy(normalize(image)), torch.from_numpy(downsample_labels(seeds, self.stride).astype(np.int64))


@dataclass
class AffinityTrainConfig(EpochSchedule):
    arch: str
    output_stride: int
    width: int
    feature_dim: int
    stride: int
    radius: int
    crop: int
    resize_long: tuple[int, int]


def classifier_trunk(classifier_dir, use_weights: bool) -> tuple[dict, dict | None]:
    """The classifier a trunk is built like (and, with ``use_weights``, started from): ``(backbone config
    {arch, output_stride, width, ...}, its state dict or None)``; a missing or broken file is a one-line error."""
    from wsss.io import load_torch
    from wsss.pipeline import require_dir

    classifier = load_torch(require_dir(classifier_dir, "classifier") / "model.pt", "classifier", ("config", "state_dict"))
    return classifier["config"]["backbone"], classifier["state_dict"] if use_weights else None


def train_affinity(
    dataset: DatasetReader, seeds_dir, classifier_state: dict | None, settings: AffinityTrainConfig, seed: int,
    device: torch.device, checkpointer: Checkpointer | None = None, cache: DecodeCache | None = None,
    ignored: Callable[[str], np.ndarray | None] | None = None,
) -> tuple[AffinityNet, list[dict]]:
    """Train an :class:`AffinityNet` on pairs drawn from the seed PNGs in ``seeds_dir``.

    ``ignored(image_id)``: ``(H, W)`` bool pixels of that image left out of the pairs (weak-shot: the predicted
    boundaries of the novel images, RETAB), or None.

    The trunk starts from ``classifier_state`` (a CAMClassifier state dict) when given.
    Returns the model (eval, CPU) and per-epoch history ``[{"epoch", "loss", "lr"}]``.
    """
    from kernels import pair_affinity_from_features

    torch.manual_seed(seed)
    model = AffinityNet(settings.arch, settings.output_stride, settings.feature_dim, settings.stride, width=settings.width)
    if classifier_state is not None:
        model.load_trunk_from(classifier_state)
    model.to(device)
    samples = SeedCropDataset(dataset, seeds_dir, settings.crop, tuple(settings.resize_long), settings.stride, seed, cache,
                              ignored)
    def step(batch):
        images, labels = batch
        images, labels = images.to(device), labels.to(device)
        features = model(images).float()
        affinity = pair_affinity_from_features(features, settings.radius)
        bg_pos, fg_pos, neg = pair_labels(labels, settings.radius)
        loss = affinity_loss(affinity, bg_pos, fg_pos, neg)
        return loss, {"loss": loss.item(), "batches": 1}

    history = train_epochs(model, samples, step,
                           lambda sums: {"loss": sums.get("loss", 0.0) / max(sums.get("batches", 0), 1)},
                           settings, seed, checkpointer, "train_affinity")
    model.eval()
    return model.cpu(), history

