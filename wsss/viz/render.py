"""Pixels for inspection: colourised label maps, overlays, CAM heat maps, thumbnails and a legend.

Everything here takes and returns NumPy arrays (``(H, W, 3)`` uint8 RGB images,
``(H, W)`` integer label maps in 0..20 / 255, ``(H, W)`` float score maps in
[0, 1]); the writers go through :func:`wsss.io.atomic_path`.

Label maps are always drawn in the PASCAL VOC palette (:func:`wsss.io.voc_palette`;
255 = ignore/unknown is VOC's cream ``#e0e0c0``), so a gallery, a report and the
label PNGs on disk show a class in the same colour.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wsss.data.classes import VOC_CLASSES
from wsss.io import IGNORE_INDEX, atomic_path, save_label_png, voc_palette

#: (256, 3) uint8 VOC colours by class id
PALETTE: np.ndarray = np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)


def hex_color(class_id: int) -> str:
    """``#rrggbb`` of a class id in the VOC palette."""
    r, g, b = (int(v) for v in PALETTE[int(class_id)])
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class LegendEntry:
    """One legend swatch: class id, name and ``#rrggbb`` colour."""

    id: int
    name: str
    color: str


def legend_entries(class_ids: Sequence[int] | None = None, names: Sequence[str] = VOC_CLASSES,
                   include_ignore: bool = True) -> list[LegendEntry]:
    """Legend of ``class_ids`` (default: every class of ``names``), plus 255 "ignore" when asked."""
    ids = list(range(len(names))) if class_ids is None else [int(c) for c in class_ids if int(c) != IGNORE_INDEX]
    entries = [LegendEntry(c, names[c] if c < len(names) else f"class {c}", hex_color(c)) for c in ids]
    if include_ignore:
        entries.append(LegendEntry(IGNORE_INDEX, "ignore", hex_color(IGNORE_INDEX)))
    return entries


def colorize(label: np.ndarray) -> np.ndarray:
    """``(H, W)`` label map → ``(H, W, 3)`` uint8 RGB in the VOC palette."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    return PALETTE[label.astype(np.uint8)]


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend the colourised ``label`` over ``image`` (``alpha`` = label weight; background too)."""
    _check_pair(image, label)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(label).astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Map scores in [0, 1] (clipped) to a blue → cyan → yellow → red ramp, ``(..., 3)`` uint8.

    The classic "jet" ramp written as three clipped triangles; NaN reads as 0.
    """
    x = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    x = np.clip(x, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4.0 * x - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * x - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * x - 1.0), 0.0, 1.0)
    return (np.stack([r, g, b], axis=-1) * 255.0 + 0.5).astype(np.uint8)


def heat_overlay(image: np.ndarray, score: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """A score map in [0, 1] as a heat map over the greyed ``image`` (same ``H×W``)."""
    _check_pair(image, score)
    grey = image.astype(np.float32).mean(axis=-1, keepdims=True)
    blended = (1.0 - alpha) * grey + alpha * heat_colors(score).astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _check_pair(image: np.ndarray, other: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
    if tuple(other.shape[:2]) != tuple(image.shape[:2]):
        raise ValueError(f"map of size {other.shape[:2]} does not match image of size {image.shape[:2]}")


# ----------------------------------------------------------------------------------------------- resizing
def fit_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` scaled so that the longer side is ``max_side`` (never enlarged), at least 1 pixel."""
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB image to ``size = (h, w)`` (area-averaging when shrinking)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.uint8)


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Label map to ``size = (h, w)`` by nearest neighbour (no blended class ids)."""
    if tuple(label.shape) == tuple(size):
        return np.asarray(label, dtype=np.uint8)
    resized = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="L").resize((size[1], size[0]),
                                                                                  Image.Resampling.NEAREST)
    return np.asarray(resized, dtype=np.uint8)


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Integer id map (superpixel ids, any range) to ``size = (h, w)`` by nearest neighbour, sampling each output
    pixel's centre: output ``(i, j)`` reads input ``(floor((i + ½)·H/h), floor((j + ½)·W/w))``."""
    ids = np.asarray(ids)
    if tuple(ids.shape) == tuple(size):
        return ids
    height, width = ids.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return ids[rows[:, None], cols[None, :]]


