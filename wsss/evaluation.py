"""Scoring a folder of predictions against a dataset split: what ``stages.evaluate`` runs.

* Semantic: ``<pred_dir>/<id>.png`` label maps (0..K-1, 255 = no label) for
  every image of the split, scored with :class:`wsss.metrics.SegmentationScorer`
  against the split's class masks (VOC ``gt_folder``, or COCO masks rasterised
  from the json).
* Instance: one COCO-results json (a list of ``{"image_id", "category_id",
  "score", "segmentation"}``, segmentation as RLE or polygons). On a VOC-layout
  dataset ``image_id`` is the VOC id string and ``category_id`` the class 1..20,
  scored with :func:`wsss.metrics.eval_instance_segmentation_voc` (mAP_r) against
  ``SegmentationObject``; on a COCO dataset they are the json's ids, scored with
  :func:`wsss.metrics.eval_coco` (``segm``, and ``bbox`` when every result has one).

Records are percent, as ``metrics.json`` holds them (DESIGN §4).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from wsss.data.coco import COCODataset, segmentation_to_mask
from wsss.data.reader import DatasetReader, VOCLayoutReader
from wsss.errors import WsssError
from wsss.io import load_json, load_label_png
from wsss.metrics import SegmentationScorer, eval_coco, eval_instance_segmentation_voc
from wsss.progress import Progress


def _percent(value: float) -> float:
    return float(value) * 100.0 if value == value else float("nan")


def _gt_ids(dataset: DatasetReader, require_gt: bool, has_gt, what: str) -> tuple[list[str], list[str]]:
    """Split ids into those with ground truth and those without; error when some lack it and ``require_gt``."""
    with_gt = [i for i in dataset.ids if has_gt(i)]
    without = [i for i in dataset.ids if not has_gt(i)]
    if without and require_gt:
        raise WsssError(
            f"{dataset.root}: {len(without)} of {len(dataset.ids)} images of split {dataset.split!r} have no {what} "
            f"(first: {without[0]}); pass require_gt=false to score the rest"
        )
    if not with_gt:
        raise WsssError(f"{dataset.root}: no image of split {dataset.split!r} has {what}")
    return with_gt, without


def evaluate_label_folder(
    dataset: DatasetReader,
    pred_dir: str | Path,
    protocol: dict[str, Any],
    allow_missing: bool = False,
    require_gt: bool = True,
    desc: str = "evaluate",
) -> tuple[dict[str, Any], dict[str, float]]:
    """Score ``<pred_dir>/<id>.png`` for every image of ``dataset`` that has a class mask.

    Args:
        dataset: a reader from :func:`wsss.data.open_dataset`.
        pred_dir: folder of label PNGs named by image id.
        protocol: recorded in the result (split, gt folder and ignore index are added).
        allow_missing: a missing PNG scores as an all-255 prediction (every pixel a miss)
            instead of an error.
        require_gt: an image of the split without a class mask is an error; if false it is skipped.
    Returns ``(record, per_image)``: the ``metrics.json`` record and ``{id: image mIoU %}``.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise WsssError(f"{pred_dir}: prediction folder not found")
    ids, skipped = _gt_ids(dataset, require_gt, dataset.has_class_mask, "class mask")
    missing = [i for i in ids if not (pred_dir / f"{i}.png").is_file()]
    if missing and not allow_missing:
        raise WsssError(
            f"{pred_dir / (missing[0] + '.png')}: prediction missing ({len(missing)} of {len(ids)} images have none; "
            f"allow_missing=true scores them as unlabelled)"
        )
    scorer = SegmentationScorer(dataset.num_classes, dataset.class_names)
    per_image: dict[str, float] = {}
    missing_set = set(missing)
    for image_id in Progress(ids, desc=desc, unit="images"):
        gt = dataset.load_class_mask(image_id)
        path = pred_dir / f"{image_id}.png"
        pred = np.full(gt.shape, 255, np.uint8) if image_id in missing_set else load_label_png(path)
        per_image[image_id] = scorer.add(pred, gt, name=str(path))
    full_protocol = {
        "split": dataset.split,
        "gt": "json (rasterised)" if isinstance(dataset, COCODataset) else dataset.gt_folder,
        "ignore_index": 255,
        **protocol,
        "pred": str(pred_dir),
        "n_missing_predictions": len(missing),
        "n_images_without_gt_skipped": len(skipped),
    }
    return scorer.record(full_protocol), per_image


def _load_results(path: Path) -> list[dict[str, Any]]:
    results = load_json(path)
    if not isinstance(results, list):
        raise WsssError(f"{path}: malformed results JSON: expected a list of detections")
    for n, item in enumerate(results):
        if not isinstance(item, dict) or not {"image_id", "category_id", "score", "segmentation"} <= set(item):
            raise WsssError(f"{path}: detection {n}: needs image_id, category_id, score and segmentation")
        if not isinstance(item["score"], (int, float)) or item["score"] != item["score"]:
            raise WsssError(f"{path}: detection {n}: score {item['score']!r} is not a number")
    return results


