"""Retraining a semantic segmentation network (DeepLabV3) on pseudo-labels, and scoring it with and without CRF.

Training (SEEDS_ANATOMY §1.14, kazuto1011/deeplab-pytorch's recipe scaled down
for the demo): random rescale of image and label, horizontal flip, random crop
(padding the label with 255), pixel-wise cross-entropy with 255 ignored, SGD
with real momentum and a poly learning-rate decay (:class:`wsss.training.PolySGD`;
head learning rate ×``head_lr_mult``), iteration-based with resumable
checkpoints (:func:`wsss.retrain.iterative.run_training`).

Inference: softmax averaged over ``scales`` (and the horizontal flip),
bilinearly resized to the image; optionally refined by a dense CRF
(:func:`wsss.crf.crf_from_probs`, all classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from wsss.crf import CRFParams, crf_from_probs
from wsss.data.classes import IGNORE_INDEX
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize, random_crop
from wsss.data.validate import check_label_values, check_same_size
from wsss.errors import WsssError
from wsss.io import load_label_png
from wsss.params import DeepLabSettings
from wsss.pipeline import LabelStageOutput
from wsss.weakshot.folds import ClassSets
from wsss.progress import Progress
from wsss.retrain.deeplab_model import (
    build_deeplab,
    check_trunk_config,
    deeplab_param_groups,
    load_deeplab_checkpoint,
    load_trunk_weights,
)
from wsss.retrain.iterative import BatchSchedule, DistContext, run_training, sample_rng
from wsss.training import Checkpointer, PolySGD


def _rescale(image: np.ndarray, scale: float, label: np.ndarray | None = None):
    """Resize ``(H,W,3)`` image (bilinear) and ``(H,W)`` label (nearest) by ``scale``."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if label is not None:
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    return image, label


class PseudoLabelSamples(Dataset):
    """Training pairs from a dataset split and a folder of label PNGs ``<labels_dir>/<id>.png`` (0..K-1, 255).

    ``samples[(epoch, index)]`` → ``(image (3, crop, crop) float32 ImageNet-normalised, label (crop, crop) int64)``.
    Augmentation (seeded by ``(seed, epoch, index)``): scale uniform in
    ``scale_range``, flip with probability 0.5, random crop padded with the mean
    colour / 255.
    """

    def __init__(self, dataset: DatasetReader, labels_dir: str | Path, crop: int, scale_range: Sequence[float], seed: int,
                 num_classes: int = 21) -> None:
        self.dataset = dataset
        self.ids = list(dataset.ids)
        self.labels_dir = Path(labels_dir)
        self.crop = crop
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.seed = seed
        self.num_classes = num_classes
        missing = [i for i in self.ids if not (self.labels_dir / f"{i}.png").is_file()]
        if missing:
            raise WsssError(f"{self.labels_dir / (missing[0] + '.png')}: pseudo-label missing "
                            f"({len(missing)} of {len(self.ids)} images of split {dataset.split!r} have none)")

    def __len__(self) -> int:
        return len(self.ids)

    def load_label(self, image_id: str, size: tuple[int, int]) -> np.ndarray:
        path = self.labels_dir / f"{image_id}.png"
        label = load_label_png(path)
        check_label_values(label, str(path), self.num_classes, IGNORE_INDEX)
        check_same_size(label.shape, size, str(path), "pseudo-label")
        return label

    def __getitem__(self, key: tuple[int, int]):
        rng = sample_rng(self.seed, key)
        image_id = self.ids[key[1]]
        image = self.dataset.load_image(image_id)
        label = self.load_label(image_id, image.shape[:2])
        image, label = _rescale(image, float(rng.uniform(*self.scale_range)), label)
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        image, label, _ = random_crop(np.ascontiguousarray(image), self.crop, rng,
                                      np.ascontiguousarray(label), IGNORE_INDEX)
        return torch.from_numpy(normalize(image)), torch.from_numpy(label.astype(np.int64))


def make_deeplab(settings: DeepLabSettings, num_classes: int) -> torch.nn.Module:
    """Build the network and apply the configured initialisation (trunk file, whole checkpoint)."""
    model = build_deeplab(settings.arch, settings.output_stride, num_classes, settings.aspp_rates, settings.pretrained,
                          settings.width, settings.head_channels)
    if settings.init_trunk:
        check_trunk_config(settings.init_trunk, settings.arch, settings.width)
        load_trunk_weights(model.backbone.trunk, settings.init_trunk)
    if settings.init_checkpoint:
        skipped = load_deeplab_checkpoint(model, settings.init_checkpoint)
        if skipped:
            print(f"[train_deeplab] {settings.init_checkpoint}: left at random init (shape differs): "
                  f"{', '.join(skipped)}", flush=True)
    return model


