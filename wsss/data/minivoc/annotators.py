"""Simulated annotators of minivoc: a click per object, a stroke along each object and a few background
strokes, drawn inside the final non-void masks away from their borders, as a person would."""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


def _geodesic_path(region: np.ndarray, start: tuple[int, int], goal: tuple[int, int] | None = None,
                   ) -> list[tuple[int, int]]:
    """Shortest 8-connected path inside boolean ``region`` from ``start`` (x, y).

    With ``goal=None`` the path goes to the pixel geodesically farthest from ``start``.
    Returned as a list of ``(x, y)``.
    """
    # on the region's bounding box: the same nodes in the same (raster) order, so the same graph and path
    rows_any, cols_any = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    top, left = int(rows_any[0]), int(cols_any[0])
    region = region[top:int(rows_any[-1]) + 1, left:int(cols_any[-1]) + 1]
    start = (start[0] - left, start[1] - top)
    goal = None if goal is None else (goal[0] - left, goal[1] - top)
    ys, xs = np.nonzero(region)
    n = len(ys)
    index = np.full(region.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    h, w = region.shape
    rows, cols, weights = [], [], []
    for dy, dx, cost in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, math.sqrt(2)), (1, -1, math.sqrt(2))):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < h) & (x2 >= 0) & (x2 < w)
        j = np.full(n, -1, dtype=np.int64)
        j[ok] = index[y2[ok], x2[ok]]
        good = j >= 0
        rows.append(np.nonzero(good)[0])
        cols.append(j[good])
        weights.append(np.full(int(good.sum()), cost))
    graph = csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    src = int(index[start[1], start[0]])
    dist, pred = dijkstra(graph, directed=False, indices=src, return_predecessors=True)
    if goal is None:
        finite = np.where(np.isfinite(dist), dist, -1.0)
        dst = int(np.argmax(finite))
    else:
        dst = int(index[goal[1], goal[0]])
    path = []
    node = dst
    while node >= 0:
        path.append((int(xs[node]) + left, int(ys[node]) + top))
        if node == src:
            break
        node = int(pred[node])
    return path[::-1]


def _segments_inside(points: Sequence[tuple[int, int]], allowed: np.ndarray) -> bool:
    """Whether the 1-px polyline through ``points`` stays inside ``allowed``."""
    canvas = np.zeros(allowed.shape, np.uint8)
    pts = np.array(points, dtype=np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, 1, 1, lineType=cv2.LINE_8)
    return bool(np.all(allowed[canvas.astype(bool)]))


def _simplify(path: list[tuple[int, int]], allowed: np.ndarray, step: int = 4) -> list[tuple[int, int]]:
    """Every ``step``-th vertex of ``path`` (ends kept), or the full path if the short cut leaves ``allowed``."""
    if len(path) <= 2:
        return path if len(path) == 2 else path * 2
    thin = path[::step]
    if thin[-1] != path[-1]:
        thin.append(path[-1])
    return thin if _segments_inside(thin, allowed) else path


def _interior(region: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance transform of ``region`` and its pixels at least ``margin`` (or half the max) from the border."""
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    peak = float(dist.max())
    return dist, dist >= min(margin, max(1.0, 0.5 * peak))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def _annotator_point(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int]:
    """A click inside ``region``: a random pixel among those deep inside (not necessarily the centroid)."""
    dist, _ = _interior(region, 0.0)
    deep = dist >= max(1.0, 0.45 * float(dist.max()))
    ys, xs = np.nonzero(deep)
    k = int(rng.integers(len(ys)))
    return int(xs[k]), int(ys[k])


def _object_scribble(rng: np.random.Generator, region: np.ndarray) -> list[tuple[int, int]]:
    """A stroke through ``region`` along its long axis, kept away from the border, ends trimmed."""
    _, inner = _interior(region, 2.5)
    inner = _largest_component(inner & region)
    ys, xs = np.nonzero(inner)
    if len(ys) == 1:
        return [(int(xs[0]), int(ys[0]))] * 2
    coords = np.stack([xs, ys], 1).astype(np.float64)
    centred = coords - coords.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0] if len(vt) else np.array([1.0, 0.0])
    proj = centred @ axis
    start = (int(xs[np.argmin(proj)]), int(ys[np.argmin(proj)]))
    goal = (int(xs[np.argmax(proj)]), int(ys[np.argmax(proj)]))
    path = _geodesic_path(inner, start, goal)
    trim_a = int(len(path) * rng.uniform(0.04, 0.15))
    trim_b = int(len(path) * rng.uniform(0.04, 0.15))
    path = path[trim_a: len(path) - trim_b] or path
    return _simplify(path, region)


def _background_scribbles(rng: np.random.Generator, background: np.ndarray, count: int,
                          ) -> list[list[tuple[int, int]]]:
    """Up to ``count`` strokes in the largest background areas, away from objects and the void band."""
    _, inner = _interior(background, 3.0)
    inner &= background
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8), connectivity=8)
    order = [1 + int(i) for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")]
    strokes = []
    h, w = background.shape
    for comp in order[:count]:
        if stats[comp, cv2.CC_STAT_AREA] < 20:
            break
        region = labels == comp
        ys, xs = np.nonzero(region)
        k = int(rng.integers(len(ys)))
        far = _geodesic_path(region, (int(xs[k]), int(ys[k])))[-1]
        path = _geodesic_path(region, far)
        max_len = int(rng.uniform(0.25, 0.6) * (h + w))
        if len(path) > max_len:
            offset = int(rng.integers(0, len(path) - max_len + 1))
            path = path[offset: offset + max_len]
        strokes.append(_simplify(path, background))
    return strokes
