"""Evaluation: semantic mIoU (chainercv conventions) and the streaming scorer every stage uses.

Conventions (SEEDS_ANATOMY §2.1):

* ground truth 255 is ignored: only pixels with ``gt != 255`` enter the confusion
  matrix ``N[g, p]`` (rows ground truth, columns prediction);
* ``IoU_c = N_cc / (sum_p N_cp + sum_g N_gc - N_cc)``; a class absent from both
  ground truth and prediction has IoU NaN and is left out of the mean (nanmean);
* :func:`eval_semantic_segmentation` returns fractions, exactly as chainercv's
  function of that name; :class:`SegmentationScorer` returns percent, as papers
  and ``metrics.json`` report them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from wsss.data.classes import IGNORE_INDEX, NUM_CLASSES, VOC_CLASSES
from wsss.errors import WsssError


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` with NaN where the denominator is 0."""
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def semantic_confusion(
    pred_labels: Iterable[np.ndarray],
    gt_labels: Iterable[np.ndarray],
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Confusion matrix ``(K, K)`` int64, ``N[g, p]`` over pixels with ``gt != ignore_index``.

    Args:
        pred_labels: iterable of ``(H, W)`` integer arrays.
        gt_labels: iterable of ``(H, W)`` integer arrays, same length and shapes.
        num_classes: ``K``. ``None`` grows the matrix to the largest label seen
            plus one, as chainercv does (a prediction value anywhere in the image
            counts, the ignored ground truth value does not).
    """
    size = num_classes or 0
    confusion = np.zeros((size, size), dtype=np.int64)
    preds = iter(pred_labels)
    gts = iter(gt_labels)
    sentinel = object()
    index = 0
    while True:
        pred = next(preds, sentinel)
        gt = next(gts, sentinel)
        if pred is sentinel or gt is sentinel:
            if pred is not gt:
                raise ValueError("pred_labels and gt_labels have different lengths")
            break
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.ndim != 2 or gt.ndim != 2:
            raise ValueError(f"image {index}: labels must be 2-D, got {pred.shape} and {gt.shape}")
        if pred.shape != gt.shape:
            raise ValueError(f"image {index}: prediction shape {pred.shape} differs from ground truth {gt.shape}")
        valid = gt != ignore_index
        g = gt[valid].astype(np.int64)
        p = pred[valid].astype(np.int64)
        if (g < 0).any() or (p < 0).any():
            raise ValueError(f"image {index}: negative label")
        if num_classes is None:
            top = max(int(pred.max(initial=-1)), int(g.max(initial=-1))) + 1
            if top > size:
                grown = np.zeros((top, top), dtype=np.int64)
                grown[:size, :size] = confusion
                confusion, size = grown, top
        elif (g >= size).any() or (p >= size).any():
            raise ValueError(f"image {index}: label outside 0..{size - 1}")
        confusion += np.bincount(g * size + p, minlength=size * size).reshape(size, size)
        index += 1
    return confusion


def eval_semantic_segmentation(
    pred_labels: Iterable[np.ndarray],
    gt_labels: Iterable[np.ndarray],
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Any]:
    """Semantic segmentation scores with chainercv's exact conventions (fractions, not percent).

    Ground truth ``ignore_index`` (255; chainercv's -1) is ignored. Returns
    ``{"iou": (K,), "miou", "pixel_accuracy", "class_accuracy": (K,),
    "mean_class_accuracy", "confusion": (K, K)}`` where ``iou`` is NaN for a
    class absent from ground truth and prediction, ``class_accuracy`` NaN for a
    class absent from ground truth, and both means are nanmeans.
    """
    confusion = semantic_confusion(pred_labels, gt_labels, num_classes, ignore_index)
    tp = np.diag(confusion)
    gt_count = confusion.sum(axis=1)
    pred_count = confusion.sum(axis=0)
    iou = _divide(tp, gt_count + pred_count - tp)
    class_accuracy = _divide(tp, gt_count)
    total = confusion.sum()
    return {
        "iou": iou,
        "miou": _nanmean(iou),
        "pixel_accuracy": float(tp.sum() / total) if total else math.nan,
        "class_accuracy": class_accuracy,
        "mean_class_accuracy": _nanmean(class_accuracy),
        "confusion": confusion,
    }


def _percent(value: float) -> float:
    return float(value) * 100.0 if value == value else math.nan


class SegmentationScorer:
    """Streaming scorer of label maps against ground truth, writing DESIGN §4's ``metrics.json`` record.

    Predictions may hold 255 = "no label" (e.g. sparse seeds). Such a pixel on
    non-ignored ground truth of class ``g`` counts as a miss: it is in class
    ``g``'s ground-truth total (IoU and recall denominators) but in no class's
    prediction total (precision denominators). Ground-truth 255 pixels are ignored.

    Per class ``c``: ``TP`` = pixels with gt = pred = c; ``G_c`` = non-ignored
    pixels with gt = c (labelled or not); ``P_c`` = non-ignored pixels predicted c.
    ``IoU = TP/(G_c + P_c - TP)``, ``precision = TP/P_c``, ``recall = TP/G_c``,
    each NaN when its denominator is 0 and left out of the means.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, class_names: Sequence[str] = VOC_CLASSES) -> None:
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.class_names = tuple(class_names)
        #: ``N[g, p]`` over pixels with gt != 255 and pred != 255
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        #: per ground-truth class, pixels left without a label (pred 255)
        self.unlabeled = np.zeros(num_classes, dtype=np.int64)
        self.n_images = 0

    def _check(self, pred: np.ndarray, gt: np.ndarray, name: str | None) -> None:
        where = f"{name}: " if name else ""
        if pred.ndim != 2 or gt.ndim != 2:
            raise WsssError(f"{where}labels must be 2-D (H, W), got prediction {pred.shape} and ground truth {gt.shape}")
        if pred.shape != gt.shape:
            raise WsssError(
                f"{where}prediction size {pred.shape[1]}x{pred.shape[0]} differs from ground truth "
                f"{gt.shape[1]}x{gt.shape[0]} (WxH)"
            )
        for what, array in (("prediction", pred), ("ground truth", gt)):
            bad = (array != IGNORE_INDEX) & ((array < 0) | (array >= self.num_classes))
            if bad.any():
                value = int(array[bad][0])
                raise WsssError(f"{where}{what} value {value} outside 0..{self.num_classes - 1} and {IGNORE_INDEX}")

    def add(self, pred: np.ndarray, gt: np.ndarray, name: str | None = None) -> float:
        """Add one image; return its mIoU in percent over the classes present in its gt or pred (NaN if none).

        Args:
            pred: ``(H, W)`` integer labels 0..K-1, 255 = no label.
            gt: ``(H, W)`` integer labels 0..K-1, 255 = ignore.
            name: image id or file, used in error messages.
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        self._check(pred, gt, name)
        k = self.num_classes
        valid = gt != IGNORE_INDEX
        g = gt[valid].astype(np.int64)
        p = pred[valid].astype(np.int64)
        labeled = p != IGNORE_INDEX
        confusion = np.bincount(g[labeled] * k + p[labeled], minlength=k * k).reshape(k, k)
        unlabeled = np.bincount(g[~labeled], minlength=k)
        self.confusion += confusion
        self.unlabeled += unlabeled
        self.n_images += 1
        tp = np.diag(confusion)
        iou = _divide(tp, confusion.sum(axis=1) + unlabeled + confusion.sum(axis=0) - tp)
        return _percent(_nanmean(iou))

    def per_class(self) -> dict[str, np.ndarray]:
        """``{"iou", "precision", "recall"}``: ``(K,)`` float64 fractions (NaN where undefined)."""
        tp = np.diag(self.confusion)
        gt_count = self.confusion.sum(axis=1) + self.unlabeled
        pred_count = self.confusion.sum(axis=0)
        return {
            "iou": _divide(tp, gt_count + pred_count - tp),
            "precision": _divide(tp, pred_count),
            "recall": _divide(tp, gt_count),
        }

    def record(self, protocol: dict[str, Any]) -> dict[str, Any]:
        """The ``metrics.json`` record (percent values; NaN where undefined, written as null by ``wsss.io.save_json``).

        Keys: ``miou`` (nanmean of per-class IoU over the K classes),
        ``per_class_iou`` {name: %}, ``precision`` and ``recall`` (nanmeans over
        classes), ``per_class_precision``, ``per_class_recall``, ``coverage``
        (% of non-ignored gt pixels that got a label), ``pixel_accuracy`` (% of
        non-ignored gt pixels labelled correctly; unlabelled ones count as
        wrong), ``n_images``, ``protocol``.
        """
        stats = self.per_class()
        labeled = int(self.confusion.sum())
        total = labeled + int(self.unlabeled.sum())
        correct = int(np.trace(self.confusion))
        names = self.class_names
        return {
            "miou": _percent(_nanmean(stats["iou"])),
            "per_class_iou": {n: _percent(v) for n, v in zip(names, stats["iou"])},
            "precision": _percent(_nanmean(stats["precision"])),
            "recall": _percent(_nanmean(stats["recall"])),
            "per_class_precision": {n: _percent(v) for n, v in zip(names, stats["precision"])},
            "per_class_recall": {n: _percent(v) for n, v in zip(names, stats["recall"])},
            "coverage": _percent(labeled / total) if total else math.nan,
            "pixel_accuracy": _percent(correct / total) if total else math.nan,
            "n_images": self.n_images,
            "protocol": dict(protocol),
        }
