"""Seeds from point annotations: a small disc per point, fused with CAM evidence of the named classes.

Rule (A2GNN's idea for points, SEEDS_ANATOMY §1.8/§1.12: the annotation fixes the classes and a few
certain pixels, the CAM supplies the extent; A2GNN's own point-seed code is unpublished, so this is
our rule, stated exactly):

1. *Discs*: every pixel within ``radius`` px (Euclidean) of a point takes the class of its nearest
   point (ties: the earlier point in the file). Points with ``confidence < min_confidence`` are dropped.
2. *CAM evidence* (optional, ``cam_seeds``: image-level seeds computed on the CAMs of the named classes
   only, :func:`wsss.seeds.evidence.cam_evidence_seeds`): its confident background is kept; a connected
   (8-neighbour) region of confident class ``c`` is kept only when a point of class ``c`` lies within
   ``max_gap`` px of it (``max_gap=None`` keeps every region), so CAM blobs of a named class far from
   every click of that class are dropped; everything else is 255.
3. *Geodesic evidence* (optional, ``geodesic``): :func:`wsss.seeds.geodesic.geodesic_competition`,
   the clicks against the image border, labels the pixels still unknown where it decides, so
   background seeds exist even where the CAM lights up the background or there is no CAM and no
   background click; and where it gives a pixel to a click's class but the CAM said background,
   the click wins (a CAM that lights up the background instead of the object marks the object as
   confident background; the object reached from its click without crossing an edge is not).
4. The discs are painted last: a click is certain and overrides the CAM.

Without CAM evidence and geodesic evidence the seeds are the discs alone (background only from
background points, class index -1); the propagators then supply the background (see
:mod:`wsss.propagation.apro`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from wsss.data.annotations import PointAnnotation
from wsss.seeds.geodesic import GeodesicParams, geodesic_competition

IGNORE = 255


def nearest_point_labels(points: Sequence[PointAnnotation], size: tuple[int, int]) -> np.ndarray:
    """Every pixel takes the class of its nearest point (Euclidean; ties: earlier point). ``(H,W)`` uint8.

    The seeds-only baseline for points; with no point the map is all 255.
    """
    height, width = size
    if not points:
        return np.full(size, IGNORE, np.uint8)
    index = np.full(size, -1, np.int64)
    marker = np.ones(size, bool)
    for k in range(len(points) - 1, -1, -1):  # earlier points written last: they win shared pixels
        index[points[k].y, points[k].x] = k
        marker[points[k].y, points[k].x] = False
    _, (rows, cols) = ndimage.distance_transform_edt(marker, return_indices=True)
    classes = np.array([p.class_id for p in points], np.uint8)
    return classes[index[rows, cols]]


def point_discs(points: Sequence[PointAnnotation], size: tuple[int, int], radius: float) -> np.ndarray:
    """Step 1 of the rule: discs of ``radius`` px around the points, nearest point wins; rest 255. ``(H,W)`` uint8."""
    height, width = size
    seeds = np.full(size, IGNORE, np.uint8)
    if not points:
        return seeds
    best = np.full(size, np.inf)
    rows, cols = np.mgrid[0:height, 0:width]
    for p in points:
        distance = np.hypot(rows - p.y, cols - p.x)
        inside = (distance <= radius) & (distance < best)
        seeds[inside] = p.class_id
        best[inside] = distance[inside]
    return seeds


def point_seeds(
    points: Sequence[PointAnnotation], size: tuple[int, int], radius: float = 3.0,
    cam_seeds: np.ndarray | None = None, max_gap: float | None = 16.0, min_confidence: float = 0.0,
    image: np.ndarray | None = None, geodesic: GeodesicParams | None = None,
) -> np.ndarray:
    """Seeds ``(H,W)`` uint8 (0 bg, class ids, 255 unknown) from ``points`` by the module's rule.

    ``cam_seeds``: optional ``(H,W)`` image-level seeds over the classes the points name;
    ``geodesic``: step 3's settings (``None``: no step 3), which needs ``image (H,W,3)`` uint8.
    """
    kept = [p for p in points if p.confidence >= min_confidence]
    discs = point_discs(kept, size, radius)
    seeds = _cam_seeds(kept, size, cam_seeds, max_gap)
    if geodesic is not None:
        if image is None or image.shape[:2] != tuple(size):
            raise ValueError(f"geodesic point seeds need the image of size {size}")
        competition = geodesic_competition(image, kept, geodesic)
        clicked_object = (competition != 0) & (competition != IGNORE)
        take = (seeds == IGNORE) | ((seeds == 0) & clicked_object)
        seeds[take] = competition[take]
    painted = discs != IGNORE
    seeds[painted] = discs[painted]
    return seeds


def _cam_seeds(kept: Sequence[PointAnnotation], size: tuple[int, int], cam_seeds: np.ndarray | None,
               max_gap: float | None) -> np.ndarray:
    """Step 2: the CAM evidence kept by the points (all 255 without ``cam_seeds``). ``(H,W)`` uint8."""
    if cam_seeds is None:
        return np.full(size, IGNORE, np.uint8)
    if cam_seeds.shape != tuple(size):
        raise ValueError(f"cam_seeds shape {cam_seeds.shape} differs from the image size {size}")
    named = {p.class_id for p in kept}
    seeds = np.full(size, IGNORE, np.uint8)
    seeds[cam_seeds == 0] = 0
    for c in sorted(named - {0}):
        region = cam_seeds == c
        if not region.any():
            continue
        if max_gap is not None:
            clicks = np.ones(size, bool)
            for p in kept:
                if p.class_id == c:
                    clicks[p.y, p.x] = False
            distance = ndimage.distance_transform_edt(clicks)
            components, count = ndimage.label(region, structure=np.ones((3, 3), bool))
            nearest = ndimage.minimum(distance, components, index=np.arange(1, count + 1))
            keep = np.concatenate([[False], np.asarray(nearest) <= max_gap])
            region = keep[components]
        seeds[region] = c
    return seeds
