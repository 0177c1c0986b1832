"""Checks of annotation geometry and label values, shared by every reader.

Each check raises :class:`WsssError` with one line naming ``where`` (the file)
and what is wrong. Boxes and points use 0-based pixel coordinates: pixel
``(x, y)`` covers column ``x`` and row ``y`` of an ``H×W`` image, valid for
``0 <= x <= W-1`` and ``0 <= y <= H-1`` (boxes are inclusive: ``x1 = W-1`` is the last column).
"""

from __future__ import annotations

import math

import numpy as np

from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX


def _finite(value: float) -> bool:
    """``math.isfinite`` that also takes Python integers too large for a float (finite: the range checks
    that follow reject them)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return True


def check_box(box: tuple[float, float, float, float], size: tuple[int, int], where: str, what: str = "box") -> None:
    """Validate a 0-based inclusive box ``(x0, y0, x1, y1)`` in an image of ``size = (H, W)``.

    Errors: non-finite coordinates, inverted (``x1 < x0`` or ``y1 < y0``; a
    one-pixel box ``x0 == x1`` is valid since the box is inclusive), or any
    corner outside the image.
    """
    height, width = size
    x0, y0, x1, y1 = box
    if not all(_finite(v) for v in box):
        raise WsssError(f"{where}: {what} {tuple(box)} has a non-finite coordinate")
    if x1 < x0 or y1 < y0:
        raise WsssError(f"{where}: {what} {tuple(box)} is inverted or empty (x1 < x0 or y1 < y0)")
    if x0 < 0 or y0 < 0 or x1 > width - 1 or y1 > height - 1:
        raise WsssError(
            f"{where}: {what} {tuple(box)} lies outside the {width}x{height} image "
            f"(0-based inclusive, x in 0..{width - 1}, y in 0..{height - 1})"
        )


def check_point_in_image(x: float, y: float, size: tuple[int, int], where: str, what: str = "point") -> None:
    """Validate a 0-based point ``(x, y)`` in an image of ``size = (H, W)``: ``0 <= x < W`` and ``0 <= y < H``.

    Integer points are pixel indices (``0..W-1``); a fractional point is valid
    when it lies in a pixel of the image (the one at ``floor(x), floor(y)``).
    """
    height, width = size
    if not (_finite(x) and _finite(y)):
        raise WsssError(f"{where}: {what} ({x}, {y}) has a non-finite coordinate")
    if not (0 <= x < width and 0 <= y < height):
        raise WsssError(
            f"{where}: {what} ({x}, {y}) lies outside the {width}x{height} image "
            f"(0-based, 0 <= x < {width}, 0 <= y < {height})"
        )


def check_label_values(label: np.ndarray, where: str, num_classes: int = 21, ignore_index: int = IGNORE_INDEX) -> None:
    """Every value of ``label`` must be a class id ``0..num_classes-1`` or ``ignore_index``."""
    values = np.unique(label)
    bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise WsssError(f"{where}: mask values {shown} outside 0..{num_classes - 1} and {ignore_index}")


def check_same_size(shape: tuple[int, ...], size: tuple[int, int], where: str, what: str = "mask") -> None:
    """A mask of ``shape`` (``H×W``) must match its image ``size = (H, W)``."""
    if tuple(shape[:2]) != tuple(size):
        raise WsssError(
            f"{where}: {what} size {shape[1]}x{shape[0]} differs from its image size {size[1]}x{size[0]} (WxH)"
        )
