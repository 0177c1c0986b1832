"""Training the P2Seg network from points and semantic pseudo-labels, its instances, and their scoring.

Targets (:mod:`wsss.p2seg.targets`), per image at full resolution, then carried through the augmentation (random
rescale, flip, crop — the seed's crop 416 on VOC): the semantic pseudo-label (cross-entropy, 255 ignored), the
centre heatmaps of the points, the offsets of each pixel to its point (S2I, from the owner map: which point each
pixel belongs to) and the affinity labels of the crop's label map pooled to the affinity grid (I2S: class masks in
the first round, the refined instance masks after; per image — the seed OR-merges them over the batch).

Self-refinement (``refine_rounds``, P2Seg's ``refine_label_generation_with_point``): after a round, the network
predicts every training image; each point's predicted class region is grouped to the points by predicted offset
(:func:`wsss.p2seg.targets.refined_owners`) and that owner map replaces the one cut from the pseudo-labels.

Loss: ``w_sem·CE(semantic) + w_i2s·CE(refined) + w_c·MSE(centre) + w_o·L1(offset over owned pixels)
+ w_a·(½ mean_pos(1 − aff) + ½ mean_neg(aff))``. Adam, linear warm-up then poly decay
(:class:`WarmupPolyAdam`), iteration-based, resumable (:func:`wsss.retrain.iterative.run_training`, one checkpoint
folder per round), DDP under torchrun. No extra forward pass per iteration (the seed's torchinfo summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from wsss.data.annotations import read_points
from wsss.data.classes import IGNORE_INDEX
from wsss.data.reader import DatasetReader
from wsss.data.transforms import normalize
from wsss.data.validate import check_label_values, check_same_size
from wsss.errors import WsssError
from wsss.instances.cues import point_owners
from wsss.instances.instance_set import InstanceSet
from wsss.instances.scoring import InstanceScorer
from wsss.io import load_label_png
from wsss.p2seg.model import P2SegNet
from wsss.p2seg.targets import (
    affinity_labels,
    centre_heatmap,
    object_points,
    offset_targets,
    owner_labels,
    point_instances,
    pool_labels,
    refined_owners,
)
from wsss.params import P2SegExportSettings, P2SegModelSettings, P2SegSchedule
from wsss.progress import Progress
from wsss.retrain.iterative import BatchSchedule, DistContext, WarmupPolySGD, run_training, sample_rng
from wsss.training import Checkpointer


class WarmupPolyAdam(WarmupPolySGD):
    """:class:`WarmupPolySGD`'s schedule (linear warm-up from ``warmup_factor·lr``, then poly) driving Adam
    (P2Seg's WarmupPolyLR over Adam)."""

    def __init__(self, groups, lr: float, total_steps: int, weight_decay: float = 0.0, power: float = 0.9,
                 warmup_steps: int = 0, warmup_factor: float = 0.001) -> None:
        super().__init__(groups, lr, total_steps, 0.0, weight_decay, power, warmup_steps, warmup_factor)
        groups = [{"params": g["params"], "lr": g["lr"], "lr_mult": g["lr_mult"]} for g in self.optimizer.param_groups]
        self.optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


def build_p2seg(settings: P2SegModelSettings, num_classes: int) -> P2SegNet:
    """The network, its trunk started from ``settings.init_trunk`` (a classifier's ``model.pt``) when set."""
    from wsss.retrain.deeplab_model import check_trunk_config, load_trunk_weights

    model = P2SegNet(num_classes, settings.arch, settings.width, settings.output_stride, settings.pretrained,
                     tuple(settings.aspp_rates), settings.decoder_channels, settings.head_channels,
                     settings.embedding_channels, settings.affinity_pool)
    if settings.init_trunk:
        check_trunk_config(settings.init_trunk, settings.arch, settings.width)
        load_trunk_weights(model.trunk, settings.init_trunk)
    return model


class PointSamples(Dataset):
    """Training samples of P2Seg: ``dataset``'s images, their points (``<points_dir>/<id>.txt``) and semantic
    pseudo-labels (``<labels_dir>/<id>.png``). Points and labels are read and checked once, up front (a point
    outside its image or of an unknown class is a one-line error naming the file); labels are read again per sample.

    ``owners[i]`` ``(H, W)`` int16: image i's owner map (index into its points, -1), cut from the pseudo-labels,
    replaced by :meth:`refine`. ``samples[(epoch, index)]`` → dict of ``image (3, S, S)`` float32 normalised,
    ``semantic (S, S)`` int64, ``centre (K-1, S, S)``, ``offset (2, S, S)``, ``offset_weight (S, S)`` float32,
    ``affinity (N, N)`` int8 (S = ``crop``, N = (S / grid stride)²).
    """

    def __init__(self, dataset: DatasetReader, labels_dir: str | Path, points_dir: str | Path,
                 settings: P2SegSchedule, seed: int, grid_stride: int, num_classes: int = 21) -> None:
        if settings.crop % grid_stride:
            raise WsssError(f"train.crop: {settings.crop} must be a multiple of the affinity grid stride {grid_stride} "
                            f"(4·model.affinity_pool)")
        self.dataset, self.settings, self.seed = dataset, settings, seed
        self.grid_stride, self.num_classes = grid_stride, num_classes
        self.ids = list(dataset.ids)
        if not self.ids:
            raise WsssError(f"{dataset.root}: split {dataset.split!r} lists no images")
        self.labels_dir, points_dir = Path(labels_dir), Path(points_dir)
        self.points: list[list[Any]] = []
        self.owners: list[np.ndarray] = []  # int16: an image's points are far fewer than 32767
        self.round = 0
        for image_id in self.ids:
            size = dataset.image_size(image_id)
            label = self.load_label(image_id, size)
            points = object_points(read_points(points_dir / f"{image_id}.txt", size, num_classes - 1),
                                   settings.min_confidence)
            self.points.append(points)
            self.owners.append(point_owners(label, points, settings.min_component_px).astype(np.int16))

    def load_label(self, image_id: str, size: tuple[int, int]) -> np.ndarray:
        """The semantic pseudo-label ``(H, W)`` uint8 of ``image_id``, checked (values, size)."""
        path = self.labels_dir / f"{image_id}.png"
        if not path.is_file():
            raise WsssError(f"{path}: pseudo-label missing (the semantic pseudo-labels of split {self.dataset.split!r})")
        label = load_label_png(path)
        check_label_values(label, str(path), self.num_classes, IGNORE_INDEX)
        check_same_size(label.shape, size, str(path), "pseudo-label")
        return label

    def __len__(self) -> int:
        return len(self.ids)

    def refine(self, owners: Sequence[np.ndarray]) -> None:
        """Train the next round on ``owners`` (one ``(H, W)`` map per image, from the network's predictions)."""
        self.owners = [np.asarray(owner, np.int16) for owner in owners]
        self.round += 1

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        rng = sample_rng(self.seed, key)
        index = key[1]
        image = self.dataset.load_image(self.ids[index])
        label = self.load_label(self.ids[index], image.shape[:2])
        owner, points = self.owners[index].astype(np.int64), self.points[index]
        # affinity label map: classes in the first round, the refined instances (+ background) after
        groups = label.astype(np.int64) if self.round == 0 else owner_labels(owner, label == 0)
        height, width = label.shape
        scale = float(rng.uniform(*self.settings.scale_range))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        owner = cv2.resize(owner.astype(np.int32), size, interpolation=cv2.INTER_NEAREST).astype(np.int64)
        groups = cv2.resize(groups.astype(np.int32), size, interpolation=cv2.INTER_NEAREST).astype(np.int64)
        sx, sy = size[0] / width, size[1] / height
        xy = [(min(size[0] - 1, int(p.x * sx)), min(size[1] - 1, int(p.y * sy))) for p in points]
        if rng.random() < 0.5:
            image, label, owner, groups = image[:, ::-1], label[:, ::-1], owner[:, ::-1], groups[:, ::-1]
            xy = [(size[0] - 1 - x, y) for x, y in xy]
        crop = self.settings.crop
        h, w = label.shape
        pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
        top, left = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
        y0, x0 = int(rng.integers(0, h + pad_h - crop + 1)), int(rng.integers(0, w + pad_w - crop + 1))
        dy, dx = top - y0, left - x0  # canvas shift: a pixel (y, x) of the rescaled image lands at (y + dy, x + dx)

        def place(array: np.ndarray, fill) -> np.ndarray:
            out = np.full((crop, crop, *array.shape[2:]), fill, dtype=array.dtype)
            ys, ye = max(0, dy), min(crop, h + dy)
            xs, xe = max(0, dx), min(crop, w + dx)
            if ye > ys and xe > xs:
                out[ys:ye, xs:xe] = array[ys - dy:ye - dy, xs - dx:xe - dx]
            return out

        normalised = normalize(np.ascontiguousarray(image)).transpose(1, 2, 0)  # (h, w, 3); padding = mean colour → 0
        image_t = place(normalised, 0.0).transpose(2, 0, 1)
        label = place(np.ascontiguousarray(label), IGNORE_INDEX)
        owner = place(np.ascontiguousarray(owner), -1)
        groups = place(np.ascontiguousarray(groups), IGNORE_INDEX)
        moved = [_Point(x + dx, y + dy, p.class_id) for (x, y), p in zip(xy, points)]
        offsets, weight = offset_targets(owner, moved)
        inside = [p for p in moved if 0 <= p.x < crop and 0 <= p.y < crop]
        centre = centre_heatmap(inside, (crop, crop), self.num_classes, self.settings.sigma)
        return {"image": torch.from_numpy(np.ascontiguousarray(image_t)),
                "semantic": torch.from_numpy(label.astype(np.int64)),
                "centre": torch.from_numpy(centre), "offset": torch.from_numpy(offsets),
                "offset_weight": torch.from_numpy(weight),
                "affinity": torch.from_numpy(affinity_labels(pool_labels(groups, self.grid_stride)))}


class _Point:
    """A point moved by the augmentation (``x``, ``y`` may fall outside the crop)."""

    __slots__ = ("x", "y", "class_id")

    def __init__(self, x: int, y: int, class_id: int) -> None:
        self.x, self.y, self.class_id = x, y, class_id


def affinity_loss(affinity: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``½·mean over positive pairs (1 − aff) + ½·mean over negative pairs (aff)``; ``affinity (B, N, N)`` in
    (0, 1), ``labels (B, N, N)`` int8 (1, 0, -1 ignored). A term with no pair is 0."""
    positive, negative = labels == 1, labels == 0
    pos = (1 - affinity)[positive].sum() / positive.sum().clamp_min(1)
    neg = affinity[negative].sum() / negative.sum().clamp_min(1)
    return 0.5 * pos + 0.5 * neg


def p2seg_losses(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                 settings: P2SegSchedule) -> dict[str, torch.Tensor]:
    """The weighted losses of one batch (module docstring); ``outputs`` of :class:`P2SegNet`, ``batch`` of
    :class:`PointSamples`."""
    labels = batch["semantic"]
    weight = batch["offset_weight"]
    if outputs["affinity"].shape != batch["affinity"].shape:
        raise WsssError(f"affinity grid {tuple(outputs['affinity'].shape)} differs from its labels "
                        f"{tuple(batch['affinity'].shape)} (train.crop and model.affinity_pool)")
    offset_l1 = ((outputs["offset"] - batch["offset"]).abs().sum(dim=1) * weight).sum() / weight.sum().clamp_min(1)
    refined = outputs["refined"].clamp_min(1e-6).log()
    return {
        "semantic": settings.semantic_weight * F.cross_entropy(outputs["semantic"], labels, ignore_index=IGNORE_INDEX),
        "i2s": settings.i2s_weight * F.nll_loss(refined, labels, ignore_index=IGNORE_INDEX),
        "centre": settings.centre_weight * F.mse_loss(outputs["centre"], batch["centre"]),
        "offset": settings.offset_weight * offset_l1,
        "affinity": settings.affinity_weight * affinity_loss(outputs["affinity"], batch["affinity"]),
    }


@torch.no_grad()
def predict(model: P2SegNet, image: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """``image (H, W, 3)`` uint8 → ``(probs (K, H, W), offsets (2, H, W) (dy, dx))`` float32. The image is padded
    (mean colour) to a multiple of 32 on the right and bottom, so offsets stay in its pixels."""
    model.eval()
    height, width = image.shape[:2]
    padded = np.zeros((3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
    padded[:, :height, :width] = normalize(image)
    out = model(torch.from_numpy(padded)[None].to(device))
    probs = out["semantic"][0, :, :height, :width].float().softmax(dim=0)
    return probs.cpu().numpy(), out["offset"][0, :, :height, :width].float().cpu().numpy()


def train_p2seg(
    dataset: DatasetReader, labels_dir: str | Path, points_dir: str | Path, model_settings: P2SegModelSettings,
    settings: P2SegSchedule, seed: int, device: torch.device, work_dir: str | Path | None = None,
    fingerprint: str = "", ctx: DistContext = DistContext(), num_classes: int = 21,
    on_step: Callable[[int], None] | None = None,
) -> tuple[P2SegNet, list[dict]]:
    """Train P2Seg (module docstring) on ``dataset``'s images. ``work_dir``: checkpoints, ``round<r>/`` per round
    (a killed run resumes in the round it stopped in). Returns the model (eval mode) and the history (one record
    per ``log_every`` iterations, ``iteration`` counted over the whole run, with its ``round``)."""
    if settings.refine_rounds < 0:
        raise WsssError(f"train.refine_rounds: must be ≥ 0, got {settings.refine_rounds}")
    rounds = settings.refine_rounds + 1
    if settings.iterations < rounds:
        raise WsssError(f"train.iterations: {settings.iterations} is fewer than the {rounds} rounds")
    samples = PointSamples(dataset, labels_dir, points_dir, settings, seed, 4 * model_settings.affinity_pool, num_classes)
    torch.manual_seed(seed)
    model = build_p2seg(model_settings, num_classes).to(device)
    optimizer = WarmupPolyAdam([(model.parameters(), 1.0)], settings.lr, settings.iterations, settings.weight_decay,
                               settings.power, settings.warmup_iterations, settings.warmup_factor)
    history: list[dict] = []
    for r in range(rounds):
        if r > 0:
            owners = []
            for index, image_id in enumerate(Progress(samples.ids, desc=f"p2seg refine {r}", unit="images")):
                probs, offsets = predict(model, dataset.load_image(image_id), device)
                owners.append(refined_owners(probs, offsets, samples.points[index]))
            samples.refine(owners)
        start, end = settings.iterations * r // rounds, settings.iterations * (r + 1) // rounds
        checkpointer = Checkpointer(Path(work_dir) / f"round{r}" if work_dir else None, fingerprint)

        def batches(first: int, r=r, start=start, end=end):
            schedule = BatchSchedule(len(samples), settings.batch_size, end - start, seed + 1000 * r, first,
                                     ctx.rank, ctx.world_size)
            return DataLoader(samples, batch_sampler=schedule, num_workers=settings.workers,
                              pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed + first))

        def step(net, batch):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            return p2seg_losses(net(batch["image"]), batch, settings)

        def stepped(done: int, start=start) -> None:
            if on_step is not None:
                on_step(start + done)

        part = run_training(model, optimizer, batches, step, iterations=end - start, device=device, ctx=ctx,
                            checkpointer=checkpointer, checkpoint_every=settings.checkpoint_every,
                            log_every=settings.log_every, grad_clip=settings.grad_clip, sync_bn=settings.sync_bn,
                            desc=f"train_p2seg round {r}", on_step=stepped)
        history += [{**record, "iteration": start + record["iteration"], "round": r} for record in part]
    model.eval()
    return model, history


def image_points(dataset: DatasetReader, points_dir: str | Path, image_id: str) -> list[Any]:
    """The object points of ``image_id`` (``<points_dir>/<id>.txt``), checked against its image."""
    return object_points(read_points(Path(points_dir) / f"{image_id}.txt", dataset.image_size(image_id),
                                     dataset.num_classes - 1))


def p2seg_instances(model: P2SegNet, dataset: DatasetReader, points_dir: str | Path, image_id: str,
                    device: torch.device, export: P2SegExportSettings) -> InstanceSet:
    """The network's instances of one image: one per annotated point (:func:`wsss.p2seg.targets.point_instances`)."""
    probs, offsets = predict(model, dataset.load_image(image_id), device)
    return point_instances(probs, offsets, image_points(dataset, points_dir, image_id), export.fallback_size,
                           export.fallback_score)


def evaluate_p2seg(model: P2SegNet, dataset: DatasetReader, points_dir: str | Path, device: torch.device,
                   export: P2SegExportSettings, protocol: dict | None = None) -> tuple[dict | None, InstanceScorer]:
    """The network's instances of every image of ``dataset`` with ground-truth instances, scored (VOC mAP_r at
    0.5/0.75 — not the seed's 0.25 labelled mAP50 — and COCO AP). Returns ``(record or None, scorer)``."""
    scorer = InstanceScorer(dataset, {"stage": "p2seg", **(protocol or {})})
    for image_id in Progress(dataset.ids, desc="p2seg predict", unit="images"):
        if scorer.has_gt(image_id):
            scorer.add(image_id, p2seg_instances(model, dataset, points_dir, image_id, device, export))
    return (scorer.record() if scorer.n_images else None), scorer


def load_p2seg(path: str | Path, device: torch.device) -> tuple[P2SegNet, P2SegExportSettings]:
    """The network a ``train_p2seg`` stage saved (``model.pt``), in eval mode, and its export settings."""
    from wsss.io import load_torch

    state = load_torch(path, "P2Seg network", ("state_dict", "config", "num_classes"))
    model_cfg = dict(state["config"]["model"])
    model_cfg.pop("init_from_classifier", None)
    model = P2SegNet(int(state["num_classes"]), model_cfg["arch"], model_cfg["width"], model_cfg["output_stride"], "",
                     tuple(model_cfg["aspp_rates"]), model_cfg["decoder_channels"], model_cfg["head_channels"],
                     model_cfg["embedding_channels"], model_cfg["affinity_pool"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), P2SegExportSettings(**state["config"]["export"])