def train_deeplab(
    dataset: DatasetReader, labels_dir: str | Path, settings: DeepLabSettings, seed: int, device: torch.device,
    checkpointer: Checkpointer | None = None, ctx: DistContext = DistContext(), num_classes: int = 21,
    on_step=None,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train DeepLabV3 on ``labels_dir`` pseudo-labels of ``dataset``'s images.

    Returns the model (eval mode, on ``device``) and the loss history.
    """
    torch.manual_seed(seed)
    synced = settings.sync_bn and ctx.enabled and device.type == "cuda"
    if settings.batch_size // ctx.world_size < 2 and not synced:
        raise WsssError(f"train.batch_size: {settings.batch_size} gives {settings.batch_size // ctx.world_size} image(s) "
                        f"per process; BatchNorm (ASPP's pooling branch) needs at least 2")
    samples = PseudoLabelSamples(dataset, labels_dir, settings.crop, settings.scale_range, seed, num_classes)
    model = make_deeplab(settings, num_classes).to(device)
    trunk, head = deeplab_param_groups(model)
    optimizer = PolySGD([(trunk, 1.0), (head, settings.head_lr_mult)], settings.lr, settings.iterations,
                        settings.momentum, settings.weight_decay, settings.power)

    def batches(start: int):
        schedule = BatchSchedule(len(samples), settings.batch_size, settings.iterations, seed, start,
                                 ctx.rank, ctx.world_size)
        # its own generator: creating the iterator must not draw from the global RNG (dropout), or a resumed
        # run would diverge from an uninterrupted one
        return DataLoader(samples, batch_sampler=schedule, num_workers=settings.workers,
                          pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed + start))

    def step(net, batch):
        images, labels = batch
        logits = net(images.to(device, non_blocking=True))["out"]
        return {"ce": F.cross_entropy(logits, labels.to(device, non_blocking=True), ignore_index=IGNORE_INDEX)}

    history = run_training(model, optimizer, batches, step, iterations=settings.iterations, device=device, ctx=ctx,
                           checkpointer=checkpointer, checkpoint_every=settings.checkpoint_every,
                           log_every=settings.log_every, sync_bn=settings.sync_bn, desc="train_deeplab",
                           on_step=on_step)
    model.eval()
    return model, history


@torch.no_grad()
def predict_probs(model: torch.nn.Module, image: np.ndarray, device: torch.device,
                  scales: Sequence[float] = (1.0,), flip: bool = False) -> np.ndarray:
    """Class probabilities ``(K, H, W)`` float32 of ``image (H, W, 3) uint8``: softmax averaged over scales (and flips)."""
    height, width = image.shape[:2]
    total = None
    count = 0
    for scale in scales:
        scaled = image if scale == 1.0 else _rescale(image, float(scale))[0]
        batch = torch.from_numpy(normalize(scaled))[None].to(device)
        if flip:
            batch = torch.cat([batch, batch.flip(-1)])
        logits = model(batch)["out"]
        if flip:
            logits = torch.stack([logits[0], logits[1].flip(-1)])
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        probs = logits.softmax(dim=1).sum(dim=0)
        total = probs if total is None else total + probs
        count += len(logits)
    return (total / count).float().cpu().numpy()


def evaluate_deeplab(
    model: torch.nn.Module, dataset: DatasetReader, out_dir: str | Path, device: torch.device,
    scales: Sequence[float] = (1.0,), flip: bool = False, crf: CRFParams | None = None,
    protocol: dict | None = None, fold: ClassSets | None = None,
) -> dict[str, dict | None]:
    """Predict every image of ``dataset``; write ``<out_dir>/predictions/<id>.png`` (and ``predictions_crf/``
    when ``crf`` is given), each folder with its ``metrics.json`` when ground truth exists (weak-shot ``fold``: with
    its base and novel mIoU, :class:`LabelStageOutput`).

    Returns ``{"plain": record, "crf": record}`` (records as :meth:`LabelStageOutput.finish`; None without ground truth).
    """
    out_dir = Path(out_dir)
    base = {"stage": "deeplab", "scales": list(scales), "flip": flip, **(protocol or {})}
    plain = LabelStageOutput(out_dir / "predictions", dataset, {**base, "crf": False}, fold=fold)
    refined = LabelStageOutput(out_dir / "predictions_crf", dataset,
                               {**base, "stage": "deeplab+crf", "crf": True, "crf_params": vars(crf)}, fold=fold) \
        if crf is not None else None
    model.eval()
    for image_id in Progress(dataset.ids, desc="deeplab predict", unit="images"):
        image = dataset.load_image(image_id)
        probs = predict_probs(model, image, device, scales, flip)
        plain.add(image_id, probs.argmax(axis=0).astype(np.uint8))
        if refined is not None:
            refined.add(image_id, crf_from_probs(image, probs, crf).argmax(axis=0).astype(np.uint8))
    return {"plain": plain.finish(), "crf": refined.finish() if refined is not None else None}
