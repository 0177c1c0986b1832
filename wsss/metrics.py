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
from typing import Any, Iterable, Mapping, Sequence

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
            top = max(int(pred.max()) if pred.size else -1, int(g.max()) if g.size else -1) + 1
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

    def state(self) -> dict[str, Any]:
        """The sums as plain lists (json): ``confusion`` (K, K), ``unlabeled`` (K,), ``n_images``."""
        return {"confusion": self.confusion.tolist(), "unlabeled": self.unlabeled.tolist(), "n_images": self.n_images}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], class_names: Sequence[str]) -> "SegmentationScorer":
        """A scorer holding the sums of :meth:`state` (that of one run, or :meth:`merge_states` of several)."""
        scorer = cls(len(class_names), class_names)
        scorer.confusion = np.asarray(state["confusion"], dtype=np.int64).reshape(scorer.num_classes, scorer.num_classes)
        scorer.unlabeled = np.asarray(state["unlabeled"], dtype=np.int64).reshape(scorer.num_classes)
        scorer.n_images = int(state["n_images"])
        return scorer

    @staticmethod
    def merge_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The :meth:`state` of the images of all ``states`` together: every count summed (exact integers)."""
        return {"confusion": np.sum([np.asarray(s["confusion"], dtype=np.int64) for s in states], axis=0).tolist(),
                "unlabeled": np.sum([np.asarray(s["unlabeled"], dtype=np.int64) for s in states], axis=0).tolist(),
                "n_images": sum(int(s["n_images"]) for s in states)}

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


# ----------------------------------------------------------------------------------------------
# Instance segmentation: VOC mAP_r (chainercv conventions) and COCO AP (pycocotools)
# ----------------------------------------------------------------------------------------------
def mask_iou(masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """IoU ``(N, K)`` between boolean masks ``(N, H, W)`` and ``(K, H, W)`` (0 where both are empty)."""
    a = np.asarray(masks_a, dtype=bool).reshape(len(masks_a), -1).astype(np.float64)
    b = np.asarray(masks_b, dtype=bool).reshape(len(masks_b), -1).astype(np.float64)
    intersection = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - intersection
    out = np.zeros_like(intersection)
    np.divide(intersection, union, out=out, where=union > 0)
    return out


def _rank(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; equal scores: the later entry first (``argsort(kind="stable")[::-1]``).

    This is chainercv's ``argsort()[::-1]`` whenever numpy's default sort is
    stable (it is for short arrays), and deterministic for every length. As
    chainercv ranks twice (per image, then all images of a class), detections
    with equal scores end up ranked: the later image's first, and within one
    image in their given order.
    """
    return np.argsort(scores, kind="stable")[::-1]


