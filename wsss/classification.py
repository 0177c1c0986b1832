"""Classifier training on image-level labels (multi-label soft-margin loss)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from wsss.data.transforms import normalize, random_crop, resize_long
from wsss.models.classifier import CAMClassifier
from wsss.progress import Progress
from wsss.training import Checkpointer, PolySGD


class ImageLabelDataset(Dataset):
    """Training samples ``(image (3,crop,crop) float32, labels (20,) float32)``.

    Augmentation: resize the long side to a random value in ``resize_long``,
    horizontal flip, random crop (padding with the mean colour). Randomness comes
    from ``seed`` and the sample index and epoch, so runs are reproducible.
    """

    def __init__(self, dataset, crop: int, resize_range: tuple[int, int], seed: int) -> None:
        self.dataset = dataset
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
        image = self.dataset.load_image(self.ids[index])
        image, _ = resize_long(image, int(rng.integers(self.resize_range[0], self.resize_range[1] + 1)))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image, _, _ = random_crop(image, self.crop, rng)
        return torch.from_numpy(normalize(image)), torch.from_numpy(self.labels[index])


@dataclass
class ClassifierTrainConfig:
    arch: str
    output_stride: int
    pretrained: str
    width: int
    epochs: int
    batch_size: int
    lr: float
    head_lr_mult: float
    momentum: float
    weight_decay: float
    crop: int
    resize_long: tuple[int, int]


def train_classifier(
    dataset, settings: ClassifierTrainConfig, seed: int, device: torch.device, checkpointer: Checkpointer | None = None
) -> tuple[CAMClassifier, list[dict]]:
    """Train a :class:`CAMClassifier` on ``dataset`` (a reader with ``ids``, ``load_image``, ``image_labels``).

    Returns the model (eval mode, on CPU) and per-epoch history ``[{"epoch", "loss", "accuracy"}]``.
    """
    torch.manual_seed(seed)
    model = CAMClassifier(settings.arch, settings.output_stride, 20, settings.pretrained, settings.width).to(device)
    samples = ImageLabelDataset(dataset, settings.crop, tuple(settings.resize_long), seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(samples, batch_size=settings.batch_size, shuffle=True, drop_last=len(samples) > settings.batch_size,
                        generator=generator, num_workers=0)
    total_steps = settings.epochs * len(loader)
    trunk, head = model.param_groups()
    optimizer = PolySGD([(trunk, 1.0), (head, settings.head_lr_mult)], settings.lr, total_steps,
                        settings.momentum, settings.weight_decay)
    history: list[dict] = []
    start_epoch = 0
    state = checkpointer.load() if checkpointer else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
    progress = Progress(total=total_steps, desc="train_classifier", unit="batches", initial=start_epoch * len(loader))
    for epoch in range(start_epoch, settings.epochs):
        samples.epoch = epoch
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss = F.multilabel_soft_margin_loss(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(images)
            correct += ((logits > 0) == (labels > 0.5)).all(dim=1).sum().item()
            seen += len(images)
            progress.update(postfix=f"epoch {epoch + 1}/{settings.epochs} loss {loss.item():.4f}")
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "exact_match": correct / seen})
        if checkpointer:
            checkpointer.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "generator": generator.get_state(), "history": history, "epoch": epoch + 1})
    progress.close()
    model.eval()
    return model.cpu(), history


def load_classifier(classifier_dir, device: torch.device | str = "cpu") -> CAMClassifier:
    """The trained classifier of a ``train_classifier`` output folder, in eval mode."""
    from pathlib import Path

    from wsss.errors import WsssError

    path = Path(classifier_dir) / "model.pt"
    if not path.is_file():
        raise WsssError(f"{path}: classifier not found (run train_classifier first)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    backbone = checkpoint["config"]["backbone"]
    model = CAMClassifier(backbone["arch"], backbone["output_stride"], 20, width=backbone.get("width", 64))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval().to(device)