def evaluate_instance_json(
    dataset: DatasetReader,
    results_path: str | Path,
    protocol: dict[str, Any],
    iou_thresholds: Sequence[float] = (0.5, 0.75),
    use_07_metric: bool = False,
    require_gt: bool = True,
    desc: str = "evaluate",
) -> dict[str, Any]:
    """Score a COCO-results json of instance predictions (see the module docstring for its ids).

    VOC layout: ``{"ap50": %, "ap75": % (one key per threshold, ``ap`` + round(100 t)),
    "per_class_ap50": {name: %}, ..., "n_images", "n_detections", "protocol"}``.
    COCO: ``{"AP", "AP50", "AP75", ... (segm, %), "bbox": {...} (when boxes given), ...}``.
    """
    path = Path(results_path)
    results = _load_results(path)
    base = {"split": dataset.split, **protocol, "pred": str(path)}
    if isinstance(dataset, COCODataset):
        known = {dataset.coco_image_id(i) for i in dataset.ids}
        for n, item in enumerate(results):
            if item["image_id"] not in known:
                raise WsssError(f"{path}: detection {n}: image_id {item['image_id']!r} is not in {dataset.annotation_file}")
            if item["category_id"] not in dataset.category_ids:
                raise WsssError(f"{path}: detection {n}: unknown category_id {item['category_id']!r}")
        gt = dataset.coco_api()
        segm = eval_coco(gt, results, "segm")
        record: dict[str, Any] = {k: _percent(v) for k, v in segm.items()}
        if results and all("bbox" in r for r in results):
            record["bbox"] = {k: _percent(v) for k, v in eval_coco(gt, results, "bbox").items()}
        record.update(n_images=len(dataset), n_detections=len(results),
                      protocol={**base, "gt": "json", "evaluator": "pycocotools COCOeval segm/bbox"})
        return record

    ids, skipped = _gt_ids(dataset, require_gt, dataset.has_object_mask, "object mask")
    index = {image_id: n for n, image_id in enumerate(ids)}
    by_image: dict[int, list[dict]] = defaultdict(list)
    for n, item in enumerate(results):
        image_id = str(item["image_id"])
        if image_id not in index:
            raise WsssError(f"{path}: detection {n}: image_id {image_id!r} is not an image of split {dataset.split!r} with ground truth")
        label = item["category_id"]
        if not isinstance(label, int) or not 1 <= label < dataset.num_classes:
            raise WsssError(f"{path}: detection {n}: category_id {label!r} outside 1..{dataset.num_classes - 1}")
        by_image[index[image_id]].append(item)
    pred_masks, pred_labels, pred_scores, gt_masks, gt_labels = [], [], [], [], []
    for n, image_id in enumerate(Progress(ids, desc=desc, unit="images")):
        masks, labels = dataset.instances(image_id)
        size = masks.shape[1:] if len(masks) else dataset.image_size(image_id)
        gt_masks.append(masks)
        gt_labels.append(labels)
        items = by_image.get(n, [])
        pred = np.zeros((len(items), *size), dtype=bool)
        for r, item in enumerate(items):
            pred[r] = segmentation_to_mask(item["segmentation"], tuple(size), f"{path}: detection for {image_id}")
        pred_masks.append(pred)
        pred_labels.append(np.array([it["category_id"] for it in items], dtype=np.int64))
        pred_scores.append(np.array([float(it["score"]) for it in items], dtype=np.float64))
    record = {}
    for t in iou_thresholds:
        result = eval_instance_segmentation_voc(
            pred_masks, pred_labels, pred_scores, gt_masks, gt_labels, iou_thresh=float(t), use_07_metric=use_07_metric
        )
        key = f"ap{int(round(100 * float(t)))}"
        ap = np.full(dataset.num_classes, np.nan)
        ap[: len(result["ap"])] = result["ap"][: dataset.num_classes]
        record[key] = _percent(result["map"])
        record[f"per_class_{key}"] = {name: _percent(v) for name, v in zip(dataset.class_names[1:], ap[1:])}
    record.update(
        n_images=len(ids),
        n_detections=len(results),
        protocol={**base, "gt": dataset.object_folder if isinstance(dataset, VOCLayoutReader) else "SegmentationObject",
                  "evaluator": "VOC mAP_r (chainercv eval_instance_segmentation_voc)",
                  "iou_thresholds": [float(t) for t in iou_thresholds], "use_07_metric": bool(use_07_metric),
                  "n_images_without_gt_skipped": len(skipped)},
    )
    return record
