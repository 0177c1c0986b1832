"""CAM evidence restricted to the classes an annotation names (shared by the point and box seed builders).

A weak annotation (points, scribbles, boxes) says which classes are present; the
CAMs (``make_cam``: ``highres/<id>.npy`` ``(K,H,W)`` over the classes ``keys``
of ``keys.json``) are re-indexed onto exactly those classes before any seed rule
runs, so a class the CAMs fire on but the annotation does not name never seeds.
"""

from __future__ import annotations

import numpy as np

from wsss.crf import CRFParams
from wsss.seeds.image import irn_seeds, psa_seeds

IGNORE = 255


def cam_for_classes(cam: np.ndarray, cam_keys: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Re-index CAMs onto ``classes``.

    ``cam``: ``(K,H,W)`` maps of the classes ``cam_keys (K,)``; ``classes``: ``(K',)`` class
    ids. Returns ``(K',H,W)`` float32: the CAM of each class in ``classes``, zeros for a class
    the CAMs do not have.
    """
    cam = np.asarray(cam, dtype=np.float32)
    out = np.zeros((len(classes), *cam.shape[-2:]), dtype=np.float32)
    position = {int(k): i for i, k in enumerate(np.asarray(cam_keys).tolist())}
    for j, c in enumerate(np.asarray(classes).tolist()):
        if int(c) in position:
            out[j] = cam[position[int(c)]]
    return out


def cam_evidence_seeds(
    image: np.ndarray, cam: np.ndarray, cam_keys: np.ndarray, classes: np.ndarray, method: str = "psa",
    alpha_low: float = 4.0, alpha_high: float = 32.0, fg_threshold: float = 0.30, bg_threshold: float = 0.05,
    crf: CRFParams = CRFParams(),
) -> np.ndarray:
    """Image-level seeds (PSA's la/ha rule or IRN's thresholds, :mod:`wsss.seeds.image`) over ``classes`` only.

    ``image (H,W,3)`` uint8; ``cam (K,H,W)`` for ``cam_keys``; ``classes (K',)``. Returns
    ``(H,W)`` uint8 in ``{0} ∪ classes ∪ {255}``.
    """
    restricted = cam_for_classes(cam, cam_keys, classes)
    classes = np.asarray(classes, dtype=np.int64)
    if method == "psa":
        return psa_seeds(image, restricted, classes, alpha_low, alpha_high, crf)
    if method == "irn":
        return irn_seeds(image, restricted, classes, fg_threshold, bg_threshold, crf)
    raise ValueError(f"CAM seed method must be 'psa' or 'irn', got '{method}'")