def calc_instance_segmentation_voc_prec_rec(
    pred_masks: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    gt_difficults: Sequence[np.ndarray] | None = None,
    iou_thresh: float = 0.5,
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Per-class precision and recall curves, PASCAL VOC style (as chainercv's function of this name).

    Per image and class, detections are taken by decreasing score; each is
    matched to the ground-truth mask it overlaps most; when that IoU is below
    ``iou_thresh`` it is a false positive; when that mask is already taken it is
    a false positive too (a duplicate; no second-best ground truth is tried); a
    match with a difficult mask counts neither way. Returns lists indexed by
    label value (``0..max label``) holding ``None`` for a label never seen
    (precision) or with no non-difficult ground truth (recall).
    """
    n_images = len(gt_masks)
    lengths = {len(pred_masks), len(pred_labels), len(pred_scores), len(gt_labels)}
    if gt_difficults is not None:
        lengths.add(len(gt_difficults))
    if lengths != {n_images}:
        raise ValueError("all inputs must hold one entry per image")
    n_pos: dict[int, int] = {}
    score: dict[int, list[float]] = {}
    match: dict[int, list[int]] = {}
    for i in range(n_images):
        p_masks = np.asarray(pred_masks[i], dtype=bool)
        p_labels = np.asarray(pred_labels[i], dtype=np.int64).reshape(-1)
        p_scores = np.asarray(pred_scores[i], dtype=np.float64).reshape(-1)
        g_masks = np.asarray(gt_masks[i], dtype=bool)
        g_labels = np.asarray(gt_labels[i], dtype=np.int64).reshape(-1)
        g_difficult = (
            np.zeros(len(g_labels), dtype=bool)
            if gt_difficults is None or gt_difficults[i] is None
            else np.asarray(gt_difficults[i], dtype=bool).reshape(-1)
        )
        if not (len(p_masks) == len(p_labels) == len(p_scores)) or not (len(g_masks) == len(g_labels) == len(g_difficult)):
            raise ValueError(f"image {i}: masks, labels, scores (and difficults) differ in length")
        if len(p_masks) and len(g_masks) and p_masks.shape[1:] != g_masks.shape[1:]:
            raise ValueError(f"image {i}: prediction masks {p_masks.shape[1:]} differ from ground truth {g_masks.shape[1:]}")
        for label in np.unique(np.concatenate([p_labels, g_labels])):
            label = int(label)
            if label < 0:
                raise ValueError(f"image {i}: negative label {label}")
            keep = p_labels == label
            order = _rank(p_scores[keep])
            pm = p_masks[keep][order]
            ps = p_scores[keep][order]
            keep_g = g_labels == label
            gm = g_masks[keep_g]
            gd = g_difficult[keep_g]
            n_pos[label] = n_pos.get(label, 0) + int((~gd).sum())
            score.setdefault(label, []).extend(ps.tolist())
            matches = match.setdefault(label, [])
            if len(pm) == 0:
                continue
            if len(gm) == 0:
                matches.extend([0] * len(pm))
                continue
            iou = mask_iou(pm, gm)
            best = iou.argmax(axis=1)
            best[iou.max(axis=1) < iou_thresh] = -1
            taken = np.zeros(len(gm), dtype=bool)
            for g in best:
                if g < 0:
                    matches.append(0)
                elif gd[g]:
                    matches.append(-1)
                else:
                    matches.append(0 if taken[g] else 1)
                    taken[g] = True
    if not n_pos:
        return [], []
    n_class = max(n_pos) + 1
    prec: list[np.ndarray | None] = [None] * n_class
    rec: list[np.ndarray | None] = [None] * n_class
    for label in n_pos:
        order = _rank(np.asarray(score[label], dtype=np.float64))
        m = np.asarray(match[label], dtype=np.int8)[order]
        tp = np.cumsum(m == 1)
        fp = np.cumsum(m == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec[label] = tp / (fp + tp)
        if n_pos[label] > 0:
            rec[label] = tp / n_pos[label]
    return prec, rec


def multilabel_average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class classification AP (VOC 2010+: the area under the precision envelope, :func:`calc_detection_voc_ap`).

    ``scores``: ``(N, C)`` (higher = more likely present); ``labels``: ``(N, C)`` multi-hot. Images are ranked by
    score per class (ties in the order given). Returns ``(C,)`` fractions, NaN for a class with no positive.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be (N, C)")
    prec: list[np.ndarray | None] = []
    rec: list[np.ndarray | None] = []
    for column in range(scores.shape[1]):
        hit = labels[np.argsort(-scores[:, column], kind="stable"), column]
        positives = int(hit.sum())
        if positives == 0:
            prec.append(None)
            rec.append(None)
            continue
        true_pos = np.cumsum(hit)
        prec.append(true_pos / np.arange(1, len(hit) + 1))
        rec.append(true_pos / positives)
    return calc_detection_voc_ap(prec, rec)


def calc_detection_voc_ap(
    prec: Sequence[np.ndarray | None], rec: Sequence[np.ndarray | None], use_07_metric: bool = False
) -> np.ndarray:
    """Average precision per class from :func:`calc_instance_segmentation_voc_prec_rec`'s curves.

    ``use_07_metric=False`` (VOC 2010+): area under the precision envelope
    (precision made monotone from the right), summed where recall changes.
    ``use_07_metric=True`` (VOC 2007): mean over the 11 recalls
    ``t = 0, 0.1, …, 1`` of the best precision at recall ``>= t`` (0 if none);
    the thresholds are ``np.arange(0, 1.1, 0.1)`` as chainercv has them, so the
    4th is 0.30000000000000004 and a recall of exactly 0.3 does not reach it.
    NaN for a class whose precision or recall is ``None``; 0 for a class with
    ground truth but no detection.
    """
    ap = np.full(len(prec), np.nan)
    for label, (p, r) in enumerate(zip(prec, rec)):
        if p is None or r is None:
            continue
        p = np.nan_to_num(np.asarray(p, dtype=np.float64))
        r = np.asarray(r, dtype=np.float64)
        if use_07_metric:
            total = 0.0
            for t in np.arange(0.0, 1.1, 0.1):
                reached = r >= t
                total += (p[reached].max() if reached.any() else 0.0) / 11
            ap[label] = total
        else:
            precision = np.concatenate([[0.0], p, [0.0]])
            recall = np.concatenate([[0.0], r, [1.0]])
            precision = np.maximum.accumulate(precision[::-1])[::-1]
            steps = np.flatnonzero(recall[1:] != recall[:-1])
            ap[label] = float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))
    return ap


def eval_instance_segmentation_voc(
    pred_masks: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    iou_thresh: float = 0.5,
    use_07_metric: bool = False,
    gt_difficults: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """VOC instance-segmentation AP (mAP_r) with chainercv's conventions; fractions, not percent.

    Per image ``i``: ``pred_masks[i]`` ``(R, H, W)`` bool, ``pred_labels[i]``
    ``(R,)`` int, ``pred_scores[i]`` ``(R,)`` float, ``gt_masks[i]`` ``(G, H, W)``
    bool, ``gt_labels[i]`` ``(G,)`` int (from :meth:`wsss.data.voc.VOCDataset.instances`,
    whose masks already exclude the 255 band).

    Labels: chainercv passes 0-based labels (0 = aeroplane). Any non-negative
    labels work here: ``ap`` is indexed by label value, so with wsss's 1..20
    ``ap[0]`` is NaN (never a label) and ``map``, a nanmean, is unchanged.
    Returns ``{"ap": (max label + 1,) float64, "map": float}``; see
    :func:`calc_instance_segmentation_voc_prec_rec` for matching (duplicates
    are false positives; equal scores: the later image's detection ranks first,
    within an image the given order holds, see :func:`_rank`) and
    :func:`calc_detection_voc_ap` for both AP definitions.
    """
    prec, rec = calc_instance_segmentation_voc_prec_rec(
        pred_masks, pred_labels, pred_scores, gt_masks, gt_labels, gt_difficults, iou_thresh
    )
    ap = calc_detection_voc_ap(prec, rec, use_07_metric=use_07_metric)
    return {"ap": ap, "map": _nanmean(ap)}


COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def eval_coco(coco_gt: Any, results: list[dict], iou_type: str = "segm", verbose: bool = False) -> dict[str, float]:
    """COCO AP through ``pycocotools.cocoeval.COCOeval`` (fractions; NaN where COCOeval gives -1).

    Args:
        coco_gt: a ``pycocotools.coco.COCO`` ground truth (e.g. :meth:`wsss.data.coco.COCODataset.coco_api`).
        results: COCO result dicts ``{"image_id", "category_id", "score", "segmentation"}`` (RLE) for
            ``segm``, ``{... "bbox": [x, y, w, h]}`` for ``bbox``
            (:func:`wsss.data.coco.encode_instances` makes them). An empty list scores 0.
        iou_type: ``segm`` or ``bbox``.
        verbose: print COCOeval's progress and summary table to stdout.
    Returns ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}``.
    """
    import contextlib
    import io as _io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(_io.StringIO())
    with sink:
        if results:
            coco_dt = coco_gt.loadRes(list(results))
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "categories": list(coco_gt.dataset["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: (float(v) if v >= 0 else math.nan) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}
