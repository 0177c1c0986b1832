"""The ``train_superpixel`` stage's per-image files.

* ``assoc/<id>.npy``: the association ``Q`` ``(9, Hp, Wp)`` uint8, ``round(255·Q)``, on the image padded at the
  bottom/right to multiples of the cell (:func:`wsss.superpixel.model.image_assoc`; crop ``[:, :H, :W]`` for the
  image). 9 bytes a pixel instead of float32's 36; :func:`load_assoc` divides by each pixel's sum, so rows sum to 1
  again (the quantisation moves a value by at most 1/510 before that; out-of-grid neighbours stay exactly 0).
* ``labels/<id>.png``: the hard superpixel ids ``(H, W)`` (:func:`wsss.superpixel.metrics.hard_labels`, cropped to
  the image) as a 16-bit greyscale PNG, which image viewers and ``PIL``/``cv2`` open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wsss.errors import WsssError
from wsss.io import atomic_path, load_npy, save_npy

ASSOC_DIR = "assoc"
LABELS_DIR = "labels"
#: quantisation scale of the stored association
ASSOC_LEVELS = 255


def quantize_assoc(assoc: np.ndarray) -> np.ndarray:
    """``(9, H, W)`` float association in [0, 1] → uint8 ``round(255·Q)``."""
    return np.clip(np.rint(np.asarray(assoc, dtype=np.float32) * ASSOC_LEVELS), 0, ASSOC_LEVELS).astype(np.uint8)


def dequantize_assoc(stored: np.ndarray) -> np.ndarray:
    """uint8 ``(9, H, W)`` → float32 association whose every pixel sums to 1 (the stored values renormalised)."""
    values = np.asarray(stored, dtype=np.float32)
    return values / np.maximum(values.sum(axis=0, keepdims=True), 1.0)


def save_assoc(folder: str | Path, image_id: str, assoc: np.ndarray) -> np.ndarray:
    """Write ``<folder>/assoc/<id>.npy`` (module docstring) atomically; returns what :func:`load_assoc` will read
    (so superpixels derived from it agree with the file)."""
    stored = quantize_assoc(assoc)
    save_npy(Path(folder) / ASSOC_DIR / f"{image_id}.npy", stored)
    return dequantize_assoc(stored)


def load_assoc(folder: str | Path, image_id: str) -> np.ndarray:
    """``(9, Hp, Wp)`` float32 association of ``<folder>/assoc/<id>.npy``, rows summing to 1. Missing or not a
    ``(9, Hp, Wp)`` uint8 array: a one-line :class:`WsssError` naming the file."""
    path = Path(folder) / ASSOC_DIR / f"{image_id}.npy"
    if not path.is_file():
        raise WsssError(f"{path}: superpixel association not found (run train_superpixel first)")
    stored = load_npy(path)
    if stored.dtype != np.uint8 or stored.ndim != 3 or stored.shape[0] != 9:
        raise WsssError(f"{path}: not a superpixel association (want (9, H, W) uint8, got {stored.shape} {stored.dtype})")
    return dequantize_assoc(stored)


def save_superpixel_png(folder: str | Path, image_id: str, labels: np.ndarray) -> None:
    """Write ``<folder>/labels/<id>.png``: ``(H, W)`` superpixel ids 0..65535 as a 16-bit greyscale PNG."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"{image_id}: superpixel ids must lie in 0..65535 for a 16-bit PNG")
    with atomic_path(Path(folder) / LABELS_DIR / f"{image_id}.png") as tmp:
        Image.fromarray(labels.astype(np.uint16)).save(tmp, format="PNG")


def load_superpixel_png(folder: str | Path, image_id: str) -> np.ndarray:
    """``(H, W)`` int32 superpixel ids of ``<folder>/labels/<id>.png`` (missing: one-line error naming the file)."""
    path = Path(folder) / LABELS_DIR / f"{image_id}.png"
    try:
        with Image.open(path) as image:
            return np.array(image).astype(np.int32)
    except FileNotFoundError:
        raise WsssError(f"{path}: superpixel labels not found (run train_superpixel first)") from None
    except (OSError, ValueError) as exc:
        raise WsssError(f"{path}: unreadable PNG ({exc})") from None
