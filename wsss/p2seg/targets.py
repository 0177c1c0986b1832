"""P2Seg's targets and grouping, in numpy (SEEDS_ANATOMY §1.12–1.13).

Conventions: ``points`` are objects with ``x``, ``y`` (0-based pixel) and ``class_id`` (1..K-1) —
:class:`wsss.data.annotations.PointAnnotation`; offsets are ``(2, H, W)`` float32 ``(dy, dx)``, pointing from a
pixel to its object's point (Panoptic-DeepLab's order); a class map is ``(H, W)`` with 0 background, 1..K-1 the
classes and 255 ignored.

* S2I (semantic → instance): :func:`offset_targets` of :func:`wsss.instances.cues.point_owners` — a class region
  with exactly one point gives every pixel its offset to that point, with several each pixel its offset to the
  nearest, with none the region is ignored (weight 0);
* centre heatmaps (:func:`centre_heatmap`): one channel per object class, a Gaussian (σ 6, cut at 6σ+3) at each point;
* I2S (instance → semantic): :func:`affinity_labels` of a class or instance map pooled to the affinity grid
  (:func:`pool_labels`): 1 for two cells of one label, 0 for two labels, ignored where a cell is mixed or ignored;
* grouping (:func:`group_by_offset`): each pixel of a region goes to the point nearest to where its offset lands;
  self-refinement (:func:`refined_owners`) and the export (:func:`point_instances`) group the predicted class
  regions this way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from wsss.data.classes import IGNORE_INDEX
from wsss.instances.cues import square_mask
from wsss.instances.instance_set import InstanceSet


def object_points(points: Sequence[Any], min_confidence: float = 0.0) -> list[Any]:
    """The object points (class > 0) with confidence ≥ ``min_confidence``, in file order."""
    return [p for p in points if p.class_id > 0 and getattr(p, "confidence", 1.0) >= min_confidence]


def offset_targets(owner: np.ndarray, points: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(2, H, W)`` float32 ``(dy, dx)`` from each pixel to its point, and their weights ``(H, W)`` float32
    (1 where ``owner (H, W)`` — an index into ``points`` or -1 — names a point, else 0, offset 0)."""
    height, width = owner.shape
    offsets = np.zeros((2, height, width), np.float32)
    valid = owner >= 0
    if valid.any() and len(points):
        xy = np.array([(p.x, p.y) for p in points], np.float32)
        ys, xs = np.nonzero(valid)
        target = xy[owner[ys, xs]]
        offsets[0, ys, xs] = target[:, 1] - ys
        offsets[1, ys, xs] = target[:, 0] - xs
    return offsets, valid.astype(np.float32)


def centre_heatmap(points: Sequence[Any], size: tuple[int, int], num_classes: int, sigma: float = 6.0) -> np.ndarray:
    """``(num_classes - 1, H, W)`` float32: channel ``c - 1`` the max over class ``c``'s points of
    ``exp(-d² / 2σ²)``, cut to a ``(6σ + 3)``-pixel square around each point (Panoptic-DeepLab / BESTIE)."""
    height, width = size
    heat = np.zeros((num_classes - 1, height, width), np.float32)
    radius = int(round(3 * sigma + 1))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2)).astype(np.float32)
    for p in points:
        y0, y1 = max(0, p.y - radius), min(height, p.y + radius + 1)
        x0, x1 = max(0, p.x - radius), min(width, p.x + radius + 1)
        patch = kernel[y0 - (p.y - radius): y1 - (p.y - radius), x0 - (p.x - radius): x1 - (p.x - radius)]
        np.maximum(heat[p.class_id - 1, y0:y1, x0:x1], patch, out=heat[p.class_id - 1, y0:y1, x0:x1])
    return heat


def owner_labels(owner: np.ndarray, background: np.ndarray) -> np.ndarray:
    """An instance map for :func:`affinity_labels`: ``owner + 1`` on instance pixels, 0 where ``background (H, W)``
    bool, 255 elsewhere (pixels of no instance and no background). ``(H, W)`` int64."""
    labels = np.where(owner >= 0, owner + 1, IGNORE_INDEX).astype(np.int64)
    labels[background & (owner < 0)] = 0
    return labels


