"""Retraining an instance segmentation network (Mask R-CNN) on COCO-format instance pseudo-labels, and scoring it.

Training reads the json :mod:`wsss.instances.coco` exports (RLE masks, categories =
class ids), draws images by :class:`wsss.retrain.iterative.BatchSchedule`, flips them
horizontally at random (seeded per sample) and lets torchvision's transform pick
the scale from ``min_size_train``. SGD with real momentum, linear warm-up then
poly decay, iteration-based with resumable checkpoints.

From boxes alone (``mask_loss.kind``, :class:`wsss.params.BoxMaskLossSettings`): the annotated boxes of the
split (:class:`BoxSamples`) with the filled boxes as mask targets (``filled_box``), or APro's box projection,
global and local propagation losses in place of a mask target (``apro``, :mod:`wsss.retrain.box_supervision`).

Evaluation on a split with ground-truth instances: VOC mask mAP_r at IoU 0.5 and
0.75 and COCO AP (segm and bbox) through :class:`wsss.instances.scoring.InstanceScorer`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.models.detection.roi_heads import paste_masks_in_image

from wsss.data.annotations import BoxAnnotation, read_boxes
from wsss.data.reader import DatasetReader
from wsss.errors import WsssError
from wsss.instances.coco import class_of_category, decode_mask
from wsss.instances.instance_set import InstanceSet
from wsss.instances.scoring import InstanceScorer
from wsss.params import MASK_LOSS_KINDS, BoxMaskLossSettings, MaskRCNNTrainSettings
from wsss.progress import Progress
from wsss.retrain.box_supervision import AProMaskLoss
from wsss.retrain.iterative import BatchSchedule, DistContext, WarmupPolySGD, run_training, sample_rng
from wsss.retrain.maskrcnn_model import MaskRCNNSettings, build_maskrcnn, maskrcnn_parameters, set_inference_size
from wsss.training import Checkpointer


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float32 in [0, 1] (Mask R-CNN normalises internally)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class InstanceSamples(Dataset):
    """Training samples from a COCO-format instances json over ``dataset``'s images.

    Images are found by the json's ``file_name`` stem (the image id). ``samples[(epoch, index)]`` →
    ``(image (3, H, W) float [0, 1], {"boxes" (N, 4) float32 xyxy, "labels" (N,) int64 class ids,
    "masks" (N, H, W) uint8})``, flipped horizontally with probability 0.5 when ``flip``.
    Images without instances are kept (negatives).
    """

    def __init__(self, dataset: DatasetReader, coco: dict[str, Any], seed: int, flip: bool = True, where: str = "instances json") -> None:
        self.dataset = dataset
        self.seed = seed
        self.flip = flip
        self.where = where
        for key in ("images", "annotations", "categories"):
            if key not in coco or not isinstance(coco[key], list):
                raise WsssError(f"{where}: malformed COCO json (no '{key}' list)")
        self.images = list(coco["images"])
        if not self.images:
            raise WsssError(f"{where}: lists no images")
        self.names = [Path(im["file_name"]).stem for im in self.images]
        self.annotations: dict[Any, list[dict]] = defaultdict(list)
        known = {im["id"] for im in self.images}
        for ann in coco["annotations"]:
            if ann.get("image_id") not in known:
                raise WsssError(f"{where}: annotation {ann.get('id')} refers to unknown image {ann.get('image_id')!r}")
            self.annotations[ann["image_id"]].append(ann)
        self.labels = {c["id"]: class_of_category(c["id"], dataset) for c in coco["categories"]}

    def __len__(self) -> int:
        return len(self.images)

    def target(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.images[index]
        height, width = int(entry["height"]), int(entry["width"])
        anns = [a for a in self.annotations[entry["id"]] if not a.get("iscrowd", 0)]
        masks = np.zeros((len(anns), height, width), dtype=np.uint8)
        boxes = np.zeros((len(anns), 4), dtype=np.float32)
        labels = np.zeros(len(anns), dtype=np.int64)
        for k, ann in enumerate(anns):
            if ann["category_id"] not in self.labels:
                raise WsssError(f"{self.where}: annotation {ann.get('id')} has unknown category {ann['category_id']}")
            mask = decode_mask(ann["segmentation"])
            if mask.shape != (height, width):
                raise WsssError(f"{self.where}: annotation {ann.get('id')} mask {mask.shape} differs from its image "
                                f"{(height, width)} (H, W)")
            masks[k] = mask
            ys, xs = np.nonzero(mask)
            boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else (0, 0, 1, 1)
            labels[k] = self.labels[ann["category_id"]]
        keep = masks.reshape(len(anns), height * width).any(axis=1)
        return {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[keep]),
                "masks": torch.from_numpy(masks[keep])}

    def __getitem__(self, key: tuple[int, int]):
        index = key[1]
        image = self.dataset.load_image(self.names[index])
        entry = self.images[index]
        if image.shape[:2] != (int(entry["height"]), int(entry["width"])):
            raise WsssError(f"{self.where}: image {self.names[index]} is {image.shape[1]}x{image.shape[0]}, "
                            f"the json says {entry['width']}x{entry['height']}")
        target = self.target(index)
        if self.flip and sample_rng(self.seed, key).random() < 0.5:
            image = image[:, ::-1]
            width = image.shape[1]
            boxes = target["boxes"].clone()
            boxes[:, 0], boxes[:, 2] = width - target["boxes"][:, 2], width - target["boxes"][:, 0]
            target = {"boxes": boxes, "labels": target["labels"], "masks": target["masks"].flip(-1)}
        return image_tensor(image), target


class BoxSamples(InstanceSamples):
    """Training samples from the annotated boxes of ``dataset`` (its box annotations, e.g. VOC XML).

    Same items as :class:`InstanceSamples`; each target's ``masks`` are the filled boxes (the ``filled_box``
    target; APro's losses ignore them). Boxes are xyxy with exclusive ends (an inclusive VOC box
    ``x0..x1`` becomes ``(x0, y0, x1 + 1, y1 + 1)``). Images without a box are kept (negatives).
    """

    def __init__(self, dataset: DatasetReader, seed: int, flip: bool = True) -> None:
        self.dataset = dataset
        self.seed = seed
        self.flip = flip
        self.where = "box annotations"
        self.names = list(dataset.ids)
        if not self.names:
            raise WsssError(f"{dataset.root}: the split lists no images")
        self.images = []
        for name in self.names:
            height, width = dataset.image_size(name)
            self.images.append({"id": name, "height": height, "width": width})

    def target(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.images[index]
        height, width = int(entry["height"]), int(entry["width"])
        annotated = read_boxes(self.dataset, self.names[index])
        boxes = np.array([[b.box[0], b.box[1], b.box[2] + 1, b.box[3] + 1] for b in annotated],
                         dtype=np.float32).reshape(-1, 4)
        masks = np.zeros((len(annotated), height, width), dtype=np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
            masks[k, y0:y1, x0:x1] = 1
        labels = np.array([b.class_id for b in annotated], dtype=np.int64)
        return {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels), "masks": torch.from_numpy(masks)}


def collate_pairs(batch):
    """Keep images and targets as lists (detection images differ in size)."""
    return tuple(zip(*batch))


def train_maskrcnn(
    dataset: DatasetReader, coco: dict[str, Any] | None, model_settings: MaskRCNNSettings, settings: MaskRCNNTrainSettings,
    seed: int, device: torch.device, checkpointer: Checkpointer | None = None, ctx: DistContext = DistContext(),
    num_classes: int = 21, where: str = "instances json", on_step=None,
    mask_loss: BoxMaskLossSettings = BoxMaskLossSettings(),
) -> tuple[torch.nn.Module, list[dict]]:
    """Train Mask R-CNN on the instances of ``coco`` over ``dataset``'s images (``mask_loss.kind`` ``mask``), or
    on ``dataset``'s annotated boxes (``filled_box``, ``apro``; ``coco`` unused). Returns the model (eval mode)
    and history."""
    if mask_loss.kind not in MASK_LOSS_KINDS:
        raise WsssError(f"mask_loss.kind: must be one of {', '.join(MASK_LOSS_KINDS)}, got '{mask_loss.kind}'")
    torch.manual_seed(seed)
    if mask_loss.kind == "mask":
        if coco is None:
            raise WsssError("instances_dir: mask_loss.kind 'mask' trains on instance pseudo-labels; none given")
        samples: InstanceSamples = InstanceSamples(dataset, coco, seed, settings.flip, where)
    else:
        samples = BoxSamples(dataset, seed, settings.flip)
    model = build_maskrcnn(model_settings, num_classes).to(device)
    apro = AProMaskLoss(model, mask_loss) if mask_loss.kind == "apro" else None
    optimizer = WarmupPolySGD([(maskrcnn_parameters(model), 1.0)], settings.lr, settings.iterations,
                              settings.momentum, settings.weight_decay, settings.power,
                              settings.warmup_iterations, settings.warmup_factor)

    def batches(start: int):
        schedule = BatchSchedule(len(samples), settings.batch_size, settings.iterations, seed, start,
                                 ctx.rank, ctx.world_size)
        # its own generator: creating the iterator must not draw from the global RNG (proposal sampling)
        return DataLoader(samples, batch_sampler=schedule, num_workers=settings.workers, collate_fn=collate_pairs,
                          pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed + start))

    def step(net, batch):
        images, targets = batch
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        losses = net(images, targets)
        if apro is not None:
            del losses["loss_mask"]  # the filled boxes' loss: APro's losses replace it
            warmup = mask_loss.warmup_iterations
            losses.update(apro.losses(min(1.0, optimizer.step_count / warmup) if warmup else 1.0))
        return losses

    history = run_training(model, optimizer, batches, step, iterations=settings.iterations, device=device, ctx=ctx,
                           checkpointer=checkpointer, checkpoint_every=settings.checkpoint_every,
                           log_every=settings.log_every, grad_clip=settings.grad_clip, sync_bn=settings.sync_bn,
                           desc="train_maskrcnn", on_step=on_step)
    if apro is not None:
        apro.remove()
    model.eval()
    return model, history


@torch.no_grad()
def predict_instances(model: torch.nn.Module, image: np.ndarray, device: torch.device,
                      mask_threshold: float = 0.5) -> tuple[InstanceSet, np.ndarray]:
    """Instances of ``image (H, W, 3) uint8``: masks (probability > ``mask_threshold``), class ids, scores,
    and the detector's boxes ``(R, 4)`` xyxy."""
    model.eval()
    output = model([image_tensor(image).to(device)])[0]
    masks = (output["masks"][:, 0] > mask_threshold).cpu().numpy()
    instances = InstanceSet(masks.astype(bool), output["labels"].cpu().numpy().astype(np.int64),
                            output["scores"].cpu().numpy().astype(np.float32))
    return instances, output["boxes"].cpu().numpy()


