"""Classifier training on image-level labels (multi-label soft-margin loss; MSA's classifier adds its IPC loss and
reads the superpixel network's association of every crop, :mod:`wsss.cam.msa`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from wsss.cam.classifier import CAMClassifier, build_classifier
from wsss.data.cache import DecodeCache
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize, random_crop, resize_long
from wsss.params import MSASettings
from wsss.training import Checkpointer, EpochSchedule, train_epochs

if TYPE_CHECKING:
    from wsss.superpixel.model import SpixelNet


class ImageLabelDataset(Dataset):
    """Training samples ``(image (3,crop,crop) float32, labels (20,) float32)``.

    Augmentation: resize the long side to a random value in ``resize_long``,
    horizontal flip, random crop (padding with the mean colour). Randomness comes
    from ``seed`` and the sample index and epoch, so runs are reproducible. ``cache``: decoded images
    kept across epochs (the same samples, without decoding each JPEG every epoch).
    """

    def __init__(self, dataset: DatasetReader, crop: int, resize_range: tuple[int, int], seed: int,
                 cache: DecodeCache | None = None) -> None:
        self.dataset = dataset
        self.cache = cache if cache is not None else DecodeCache(0)
        self.ids = list(dataset.ids)
        self.crop = crop
        self.resize_range = resize_range
        self.seed = seed
        self.epoch = 0
        self.labels = np.stack([dataset.image_labels(i) for i in self.ids]).astype(np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image_id = self.ids[index]
        image = self.cache.get(("image", image_id), lambda: self.dataset.load_image(image_id))
        image, _ = resize_long(image, int(rng.integers(self.resize_range[0], self.resize_range[1] + 1)))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image, _, _ = random_crop(image, self.crop, rng)
        return torch.from_numpy(normalize(image)), torch.from_numpy(self.labels[index])


@dataclass
class ClassifierTrainConfig(EpochSchedule):
    arch: str
    output_stride: int
    pretrained: str
    width: int
    crop: int
    resize_long: tuple[int, int]
    #: MSA's parts (all off: the plain :class:`CAMClassifier`)
    msa: MSASettings = field(default_factory=MSASettings)


class ClassifierInputs:
    """What the classifier reads besides the image: the superpixel association of the batch (MSA's DCR and IPC),
    from the frozen superpixel network; nothing for the plain classifier. ``images (B,3,H,W)``, ``H``, ``W``
    multiples of the net's cell (the training crops and the scored images are)."""

    def __init__(self, model: CAMClassifier, superpixel_net: SpixelNet | None) -> None:
        settings = getattr(model, "settings", MSASettings())
        self.needed = settings.needs_superpixels
        if self.needed and superpixel_net is None:
            raise ValueError("MSA's DCR and IPC read the superpixel network's association: give superpixel_net")
        self.superpixel_net = superpixel_net if self.needed else None

    @torch.no_grad()
    def assoc(self, images: torch.Tensor) -> torch.Tensor | None:
        """``(B,9,H,W)`` association of ``images``, or None when the classifier does not read it."""
        return None if self.superpixel_net is None else self.superpixel_net(images).float()


@torch.no_grad()
def score_classifier(model: CAMClassifier, dataset: DatasetReader, ids: Sequence[str], device: torch.device,
                     size: int, batch_size: int, inputs: ClassifierInputs | None = None) -> dict[str, float | None]:
    """The classifier on images ``ids`` of ``dataset``: ``{"map", "exact_match"}`` in percent, the mean over the
    classes with a positive of the VOC classification AP (:func:`wsss.metrics.multilabel_average_precision`) and
    the share of images whose 20 tags are all right (``map`` None when no class has a positive).

    Each image is resized to a long side of ``size`` (the training crop) and padded to ``size×size`` with the
    mean colour as the training crops are, so that ``batch_size`` of them go through the network at once.
    """
    from wsss.metrics import multilabel_average_precision

    logits = []
    for first in range(0, len(ids), batch_size):
        batch = np.zeros((len(ids[first:first + batch_size]), 3, size, size), np.float32)  # 0 = the mean colour
        for slot, image_id in enumerate(ids[first:first + batch_size]):
            image = normalize(resize_long(dataset.load_image(image_id), size)[0])
            batch[slot, :, :image.shape[1], :image.shape[2]] = image
        images = torch.from_numpy(batch).to(device)
        assoc = inputs.assoc(images) if inputs is not None else None
        logits.append((model(images) if assoc is None else model(images, assoc)).float().cpu().numpy())
    scores = np.concatenate(logits)
    labels = np.stack([dataset.image_labels(i) for i in ids]) > 0.5
    ap = multilabel_average_precision(scores, labels)
    return {"map": float(100 * np.nanmean(ap)) if np.isfinite(ap).any() else None,
            "exact_match": float(100 * ((scores > 0) == labels).all(axis=1).mean())}


def train_classifier(
    dataset: DatasetReader, settings: ClassifierTrainConfig, seed: int, device: torch.device,
    checkpointer: Checkpointer | None = None, val_dataset: DatasetReader | None = None, val_images: int = 0,
    cache: DecodeCache | None = None, superpixel_net: SpixelNet | None = None,
) -> tuple[CAMClassifier, list[dict]]:
    """Train a :class:`CAMClassifier` on ``dataset`` (a reader with ``ids``, ``load_image``, ``image_labels``); with
    MSA's parts on (``settings.msa``) an :class:`wsss.cam.msa.MSAClassifier` on the association of the frozen
    ``superpixel_net`` (its loss: the soft margin plus ``ipc_weight`` × IPC; ``ipc`` in the history).

    With ``val_dataset`` and ``val_images`` > 0, the first ``val_images`` ids of ``val_dataset`` are scored after
    every epoch (:func:`score_classifier`). Returns the model (eval mode, on CPU) and per-epoch history
    ``[{"epoch", "loss", "exact_match", "lr"[, "val": {"map", "exact_match"}]}]``.
    """
    torch.manual_seed(seed)
    model = build_classifier(settings.arch, settings.output_stride, settings.pretrained, settings.width,
                             settings.msa).to(device)
    if settings.msa.needs_superpixels and settings.crop % settings.msa.cell:
        raise ValueError(f"train.crop ({settings.crop}) must be a multiple of the superpixel cell ({settings.msa.cell})")
    if superpixel_net is not None:
        superpixel_net = superpixel_net.to(device).eval()
    inputs = ClassifierInputs(model, superpixel_net)
    samples = ImageLabelDataset(dataset, settings.crop, tuple(settings.resize_long), seed, cache)
    val_ids = list(val_dataset.ids)[:val_images] if val_dataset is not None and val_images > 0 else []

    def step(batch):
        images, labels = batch
        images, labels = images.to(device), labels.to(device)
        if not settings.msa.enabled:
            logits = model(images).float()
            loss = F.multilabel_soft_margin_loss(logits, labels)
            extra = {}
        else:
            loss, parts = model.loss(images, labels, inputs.assoc(images))
            logits = parts["logits"].float()
            extra = {"ipc": parts["ipc"].item() * len(images)}
        correct = ((logits > 0) == (labels > 0.5)).all(dim=1).sum().item()
        return loss, {"loss": loss.item() * len(images), "correct": correct, "seen": len(images), **extra}

    def summarize(sums):
        record = {"loss": sums["loss"] / sums["seen"], "exact_match": sums["correct"] / sums["seen"]}
        if "ipc" in sums:
            record["ipc"] = sums["ipc"] / sums["seen"]
        return record

    history = train_epochs(model, samples, step, summarize, settings, seed, checkpointer, "train_classifier",
                           validate=(lambda: score_classifier(model, val_dataset, val_ids, device, settings.crop,
                                                              settings.batch_size, inputs)) if val_ids else None)
    model.eval()
    return model.cpu(), history

