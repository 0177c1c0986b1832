"""Import and export of the image-level label files other WSSS code bases ship (``cls_labels.npy``).

Both are a pickled ``dict`` saved with ``np.save`` (so reading needs
``allow_pickle=True``: only open files you trust), mapping an image id to a
``(20,)`` float32 multi-hot vector over the VOC object classes (index ``c - 1``
for class ``c``):

* PSA (and RETAB, A2GNN, MSA): **string** keys, ``'2007_000032'``;
* IRN: **int** keys, the id without its underscore, ``2007000032``
  (decoded here as ``s[:4] + '_' + s[4:]``).

wsss itself never needs them (image labels are derived from the annotations,
:meth:`wsss.data.voc.VOCDataset.image_labels`); these functions exist to
compare with, or reuse, the files those code bases were run with.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np

from wsss.data.classes import NUM_FOREGROUND
from wsss.errors import WsssError
from wsss.io import atomic_path


def _decode_key(key: object, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        text = str(int(key))
        if len(text) < 5:
            raise WsssError(f"{where}: int key {text} is not an IRN-style id (YYYYNNNNNN)")
        return f"{text[:4]}_{text[4:]}"
    raise WsssError(f"{where}: key {key!r} is neither a PSA string id nor an IRN int id")


def load_cls_labels(path: str | os.PathLike, num_classes: int = NUM_FOREGROUND) -> dict[str, np.ndarray]:
    """Read a PSA (str keys) or IRN (int keys) ``cls_labels.npy`` as ``{image_id: (num_classes,) float32}``.

    Keys come back as VOC ids (``'2007_000032'``) whichever style the file uses.
    Errors: missing or unreadable file, not a dict, a key of neither style, two
    keys naming one id, a vector of another length or with values other than 0/1.
    """
    where = str(path)
    try:
        obj = np.load(path, allow_pickle=True)
    except FileNotFoundError:
        raise WsssError(f"{where}: file not found") from None
    except (ValueError, OSError, pickle.UnpicklingError, EOFError) as exc:
        raise WsssError(f"{where}: unreadable .npy ({exc})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise WsssError(f"{where}: expected a pickled dict of image id -> label vector, got {type(obj).__name__}")
    labels: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        image_id = _decode_key(key, where)
        if image_id in labels:
            raise WsssError(f"{where}: id {image_id!r} appears twice")
        vector = np.asarray(value, dtype=np.float32).reshape(-1)
        if vector.shape != (num_classes,):
            raise WsssError(f"{where}: {image_id}: label vector has {vector.size} entries, expected {num_classes}")
        if not np.isin(vector, (0.0, 1.0)).all():
            raise WsssError(f"{where}: {image_id}: label vector values must be 0 or 1")
        labels[image_id] = vector
    return labels


def save_cls_labels(
    path: str | os.PathLike, labels: dict[str, np.ndarray], style: Literal["psa", "irn"] = "psa"
) -> None:
    """Write ``{image_id: (20,) multi-hot}`` as a ``cls_labels.npy`` PSA (str keys) or IRN (int keys) reads."""
    if style not in ("psa", "irn"):
        raise WsssError(f"cls_labels style {style!r}: expected 'psa' or 'irn'")
    out: dict[object, np.ndarray] = {}
    for image_id, vector in labels.items():
        key: object = image_id
        if style == "irn":
            digits = image_id.replace("_", "")
            if not digits.isdigit():
                raise WsssError(f"{path}: id {image_id!r} cannot be an IRN int key")
            key = int(digits)
        out[key] = np.asarray(vector, dtype=np.float32)
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.array(out, dtype=object), allow_pickle=True)