def evaluate_maskrcnn(model: torch.nn.Module, dataset: DatasetReader, device: torch.device, min_size_test: int,
                      mask_threshold: float = 0.5, protocol: dict | None = None) -> tuple[dict | None, InstanceScorer]:
    """Predict every image of ``dataset`` that has ground-truth instances and score them.

    Returns ``(record, scorer)``: the ``metrics.json`` record (None when no image has
    ground truth) and the scorer (its ``results`` are the COCO-format predictions,
    ``ground_truth()`` the json they were scored against).
    """
    set_inference_size(model, min_size_test)
    scorer = InstanceScorer(dataset, {"stage": "maskrcnn", "min_size_test": int(min_size_test),
                                      "mask_threshold": mask_threshold, **(protocol or {})})
    for name in Progress(dataset.ids, desc="maskrcnn predict", unit="images"):
        if not scorer.has_gt(name):
            continue
        instances, boxes = predict_instances(model, dataset.load_image(name), device, mask_threshold)
        scorer.add(name, instances, boxes)
    if scorer.n_images == 0:
        return None, scorer
    return scorer.record(), scorer


def load_maskrcnn(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, MaskRCNNSettings]:
    """The Mask R-CNN a ``train_maskrcnn`` stage saved (``model.pt``), in eval mode, and its settings."""
    from wsss.io import load_torch

    state = load_torch(path, "Mask R-CNN", ("state_dict", "config", "num_classes"))
    model_cfg = dict(state["config"]["model"])
    model_cfg.pop("init_from_classifier", None)
    settings = MaskRCNNSettings(**model_cfg)
    model = build_maskrcnn(settings, int(state["num_classes"]))
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), settings


