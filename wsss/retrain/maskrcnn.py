"""Retraining an instance segmentation network (Mask R-CNN) on COCO-format instance pseudo-labels, and scoring it.

Training reads the json :mod:`wsss.instances.coco` exports (RLE masks, categories =
class ids), draws images by :class:`wsss.retrain.iterative.BatchSchedule`, flips them
horizontally at random (seeded per sample) and lets torchvision's transform pick
the scale from ``min_size_train``. SGD with real momentum, linear warm-up then
poly decay, iteration-based with resumable checkpoints.

Evaluation on a split with ground-truth instances: VOC mask mAP_r at IoU 0.5 and
0.75 and COCO AP (segm and bbox) through :class:`wsss.instances.scoring.InstanceScorer`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from wsss.data.reader import DatasetReader
from wsss.errors import WsssError
from wsss.instances.coco import class_of_category, decode_mask
from wsss.instances.instance_set import InstanceSet
from wsss.instances.scoring import InstanceScorer
from wsss.params import MaskRCNNTrainSettings
from wsss.progress import Progress
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


def collate_pairs(batch):
    """Keep images and targets as lists (detection images differ in size)."""
    return tuple(zip(*batch))


def train_maskrcnn(
    dataset: DatasetReader, coco: dict[str, Any], model_settings: MaskRCNNSettings, settings: MaskRCNNTrainSettings, seed: int,
    device: torch.device, checkpointer: Checkpointer | None = None, ctx: DistContext = DistContext(),
    num_classes: int = 21, where: str = "instances json", on_step=None,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train Mask R-CNN on the instances of ``coco`` over ``dataset``'s images. Returns the model (eval mode) and history."""
    torch.manual_seed(seed)
    samples = InstanceSamples(dataset, coco, seed, settings.flip, where)
    model = build_maskrcnn(model_settings, num_classes).to(device)
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
        return net(images, targets)

    history = run_training(model, optimizer, batches, step, iterations=settings.iterations, device=device, ctx=ctx,
                           checkpointer=checkpointer, checkpoint_every=settings.checkpoint_every,
                           log_every=settings.log_every, grad_clip=settings.grad_clip, sync_bn=settings.sync_bn,
                           desc="train_maskrcnn", on_step=on_step)
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
