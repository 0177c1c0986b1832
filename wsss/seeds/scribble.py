"""Seeds from scribbles: the rasterised polylines, everything else unknown.

Each ``<polygon>`` is drawn as an 8-connected polyline ``width`` px thick (OpenCV, no
anti-aliasing; a one-vertex scribble is a dot of diameter ``width``). Background scribbles are drawn
first, object scribbles after them in file order, so where strokes cross the object stroke drawn
last wins. Pixels no stroke covers are 255.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage

from wsss.data.annotations import ScribbleAnnotation

IGNORE = 255


def _draw(canvas: np.ndarray, scribble: ScribbleAnnotation, value: int, width: int) -> None:
    vertices = np.array(scribble.vertices, dtype=np.int32).reshape(-1, 1, 2)
    if len(scribble.vertices) == 1:
        x, y = scribble.vertices[0]
        cv2.circle(canvas, (int(x), int(y)), max(int(width) // 2, 0), int(value), thickness=-1, lineType=cv2.LINE_8)
    else:
        cv2.polylines(canvas, [vertices], isClosed=False, color=int(value), thickness=max(int(width), 1),
                      lineType=cv2.LINE_8)


def scribble_seeds(scribbles: Sequence[ScribbleAnnotation], size: tuple[int, int], width: int = 3) -> np.ndarray:
    """Rasterise ``scribbles`` onto an ``size = (H, W)`` map: ``(H,W)`` uint8 (0 bg, class ids, 255 unknown)."""
    seeds = np.full(size, IGNORE, np.uint8)
    ordered = [s for s in scribbles if s.class_id == 0] + [s for s in scribbles if s.class_id != 0]
    for scribble in ordered:
        _draw(seeds, scribble, scribble.class_id, width)
    return seeds


def nearest_seed_labels(seeds: np.ndarray) -> np.ndarray:
    """Every pixel takes the class of its nearest seed pixel (Euclidean). ``(H,W)`` uint8; all 255 without seeds.

    The seeds-only baseline for scribbles (and any sparse seed map).
    """
    known = seeds != IGNORE
    if not known.any():
        return seeds.copy()
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    return seeds[rows, cols]