@torch.no_grad()
def predict_box_masks(model: torch.nn.Module, image: np.ndarray, boxes: Sequence[BoxAnnotation], device: torch.device,
                      min_size: int) -> np.ndarray:
    """The mask head's probabilities for given boxes (box-conditioned: no detection step).

    ``image`` ``(H, W, 3)`` uint8, ``boxes`` 0-based inclusive with their classes; the image is scaled as at
    inference (shorter side ``min_size``), each box's RoI pooled and its class's mask channel pasted back into
    the image. Returns ``(R, H, W)`` float32 in [0, 1] (0 outside the box's pasted region).
    """
    height, width = image.shape[:2]
    if not boxes:
        return np.zeros((0, height, width), np.float32)
    model.eval()
    set_inference_size(model, min_size)
    images, _ = model.transform([image_tensor(image).to(device)])
    features = model.backbone(images.tensors)
    scaled_h, scaled_w = images.image_sizes[0]
    original = torch.tensor([[b.box[0], b.box[1], b.box[2] + 1, b.box[3] + 1] for b in boxes], dtype=torch.float32,
                            device=device)
    scale = torch.tensor([scaled_w / width, scaled_h / height] * 2, dtype=torch.float32, device=device)
    heads = model.roi_heads
    mask_features = heads.mask_head(heads.mask_roi_pool(features, [original * scale], images.image_sizes))
    logits = heads.mask_predictor(mask_features)
    labels = torch.tensor([b.class_id for b in boxes], device=device)
    probs = logits[torch.arange(len(boxes), device=device), labels].float().sigmoid()[:, None]
    return paste_masks_in_image(probs, original, (height, width), padding=1)[:, 0].cpu().numpy().astype(np.float32)