def pool_labels(labels: np.ndarray, stride: int) -> np.ndarray:
    """``(H, W)`` label map → ``(ceil(H/s), ceil(W/s))`` int64: a cell's label where all its pixels share one,
    255 where they differ or are ignored (padding counts as ignored)."""
    height, width = labels.shape
    gh, gw = -(-height // stride), -(-width // stride)
    padded = np.full((gh * stride, gw * stride), IGNORE_INDEX, np.int64)
    padded[:height, :width] = labels
    cells = padded.reshape(gh, stride, gw, stride).transpose(0, 2, 1, 3).reshape(gh, gw, stride * stride)
    first = cells[..., 0]
    pure = (cells == first[..., None]).all(axis=-1)
    return np.where(pure, first, IGNORE_INDEX)


def affinity_labels(cells: np.ndarray) -> np.ndarray:
    """Pairwise labels of a pooled label map ``(h, w)`` (:func:`pool_labels`) → ``(N, N)`` int8 over the N = h·w
    cells in row-major order: 1 same label, 0 different labels, -1 where either cell is ignored (255)."""
    flat = cells.reshape(-1)
    same = (flat[:, None] == flat[None, :]).astype(np.int8)
    ignored = flat == IGNORE_INDEX
    same[ignored, :] = -1
    same[:, ignored] = -1
    return same


def group_by_offset(region: np.ndarray, offsets: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Each pixel of ``region (H, W)`` bool to the point of ``points_xy (P, 2)`` (x, y) nearest to where its offset
    ``(2, H, W)`` ``(dy, dx)`` lands (BESTIE/P2Seg's ``group_pixels``). Returns ``(H, W)`` int64: the point's index,
    -1 outside the region (or everywhere when there is no point)."""
    owner = np.full(region.shape, -1, np.int64)
    if len(points_xy) == 0 or not region.any():
        return owner
    ys, xs = np.nonzero(region)
    landed_y = ys + offsets[0, ys, xs]
    landed_x = xs + offsets[1, ys, xs]
    pts = np.asarray(points_xy, np.float64)
    d2 = (landed_x[:, None] - pts[None, :, 0]) ** 2 + (landed_y[:, None] - pts[None, :, 1]) ** 2
    owner[ys, xs] = d2.argmin(axis=1)
    return owner


def present_probs(probs: np.ndarray, points: Sequence[Any]) -> np.ndarray:
    """``probs (K, H, W)`` restricted to background and the classes of ``points`` (the image's labels; P2Seg
    multiplies the softmax by them), renormalised. ``(K, H, W)`` float32."""
    keep = np.zeros(len(probs), bool)
    keep[0] = True
    for p in points:
        keep[p.class_id] = True
    masked = np.where(keep[:, None, None], probs, 0.0).astype(np.float32)
    return masked / np.maximum(masked.sum(axis=0, keepdims=True), 1e-12)


def refined_owners(probs: np.ndarray, offsets: np.ndarray, points: Sequence[Any]) -> np.ndarray:
    """Self-refinement: the predicted region of each point's class (argmax of :func:`present_probs`) grouped to
    that class's points by predicted offset. ``(H, W)`` int64 index into ``points`` or -1."""
    classes = present_probs(probs, points).argmax(axis=0)
    owner = np.full(classes.shape, -1, np.int64)
    for cls in sorted({p.class_id for p in points}):
        index = np.array([i for i, p in enumerate(points) if p.class_id == cls])
        xy = np.array([(points[i].x, points[i].y) for i in index], np.float64)
        grouped = group_by_offset(classes == cls, offsets, xy)
        inside = grouped >= 0
        owner[inside] = index[grouped[inside]]
    return owner


def point_instances(probs: np.ndarray, offsets: np.ndarray, points: Sequence[Any], fallback_size: int = 64,
                    fallback_score: float = 0.5) -> InstanceSet:
    """One instance per object point (in point order) from the network's ``probs (K, H, W)`` and ``offsets
    (2, H, W)``: the pixels of the point's predicted class region that group to it by offset
    (:func:`refined_owners`); score = the mean probability of its class inside the mask. A point left with no
    pixel gets the ``fallback_size`` square around it with score ``fallback_score`` (P2Seg: 64×64, 0.5)."""
    size = probs.shape[1:]
    if not points:
        return InstanceSet.empty(size)
    restricted = present_probs(probs, points)
    owner = refined_owners(probs, offsets, points)
    masks, labels, scores = [], [], []
    for i, p in enumerate(points):
        mask = owner == i
        if mask.any():
            score = float(restricted[p.class_id][mask].mean())
        else:
            mask, score = square_mask((p.x, p.y), fallback_size, size), fallback_score
        masks.append(mask)
        labels.append(p.class_id)
        scores.append(score)
    return InstanceSet.stack(masks, labels, scores, size)
