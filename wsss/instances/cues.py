"""Instance cues: cutting semantic pseudo-labels into instances with the supervision's instance cues.

Cues (``cue`` of :func:`make_instances`; by default chosen from the supervision, see :data:`CUE_OF_SUPERVISION`):

* ``boxes`` (box supervision): one instance per box of the VOC XML; its mask is
  the box class's pseudo-label pixels inside the box. A pixel inside several
  boxes of its class goes to the smallest box (small objects win, as SDI
  resolves GrabCut overlaps). A box with no pixel of its class is exported as the
  filled box (APro's box mask) with half the score, or dropped (``empty_box: drop``).
* ``points`` (point supervision): one instance per annotated object point
  (``Points/<id>.txt``, lines ``x y class_index confidence``, class_index 0-based
  over the 20 object classes, read by :func:`wsss.data.annotations.read_points`;
  background points, class_index -1, are skipped). Each 8-connected region of a class (at least
  ``min_component_px`` pixels, BESTIE's 50) is split among the points of that
  class lying in it, every pixel going to its nearest point (BESTIE/P2Seg's
  ``dis_group``); regions without a point are left out (BESTIE: "unlabeled"). A
  point whose class has no region under it gets a ``fallback_size`` square around
  it with half the score (P2Seg gives such points a 64×64 box), or nothing when
  ``fallback_size`` is 0.
* ``components`` (image-level tags, and scribbles until a scribble reader exists):
  each 8-connected region of each class is an instance; fragments smaller than
  ``min_fraction`` of the image (IRN: 1 %) are dropped.

Scores: the mean probability of the instance's class inside its mask when a
probability map ``(K, H, W)`` is given; else area-based, ``sqrt(area / (H·W))``
(in (0, 1]; larger regions rank first, as IRN ranks by area-thresholded scores).

The COCO json of the instances: :mod:`wsss.instances.coco`; their scoring: :mod:`wsss.instances.scoring`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from wsss.data.classes import IGNORE_INDEX
from wsss.data.reader import DatasetReader
from wsss.errors import WsssError
from wsss.instances.instance_set import InstanceSet
from wsss.params import InstanceSettings

#: default instance cue per supervision kind
CUE_OF_SUPERVISION = {"image": "components", "scribble": "components", "point": "points", "box": "boxes",
                      "weakshot": "components"}
_EIGHT = np.ones((3, 3), dtype=bool)


def instance_scores(masks: np.ndarray, labels: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(R,)`` float32: mean ``probs[label]`` inside each mask when ``probs (K, H, W)`` is given,
    else ``sqrt(area / (H·W))``. An empty mask scores 0."""
    masks = np.asarray(masks, dtype=bool)
    scores = np.zeros(len(masks), dtype=np.float32)
    if len(masks) == 0:
        return scores
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    for r, (mask, label) in enumerate(zip(masks, labels)):
        if areas[r] == 0:
            continue
        if probs is not None:
            scores[r] = float(probs[int(label)][mask].mean())
        else:
            scores[r] = float(np.sqrt(areas[r] / mask.size))
    return scores


def _check_semantic(semantic: np.ndarray) -> np.ndarray:
    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f"semantic label map must be (H, W), got {semantic.shape}")
    return semantic


def instances_from_components(
    semantic: np.ndarray, min_fraction: float = 0.01, probs: np.ndarray | None = None
) -> InstanceSet:
    """One instance per 8-connected region of each object class of ``semantic (H, W)`` (0 bg, 1..K-1, 255 ignored).

    Regions smaller than ``min_fraction`` of the image are dropped. Order: by class, then by region label.
    """
    semantic = _check_semantic(semantic)
    size = semantic.shape
    min_area = min_fraction * semantic.size
    masks, labels = [], []
    for cls in np.unique(semantic):
        if cls == 0 or cls == IGNORE_INDEX:
            continue
        regions, count = ndimage.label(semantic == cls, structure=_EIGHT)
        for k in range(1, count + 1):
            mask = regions == k
            if mask.sum() >= max(min_area, 1):
                masks.append(mask)
                labels.append(int(cls))
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    return InstanceSet.stack(masks, labels, list(scores), size)