def box_mask_labels(probs: np.ndarray, boxes: Sequence[BoxAnnotation], threshold: float = 0.5
                    ) -> tuple[InstanceSet, np.ndarray, int]:
    """Instances and a semantic label map from the masks of annotated boxes.

    Each box's instance is its pixels above ``threshold`` inside the box; a box with none gets the filled box
    (with half its score: APro's box mask, as :mod:`wsss.instances.cues` exports an empty box). Score: the mean
    probability inside the mask. Semantic map ``(H, W)`` uint8: instances painted from the largest box to the
    smallest (small objects win), background elsewhere. Returns ``(instances, semantic, number of filled boxes)``.
    """
    count, height, width = probs.shape
    masks = np.zeros((count, height, width), bool)
    scores = np.zeros(count, np.float32)
    filled = 0
    for k, b in enumerate(boxes):
        x0, y0, x1, y1 = b.box
        inside = np.zeros((height, width), bool)
        inside[y0:y1 + 1, x0:x1 + 1] = True
        masks[k] = (probs[k] > threshold) & inside
        if masks[k].any():
            scores[k] = float(probs[k][masks[k]].mean())
        else:
            masks[k], filled = inside, filled + 1
            scores[k] = 0.5 * float(probs[k][inside].mean())
    semantic = np.zeros((height, width), np.uint8)
    for k in sorted(range(count), key=lambda k: (-boxes[k].area, k)):
        semantic[masks[k]] = boxes[k].class_id
    labels = np.array([b.class_id for b in boxes], dtype=np.int64)
    return InstanceSet(masks, labels, scores), semantic, filled
