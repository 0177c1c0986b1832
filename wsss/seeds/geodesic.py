"""Labels by geodesic competition between the clicked points and the image border (background).

Background evidence that does not come from the CAM: the *boundary prior* of geodesic saliency
(Wei et al., ECCV 2012) — background regions reach the image border through pixels of similar colour,
an object is cut off from it by its own outline — set against the clicks, as in geodesic star /
GeoS segmentation: every pixel goes to the source it reaches most cheaply, if that source wins by a
margin.

* Graph: the 4-neighbour grid of the image (RGB in [0, 1], Gaussian-blurred by ``blur`` px); an edge
  costs ``‖Δrgb‖₂ + step`` (``step`` keeps distances growing across flat regions).
* Sources: each point (its class; background points, class 0, are background sources) and the image
  border as background, except border pixels within ``border_guard`` of a foreground point (an object
  that touches the border does not become a background source).
* A pixel takes the label (class id, 0 background) of its cheapest source when that cost plus
  ``margin`` is below the cost of every other label; otherwise 255.

Costs are shortest paths (:func:`scipy.sparse.csgraph.dijkstra`, one multi-source run per label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from wsss.data.annotations import PointAnnotation

IGNORE = 255


@dataclass(frozen=True)
class GeodesicParams:
    """Settings of :func:`geodesic_competition` (module docstring)."""

    #: a label wins a pixel only when it is this much cheaper than every other label
    margin: float = 0.3
    #: border pixels closer than this to a foreground point are not background sources
    border_guard: float = 0.3
    #: Gaussian sigma (px) of the image before the colour differences
    blur: float = 1.0
    #: cost of one step, on top of the colour difference
    step: float = 1e-3


def grid_graph(image: np.ndarray, blur: float = 1.0, step: float = 1e-3) -> csr_matrix:
    """The undirected 4-neighbour grid of ``image (H,W,3) uint8`` as an ``(H·W, H·W)`` sparse matrix of edge costs.

    Node ``y·W + x``; edge cost ``‖Δrgb‖₂ + step`` with RGB in [0, 1] after a Gaussian blur of σ ``blur``.
    """
    colours = np.asarray(image, dtype=np.float32) / 255.0
    if blur > 0:
        colours = cv2.GaussianBlur(colours, (0, 0), blur)
    height, width = colours.shape[:2]
    index = np.arange(height * width).reshape(height, width)
    right = np.sqrt(((colours[:, 1:] - colours[:, :-1]) ** 2).sum(-1))
    down = np.sqrt(((colours[1:] - colours[:-1]) ** 2).sum(-1))
    rows = np.concatenate([index[:, :-1].ravel(), index[:-1].ravel()])
    cols = np.concatenate([index[:, 1:].ravel(), index[1:].ravel()])
    costs = np.concatenate([right.ravel(), down.ravel()]).astype(np.float64) + step
    return coo_matrix((costs, (rows, cols)), shape=(height * width,) * 2).tocsr()


def _distance(graph: csr_matrix, sources: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H,W)`` float64 cost from the nearest of the flat node indices ``sources`` (inf where none)."""
    if len(sources) == 0:
        return np.full(size, np.inf)
    return dijkstra(graph, directed=False, indices=np.unique(sources), min_only=True).reshape(size)


def geodesic_competition(image: np.ndarray, points: Sequence[PointAnnotation],
                         params: GeodesicParams = GeodesicParams()) -> np.ndarray:
    """``(H,W)`` uint8 labels of ``image (H,W,3)`` by the module's rule: class ids, 0 background, 255 undecided.

    With no foreground point every pixel the background reaches is background.
    """
    height, width = image.shape[:2]
    size = (height, width)
    graph = grid_graph(image, params.blur, params.step)
    flat = lambda group: np.array([p.y * width + p.x for p in group], np.int64)
    foreground = [p for p in points if p.class_id != 0]
    classes = sorted({p.class_id for p in foreground})
    costs = [_distance(graph, flat([p for p in foreground if p.class_id == c]), size) for c in classes]
    border = np.zeros(size, bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if costs:
        border &= np.min(costs, axis=0) > params.border_guard
    background_sources = np.concatenate([np.flatnonzero(border.ravel()), flat([p for p in points if p.class_id == 0])])
    costs.insert(0, _distance(graph, background_sources, size))
    labels_of = np.array([0, *classes], np.uint8)
    stacked = np.stack(costs)  # (L,H,W)
    order = np.argsort(stacked, axis=0)
    best = np.take_along_axis(stacked, order[:1], axis=0)[0]
    second = np.take_along_axis(stacked, order[1:2], axis=0)[0] if len(costs) > 1 else np.full(size, np.inf)
    decided = np.isfinite(best) & (best + params.margin < second)
    return np.where(decided, labels_of[order[0]], IGNORE).astype(np.uint8)