def square_mask(center: tuple[int, int], side: int, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the ``side × side`` square around ``center = (x, y)``, clipped to the image."""
    mask = np.zeros(size, dtype=bool)
    x, y = center
    half = side // 2
    mask[max(0, y - half): y - half + side, max(0, x - half): x - half + side] = True
    return mask


def point_owners(semantic: np.ndarray, points: Sequence[Any], min_component_px: int = 0) -> np.ndarray:
    """Which point each pixel belongs to: ``(H, W)`` int64, an index into ``points`` or -1.

    ``semantic (H, W)``: class map (0 bg, 1..K-1, 255 ignored); ``points``: objects with ``x``, ``y``, ``class_id``
    (all > 0). Each 8-connected region of a class (at least ``min_component_px`` pixels) holding exactly one point
    of that class belongs to it; one holding several is split, each pixel to its nearest point (BESTIE/P2Seg's
    ``dis_group``); one holding none stays -1 (BESTIE: "unlabeled"), as do background and ignored pixels.
    """
    semantic = _check_semantic(semantic)
    owner = np.full(semantic.shape, -1, dtype=np.int64)
    for cls in sorted({p.class_id for p in points}):
        regions, count = ndimage.label(semantic == cls, structure=_EIGHT)
        of_class = [i for i, p in enumerate(points) if p.class_id == cls]
        for k in range(1, count + 1):
            region = regions == k
            if region.sum() < min_component_px:
                continue
            inside = [i for i in of_class if region[points[i].y, points[i].x]]
            if not inside:
                continue
            ys, xs = np.nonzero(region)
            centres = np.array([(points[i].x, points[i].y) for i in inside], dtype=np.float64)
            d2 = (xs[:, None] - centres[None, :, 0]) ** 2 + (ys[:, None] - centres[None, :, 1]) ** 2
            owner[ys, xs] = np.asarray(inside)[d2.argmin(axis=1)]
    return owner


def instances_from_points(
    semantic: np.ndarray,
    points: Sequence[Any],
    min_component_px: int = 50,
    min_confidence: float = 0.0,
    fallback_size: int = 0,
    probs: np.ndarray | None = None,
) -> InstanceSet:
    """One instance per object point of ``points`` with confidence ≥ ``min_confidence`` (see the module docstring).

    ``points``: objects with ``x``, ``y`` (0-based pixel), ``class_id`` and ``confidence``
    (:class:`wsss.data.annotations.PointAnnotation`); background points (class 0) are skipped.
    Returns instances in point order (points that end with no pixels are left out).
    """
    semantic = _check_semantic(semantic)
    size = semantic.shape
    kept = [p for p in points if p.class_id > 0 and p.confidence >= min_confidence]
    owner = point_owners(semantic, kept, min_component_px)  # index into ``kept`` of each pixel's point
    masks, labels, fallback = [], [], []
    for i, point in enumerate(kept):
        mask = owner == i
        is_fallback = False
        if not mask.any():
            if fallback_size <= 0:
                continue
            mask, is_fallback = square_mask((point.x, point.y), fallback_size, size), True
        masks.append(mask)
        labels.append(point.class_id)
        fallback.append(is_fallback)
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    scores[np.asarray(fallback, dtype=bool)] *= 0.5
    return InstanceSet.stack(masks, labels, list(scores), size)


def instances_from_boxes(
    semantic: np.ndarray,
    boxes: Sequence[tuple[int, tuple[int, int, int, int]]],
    empty_box: str = "fill",
    probs: np.ndarray | None = None,
) -> InstanceSet:
    """One instance per ``(class_id, (x0, y0, x1, y1))`` box (0-based inclusive, as :class:`wsss.data.voc.VOCObject`).

    ``empty_box``: ``fill`` (the filled box, half score) or ``drop`` for a box with no pixel of its class.
    Returns instances in box order.
    """
    if empty_box not in ("fill", "drop"):
        raise WsssError(f"empty_box: must be 'fill' or 'drop', got {empty_box!r}")
    semantic = _check_semantic(semantic)
    size = semantic.shape
    areas = [(x1 - x0 + 1) * (y1 - y0 + 1) for _, (x0, y0, x1, y1) in boxes]
    owner = np.full(size, -1, dtype=np.int64)
    best_area = np.full(size, np.inf)
    for i, (cls, (x0, y0, x1, y1)) in enumerate(boxes):
        window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        claim = (semantic[window] == cls) & (areas[i] < best_area[window])
        owner[window][claim] = i
        best_area[window][claim] = areas[i]
    masks, labels, fallback = [], [], []
    for i, (cls, (x0, y0, x1, y1)) in enumerate(boxes):
        mask = owner == i
        is_fallback = False
        if not mask.any():
            if empty_box == "drop":
                continue
            mask = np.zeros(size, dtype=bool)
            mask[y0:y1 + 1, x0:x1 + 1] = True
            is_fallback = True
        masks.append(mask)
        labels.append(int(cls))
        fallback.append(is_fallback)
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    scores[np.asarray(fallback, dtype=bool)] *= 0.5
    return InstanceSet.stack(masks, labels, list(scores), size)


def resolve_cue(cue: str, supervision: str) -> str:
    """``auto`` → the supervision's default cue; otherwise ``cue`` itself (validated)."""
    if cue == "auto":
        if supervision not in CUE_OF_SUPERVISION:
            raise WsssError(f"supervision.name: unknown supervision {supervision!r} (expected {', '.join(CUE_OF_SUPERVISION)})")
        return CUE_OF_SUPERVISION[supervision]
    if cue not in ("components", "points", "boxes"):
        raise WsssError(f"instances.cue: must be auto, components, points or boxes, got {cue!r}")
    return cue


def make_instances(
    dataset: DatasetReader, image_id: str, semantic: np.ndarray, cue: str, settings: InstanceSettings,
    points_dir: str | Path | None = None, probs: np.ndarray | None = None,
) -> InstanceSet:
    """Instances of ``image_id`` from its semantic pseudo-label ``(H, W)`` and the cue's annotation.

    ``boxes`` reads ``dataset.load_annotation``; ``points`` reads ``<points_dir>/<id>.txt``.
    """
    if cue == "components":
        return instances_from_components(semantic, settings.min_fraction, probs)
    if cue == "boxes":
        objects = dataset.load_annotation(image_id).objects
        return instances_from_boxes(semantic, [(o.class_id, o.box) for o in objects], settings.empty_box, probs)
    if cue == "points":
        if points_dir is None:
            raise WsssError("points: no point folder given")
        from wsss.data.annotations import read_points

        points = read_points(Path(points_dir) / f"{image_id}.txt", semantic.shape)
        return instances_from_points(semantic, points, settings.min_component_px, settings.min_confidence,
                                     settings.fallback_size, probs)
    raise WsssError(f"instances.cue: unknown cue {cue!r}")