def id_boundaries(ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels whose id differs from their right or lower neighbour's (1-pixel lines, drawn on
    the left / upper side of each change)."""
    ids = np.asarray(ids)
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


#: colour of drawn superpixel boundaries (yellow reads on most photos)
BOUNDARY_COLOR: tuple[int, int, int] = (255, 255, 0)


def superpixel_overlay(image: np.ndarray, ids: np.ndarray, color: Sequence[int] = BOUNDARY_COLOR) -> np.ndarray:
    """``image`` with the boundaries of the superpixel map ``ids`` drawn over it at the image's own size.

    ``ids`` may be larger than ``image`` (a full-resolution map over a thumbnail): it is shrunk by nearest
    neighbour first and the boundaries found on the shrunk map, so they stay 1 pixel wide and solid at any
    scale (boundaries found at full resolution and then averaged down would fade to a faint tint).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
    edge = id_boundaries(resize_ids(ids, image.shape[:2]))
    drawn = np.array(image, dtype=np.uint8, copy=True)
    drawn[edge] = np.asarray(color, dtype=np.uint8)
    return drawn


def resize_score(score: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float score map to ``size = (h, w)`` (bilinear)."""
    score = np.asarray(score, dtype=np.float32)
    if tuple(score.shape) == tuple(size):
        return score
    resized = Image.fromarray(score, mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


# ------------------------------------------------------------------------------------------------ writers
def save_jpeg(path: str | os.PathLike, image: np.ndarray, quality: int = 85, full_chroma: bool = False) -> None:
    """Write an RGB image as JPEG atomically. ``full_chroma``: no chroma subsampling (4:4:4), for 1-pixel
    coloured lines, which 4:2:0 would smear over their neighbours."""
    options = {"subsampling": 0} if full_chroma else {}
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="JPEG", quality=int(quality), **options)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB image as PNG atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG", optimize=True)


def save_label_thumbnail(path: str | os.PathLike, label: np.ndarray, size: tuple[int, int]) -> None:
    """A label map shrunk to ``size`` (nearest) as a VOC palette PNG."""
    save_label_png(path, resize_label(label, size))


# -------------------------------------------------------------------------------------- composite figures
@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


@dataclass(frozen=True)
class Tile:
    """One panel of a composite figure: an RGB image and its caption."""

    title: str
    image: np.ndarray


def composite(tiles: Sequence[Tile], legend: Sequence[LegendEntry] = (), heading: str = "",
              tile_size: int = 192, per_row: int = 6, gap: int = 6, font_size: int = 13) -> np.ndarray:
    """Tiles on a grid (``per_row`` per row, each fitted into ``tile_size``), captions under them,
    a heading above and a legend row below.

    Used for the report's sample figures: photo | ground truth | CAMs | seeds | … | pseudo-label.
    """
    font = _font(font_size)
    line = font_size + 6
    fitted = [resize_image(t.image, fit_size(*t.image.shape[:2], tile_size)) for t in tiles]
    per_row = max(1, min(per_row, len(fitted) or 1))
    cell_w = max((f.shape[1] for f in fitted), default=tile_size)
    cell_h = max((f.shape[0] for f in fitted), default=tile_size) + line
    grid_rows = (len(fitted) + per_row - 1) // per_row
    width = per_row * cell_w + (per_row + 1) * gap
    head_h = line + gap if heading else 0
    # legend swatches flow left to right, wrapping at the figure width
    swatch_w = [font_size + 8 + int(font.getlength(e.name)) + 12 for e in legend]
    rows, x = (1 if legend else 0), gap
    for w in swatch_w:
        if x + w > width and x > gap:
            rows, x = rows + 1, gap
        x += w
    legend_h = rows * line + (gap if legend else 0)
    height = head_h + gap + grid_rows * (cell_h + gap) + legend_h
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if heading:
        draw.text((gap, gap // 2 + 2), heading, fill=(0, 0, 0), font=font)
    top = head_h + gap
    for index, (tile, image) in enumerate(zip(tiles, fitted)):
        row, col = divmod(index, per_row)
        x, y = gap + col * (cell_w + gap), top + row * (cell_h + gap)
        canvas.paste(Image.fromarray(image), (x, y))
        draw.text((x, y + image.shape[0] + 3), _clip_text(tile.title, font, cell_w), fill=(0, 0, 0), font=font)
    x, y = gap, top + grid_rows * (cell_h + gap)
    for entry, w in zip(legend, swatch_w):
        if x + w > width and x > gap:
            x, y = gap, y + line
        draw.rectangle((x, y + 2, x + font_size + 2, y + font_size + 4), fill=entry.color, outline=(80, 80, 80))
        draw.text((x + font_size + 7, y + 2), entry.name, fill=(0, 0, 0), font=font)
        x += w
    return np.asarray(canvas, dtype=np.uint8)


def _clip_text(text: str, font, max_width: int) -> str:
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "...") > max_width:
        text = text[:-1]
    return text + "..."
