"""PASCAL VOC class names and ids.

Ids: 0 background, 1..20 the object classes in VOC's order, 255 ignore/void.
Image-level label vectors (``(20,)`` multi-hot) index the 20 object classes only:
class ``c`` sits at index ``c - 1``.
"""

from __future__ import annotations

from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
NUM_CLASSES: int = len(VOC_CLASSES)  # 21, background included
NUM_FOREGROUND: int = NUM_CLASSES - 1  # 20
__all__ = ["VOC_CLASSES", "NUM_CLASSES", "NUM_FOREGROUND", "IGNORE_INDEX", "normalize_name", "class_id", "class_name"]

_IDS = {name: index for index, name in enumerate(VOC_CLASSES)}


def normalize_name(name: str) -> str:
    """Canonical spelling of a class name: lower case, spaces, ``/``, ``-`` and ``_`` removed.

    So ``"potted plant"`` and ``"tv/monitor"`` (labelme's spellings) read as
    ``pottedplant`` and ``tvmonitor``; every official VOC name is its own canonical form.
    """
    return "".join(ch for ch in name.strip().lower() if ch not in " /-_")


def class_id(name: str, where: str = "", names: tuple[str, ...] = VOC_CLASSES) -> int:
    """Id of class ``name`` in ``names`` (VOC: 0 background .. 20 tvmonitor).

    ``where`` (a file name) prefixes the error message. Raises :class:`WsssError`
    for a name that is not a class, e.g. ``"x.xml: unknown class name 'dinosaur'"``.
    """
    key = normalize_name(name)
    if names is VOC_CLASSES:
        index = _IDS.get(key)
    else:
        index = next((i for i, n in enumerate(names) if normalize_name(n) == key), None)
    if index is None:
        prefix = f"{where}: " if where else ""
        raise WsssError(f"{prefix}unknown class name {name!r} (expected one of {', '.join(names[1:])})")
    return index


def class_name(index: int, names: tuple[str, ...] = VOC_CLASSES) -> str:
    """Name of class id ``index`` (0..20); ``255`` is ``"ignore"``."""
    if index == IGNORE_INDEX:
        return "ignore"
    if not 0 <= index < len(names):
        raise WsssError(f"class id {index} out of range 0..{len(names) - 1}")
    return names[index]
