"""Training of :class:`~wsss.superpixel.model.SpixelNet` on random crops of the train images (no labels): MSA's
colour + position reconstruction loss (:class:`~wsss.superpixel.loss.SuperpixelLoss`), Adam with poly decay
(:class:`wsss.training.PolyAdam`; MSA: Adam lr 5e-5, batch 16, 50 epochs, crops 512 of images resized to a long
side in 320–640), resumable by epoch (:func:`wsss.training.train_epochs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from wsss.data.cache import DecodeCache
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize, random_crop, resize_long
from wsss.errors import WsssError
from wsss.superpixel.loss import LAB_WEIGHT, XY_WEIGHT, SuperpixelLoss, lab_features
from wsss.superpixel.model import SpixelNet
from wsss.training import Checkpointer, EpochSchedule, PolyAdam, train_epochs


@dataclass
class SuperpixelTrainConfig(EpochSchedule):
    """:class:`EpochSchedule` (``momentum`` = Adam's β₁) plus the grid, the network's width, the crops and the loss
    weights."""

    #: grid cell side (px); ``crop`` must be a multiple
    cell: int = 16
    #: channel factor of SpixelFCN's 16-32-64-128-256
    width: float = 1.0
    crop: int = 512
    #: [min, max] long side the image is resized to before the crop
    resize_long: tuple[int, int] = (320, 640)
    lab_weight: float = LAB_WEIGHT
    xy_weight: float = XY_WEIGHT

    def __post_init__(self) -> None:
        if self.cell < 1:
            raise WsssError(f"model.cell: must be >= 1, got {self.cell}")
        if self.crop < self.cell or self.crop % self.cell:
            raise WsssError(f"train.crop: must be a multiple of the cell (model.cell = {self.cell}), got {self.crop}")


class SuperpixelCropDataset(Dataset):
    """``(image (3, crop, crop) normalised, lab (3, crop, crop))`` float32 samples of the images ``image_ids``: a
    random long-side resize, a horizontal flip half of the time and a random crop, the CIELAB colour
    (:func:`~wsss.superpixel.loss.lab_features`) computed on the crop. Seeded by ``(seed, epoch, index)``."""

    def __init__(self, dataset: DatasetReader, image_ids: Sequence[str], settings: SuperpixelTrainConfig, seed: int,
                 cache: DecodeCache | None = None) -> None:
        self.dataset, self.ids, self.settings, self.seed = dataset, list(image_ids), settings, seed
        self.cache = cache if cache is not None else DecodeCache(0)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image_id = self.ids[index]
        image = self.cache.get(("image", image_id), lambda: self.dataset.load_image(image_id))
        low, high = self.settings.resize_long
        image, _ = resize_long(image, int(rng.integers(low, high + 1)))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image, _, _ = random_crop(image, self.settings.crop, rng)
        return torch.from_numpy(normalize(image)), torch.from_numpy(lab_features(image))


def train_superpixel(dataset: DatasetReader, image_ids: Sequence[str], settings: SuperpixelTrainConfig, seed: int,
                     device: torch.device, checkpointer: Checkpointer | None = None,
                     cache: DecodeCache | None = None) -> tuple[SpixelNet, list[dict]]:
    """Train a :class:`SpixelNet` on crops of ``image_ids``. Returns the model (eval, CPU) and the per-epoch history
    ``[{"epoch", "loss", "lab", "xy", "lr"}]`` (``lab``, ``xy``: the unweighted terms of the loss)."""
    if not image_ids:
        raise WsssError("train_superpixel: no image to train on (the split is empty)")
    torch.manual_seed(seed)
    model = SpixelNet(settings.cell, settings.width).to(device)
    loss_fn = SuperpixelLoss(settings.cell, settings.lab_weight, settings.xy_weight)
    samples = SuperpixelCropDataset(dataset, image_ids, settings, seed, cache)

    def step(batch):
        images, lab = (tensor.to(device) for tensor in batch)
        colour, position = loss_fn.terms(model(images), lab)
        loss = loss_fn.weighted(colour, position)
        return loss, {"loss": loss.item(), "lab": colour.item(), "xy": position.item(), "batches": 1}

    def summarize(sums):
        batches = max(sums.get("batches", 0), 1)
        return {name: sums.get(name, 0.0) / batches for name in ("loss", "lab", "xy")}

    history = train_epochs(model, samples, step, summarize, settings, seed, checkpointer, "train_superpixel",
                           optimizer_class=PolyAdam)
    model.eval()
    return model.cpu(), history
