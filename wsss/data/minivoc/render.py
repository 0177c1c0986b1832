"""Rendering one minivoc image (:func:`render_sample`): objects drawn from their class specs, backgrounds and
clutter, composition, finishing (light, blur, noise), the VOC void band; the weak labels come from
:mod:`wsss.data.minivoc.annotators`."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from wsss.data.classes import NUM_FOREGROUND
from wsss.data.minivoc.annotators import _annotator_point, _background_scribbles, _object_scribble
from wsss.data.minivoc.params import MinivocParams
from wsss.data.minivoc.sample import ObjectAnnotation, Sample
from wsss.data.minivoc.specs import _BAR_COLORS, BG_COLORS, CLASS_SPECS, PALETTE, ClassSpec, Tex, _shape_mask
from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX


# --------------------------------------------------------------------------------------------
# Composition state
# --------------------------------------------------------------------------------------------


@dataclass
class _Placed:
    """An accepted object during composition."""

    spec: ClassSpec
    class_id: int
    flip: bool
    mask: np.ndarray  # unclipped crop mask
    origin: tuple[int, int]  # (x0, y0) of the crop, may be negative
    rgb: np.ndarray
    area_in_image: int
    area_total: int
    center: tuple[float, float]
    radius: float


# --------------------------------------------------------------------------------------------
# Small drawing helpers
# --------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide (bicubic upsampling of a random grid)."""
    gh = max(2, int(math.ceil(height / max(cell, 1.0))) + 2)
    gw = max(2, int(math.ceil(width / max(cell, 1.0))) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    up = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0)


def _jitter_color(rng: np.random.Generator, rgb: Sequence[float], hue: float = 0.025, sat: float = 0.15,
                  val: float = 0.12) -> np.ndarray:
    """``rgb`` (0..255) with its hue, saturation and value jittered."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = float(np.clip(s * rng.uniform(1 - sat, 1 + sat), 0.0, 1.0))
    v = float(np.clip(v * rng.uniform(1 - val, 1 + val), 0.0, 1.0))
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255.0


def _texture(tex: Tex, pa: np.ndarray, pb: np.ndarray, rng: np.random.Generator, scale_px: float) -> np.ndarray:
    """Blend factor ``t`` in [0, 1] of texture ``tex`` at part coordinates ``(pa, pb)`` (object units).

    ``scale_px`` is the object's pixels per unit (for noise-based textures).
    """
    f = tex.freq * rng.uniform(0.88, 1.12)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    kind = tex.kind
    if kind == "plain":
        t = 0.3 * _smooth_noise(rng, *pa.shape, cell=scale_px * 0.5)
    elif kind in ("stripes", "waves"):
        ang = math.radians(tex.angle)
        x = pa * math.cos(ang) + pb * math.sin(ang)
        if kind == "waves":
            x = pb + 0.12 * np.sin(2.0 * math.pi * 1.5 * pa + phase)
        t = np.clip(0.5 + 1.6 * np.sin(2.0 * math.pi * f * x + phase), 0.0, 1.0)
    elif kind == "checker":
        t = ((np.floor(f * pa + phase) + np.floor(f * pb + phase * 0.7)) % 2.0).astype(np.float32)
    elif kind == "dots":
        du = (f * pa + phase) % 1.0 - 0.5
        dv = (f * pb + 0.5 * phase) % 1.0 - 0.5
        t = (du * du + dv * dv < tex.size ** 2).astype(np.float32)
    elif kind == "rings":
        r = np.sqrt(pa * pa + pb * pb)
        t = np.clip(0.5 + 1.6 * np.sin(2.0 * math.pi * f * r + phase), 0.0, 1.0)
    elif kind == "grid":
        t = (((f * pa + phase) % 1.0) > tex.size).astype(np.float32)
    elif kind == "spots":
        noise = _smooth_noise(rng, *pa.shape, cell=scale_px / f)
        t = np.clip((noise - tex.size) * 8.0 + 0.5, 0.0, 1.0)
    elif kind == "noise":
        t = _smooth_noise(rng, *pa.shape, cell=max(1.5, scale_px / f))
    elif kind == "bars":
        t = ((np.floor(f * pa + phase) % len(_BAR_COLORS)) / (len(_BAR_COLORS) - 1)).astype(np.float32)
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return (t * tex.contrast).astype(np.float32)


def _resolve_color(name: str | None, body: np.ndarray, cache: dict[str, np.ndarray],
                   rng: np.random.Generator) -> np.ndarray:
    """Colour of a part spec name; palette colours get one jitter per instance (cached by name)."""
    assert name is not None
    if name == "body":
        return body
    if name.startswith("body:"):
        return body * float(name.split(":", 1)[1])
    if name not in cache:
        cache[name] = _jitter_color(rng, PALETTE[name])
    return cache[name]


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------


def _render_object(spec: ClassSpec, center: tuple[float, float], radius_px: float, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, np.ndarray, tuple[int, int], bool]:
    """Draw one instance of ``spec`` centred at ``center`` (px) whose parts fit a disc of ``radius_px``.

    Returns ``(mask, rgb, (x0, y0), flip)`` for the unclipped square crop whose top-left
    pixel is ``(x0, y0)`` (possibly outside the image).
    """
    ku, kv = rng.uniform(0.85, 1.15, size=2)
    scale = radius_px / spec.radius
    theta = math.radians(rng.uniform(-spec.rot_range, spec.rot_range))
    flip = bool(rng.random() < 0.5)
    half = int(math.ceil(radius_px * max(ku, kv))) + 2
    cx, cy = center
    x0, y0 = int(math.floor(cx)) - half, int(math.floor(cy)) - half
    size = 2 * half + 1
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dx = xs + x0 - cx
    dy = ys + y0 - cy
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    u = (dx * cos_t + dy * sin_t) / (scale * ku)
    v = (-dx * sin_t + dy * cos_t) / (scale * kv)
    if flip:
        u = -u

    body = _jitter_color(rng, PALETTE[spec.body_colors[rng.integers(len(spec.body_colors))]])
    cache: dict[str, np.ndarray] = {}
    light = rng.normal(size=2)
    light /= np.linalg.norm(light) + 1e-9
    shade = (1.0 + 0.13 * np.clip(light[0] * u + light[1] * v, -1.5, 1.5)).astype(np.float32)

    mask = np.zeros((size, size), dtype=bool)
    rgb = np.zeros((size, size, 3), dtype=np.float32)
    for part in spec.parts:
        jitter = rng.normal(0.0, 0.03, size=2)
        p = u - (part.center[0] + jitter[0])
        q = v - (part.center[1] + jitter[1])
        phi = math.radians(part.rot + rng.normal(0.0, 3.0))
        pa = p * math.cos(phi) + q * math.sin(phi)
        pb = -p * math.sin(phi) + q * math.cos(phi)
        wobble = None
        if part.shape == "blob":
            k = rng.choice(np.arange(3, 8), size=3, replace=False).astype(np.float32)
            wobble = np.stack([k, rng.uniform(0.05, 0.12, 3), rng.uniform(0, 2 * math.pi, 3)], axis=1)
        inside = _shape_mask(part.shape, pa / part.size[0], pb / part.size[1], wobble)
        if not inside.any():
            continue
        c0 = _resolve_color(part.color, body, cache, rng)
        # the texture is drawn over the whole crop (its noise depends on the crop's size), the colour
        # only at the part's pixels: the same values element by element, without the (size, size, 3) temporaries
        if part.tex.kind == "bars":
            t = _texture(part.tex, pa, pb, rng, scale)[inside]
            index = np.rint(t * (len(_BAR_COLORS) - 1)).astype(np.int64)
            bars = np.stack([_resolve_color(n, body, cache, rng) for n in _BAR_COLORS])
            colour = bars[index]
        else:
            c1 = _resolve_color(part.color2, body, cache, rng) if part.color2 else c0 * 0.7
            t = _texture(part.tex, pa, pb, rng, scale)[inside][:, None]
            colour = c0 * (1.0 - t) + c1 * t
        rgb[inside] = colour * shade[inside][:, None]
        mask |= inside
    return mask, rgb, (x0, y0), flip


def _clip_box(origin: tuple[int, int], size: int, height: int, width: int,
              ) -> tuple[slice, slice, slice, slice] | None:
    """Slices (image rows, image cols, crop rows, crop cols) of a ``size`` crop at ``origin``; None if outside."""
    x0, y0 = origin
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + size, width), min(y0 + size, height)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    return slice(iy0, iy1), slice(ix0, ix1), slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)


# --------------------------------------------------------------------------------------------
# Backgrounds and clutter
# --------------------------------------------------------------------------------------------


def _bg_color(rng: np.random.Generator, p_object: float) -> np.ndarray:
    """A background colour: muted, or (with probability ``p_object``) an object palette colour."""
    if rng.random() < p_object:
        names = sorted(PALETTE)
        return _jitter_color(rng, PALETTE[names[rng.integers(len(names))]], sat=0.3, val=0.2)
    return _jitter_color(rng, BG_COLORS[rng.integers(len(BG_COLORS))], hue=0.04, sat=0.25, val=0.18)


def _bg_gradient(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Linear gradient between two colours with soft blotchy variation."""
    ang = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xs * math.cos(ang) + ys * math.sin(ang))
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    t = np.clip(t + 0.35 * (_smooth_noise(rng, h, w, 40.0) - 0.5), 0, 1)[..., None]
    return c0 * (1 - t) + c1 * t


def _bg_grass(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Fine mottled texture with short random strokes (grass, gravel)."""
    t = 0.6 * _smooth_noise(rng, h, w, 2.0) + 0.4 * _smooth_noise(rng, h, w, 12.0)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    n = int(h * w / rng.uniform(60, 160))
    base = rng.uniform(-0.4, 0.4) + math.pi / 2
    for _ in range(n):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang = base + rng.normal(0, 0.35)
        length = rng.uniform(3, 9)
        x2, y2 = x + length * math.cos(ang), y - length * math.sin(ang)
        shade = float(rng.uniform(0.6, 1.3))
        colour = tuple(float(c) for c in np.clip((c0 if rng.random() < 0.5 else c1) * shade, 0, 255))
        cv2.line(img, (int(x), int(y)), (int(x2), int(y2)), colour, 1, cv2.LINE_AA)
    return img


def _bg_wood(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Wavy parallel grain (wood, water ripples)."""
    ang = rng.uniform(0, math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x = xs * math.cos(ang) + ys * math.sin(ang)
    period = rng.uniform(4, 12)
    warp = 6.0 * _smooth_noise(rng, h, w, 30.0)
    t = 0.5 + 0.5 * np.sin(2 * math.pi * x / period + warp)
    t = 0.7 * t + 0.3 * _smooth_noise(rng, h, w, 3.0)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _bg_tiles(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Tiles or bricks: cells of jittered colour separated by grout lines."""
    tw, th = int(rng.integers(10, 30)), int(rng.integers(8, 26))
    ys, xs = np.mgrid[0:h, 0:w]
    ox, oy = rng.integers(0, tw), rng.integers(0, th)
    row = (ys + oy) // th
    brick = rng.random() < 0.5
    col = (xs + ox + (row % 2) * (tw // 2 if brick else 0)) // tw
    n_r, n_c = int(row.max()) + 1, int(col.max()) + 1
    jitter = rng.uniform(0, 1, size=(n_r, n_c)).astype(np.float32)
    t = jitter[row, col]
    img = c0 * (1 - t[..., None] * 0.5) + c1 * (t[..., None] * 0.5)
    grout = (((ys + oy) % th) < 1) | (((xs + ox + (row % 2) * (tw // 2 if brick else 0)) % tw) < 1)
    img[grout] = c1 * rng.uniform(0.4, 1.2)
    return img + 12.0 * (_smooth_noise(rng, h, w, 2.0)[..., None] - 0.5)


def _bg_stones(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Voronoi cells (stones, leaves, cobbles) with darker borders."""
    n = int(rng.integers(12, 40))
    sx, sy = rng.uniform(0, w, n).astype(np.float32), rng.uniform(0, h, n).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (xs[..., None] - sx) ** 2 + (ys[..., None] - sy) ** 2
    order = np.argsort(d, axis=2)
    nearest = order[..., 0]
    d_sorted = np.take_along_axis(d, order[..., :2], axis=2)
    border = np.sqrt(d_sorted[..., 1]) - np.sqrt(d_sorted[..., 0]) < 1.5
    t = rng.uniform(0, 1, n).astype(np.float32)[nearest]
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    img[border] *= 0.6
    return img + 18.0 * (_smooth_noise(rng, h, w, 3.0)[..., None] - 0.5)


def _bg_fabric(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Woven cross-hatching (fabric, carpet, mesh)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, math.pi)
    p1, p2 = rng.uniform(3, 7), rng.uniform(3, 7)
    a = xs * math.cos(ang) + ys * math.sin(ang)
    b = -xs * math.sin(ang) + ys * math.cos(ang)
    t = 0.25 * (2 + np.sin(2 * math.pi * a / p1) + np.sin(2 * math.pi * b / p2))
    t = 0.75 * t + 0.25 * _smooth_noise(rng, h, w, 25.0)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _bg_blotches(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Camouflage: low-frequency noise quantised into two or three colour regions."""
    noise = _smooth_noise(rng, h, w, rng.uniform(14, 40))
    c2 = (c0 + c1) * 0.5 * rng.uniform(0.7, 1.3)
    img = np.where((noise < 0.4)[..., None], c0, np.where((noise < 0.6)[..., None], c2, c1))
    return img + 16.0 * (_smooth_noise(rng, h, w, 2.5)[..., None] - 0.5)


_BACKGROUNDS: tuple[Callable[..., np.ndarray], ...] = (
    _bg_gradient, _bg_grass, _bg_wood, _bg_tiles, _bg_stones, _bg_fabric, _bg_blotches,
)


def _background(rng: np.random.Generator, h: int, w: int, params: MinivocParams) -> np.ndarray:
    """A background: one texture family, or a horizon scene (two families above/below a wavy line)."""

    def one() -> np.ndarray:
        make = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
        c0 = _bg_color(rng, params.p_bg_object_color)
        c1 = c0 * rng.uniform(0.55, 0.9) if rng.random() < 0.6 else _bg_color(rng, params.p_bg_object_color)
        return make(rng, h, w, c0, c1)

    img = one()
    if rng.random() < 0.35:
        lower = one()
        xs = np.arange(w, dtype=np.float32)
        horizon = h * rng.uniform(0.3, 0.7) + rng.uniform(2, 8) * np.sin(2 * math.pi * xs / rng.uniform(40, 200)
                                                                        + rng.uniform(0, 6.3))
        below = np.arange(h, dtype=np.float32)[:, None] >= horizon[None, :]
        img = np.where(below[..., None], lower, img)
    return img.astype(np.float32)


def _draw_distractors(rng: np.random.Generator, img: np.ndarray, count: int, params: MinivocParams) -> None:
    """Clutter that belongs to no class: irregular polygons, lines, discs, blobs in random plain colours."""
    h, w = img.shape[:2]
    for _ in range(count):
        colour = _bg_color(rng, 0.25)
        kind = rng.integers(4)
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        r = float(rng.uniform(3, 0.14 * min(h, w)))
        if kind == 0:  # irregular polygon
            n = int(rng.integers(3, 8))
            angles = np.sort(rng.uniform(0, 2 * math.pi, n))
            radii = r * rng.uniform(0.4, 1.0, n)
            pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).astype(np.int32)
            layer = np.zeros((h, w), np.uint8)
            cv2.fillPoly(layer, [pts], 1)
        elif kind == 1:  # line / stick
            ang = rng.uniform(0, math.pi)
            length = r * rng.uniform(1.5, 4.0)
            p1 = (int(cx - length * math.cos(ang)), int(cy - length * math.sin(ang)))
            p2 = (int(cx + length * math.cos(ang)), int(cy + length * math.sin(ang)))
            layer = np.zeros((h, w), np.uint8)
            cv2.line(layer, p1, p2, 1, int(rng.integers(1, 4)))
        elif kind == 2:  # ellipse
            layer = np.zeros((h, w), np.uint8)
            axes = (max(1, int(r)), max(1, int(r * rng.uniform(0.3, 1.0))))
            cv2.ellipse(layer, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        else:  # soft blob of noise
            noise = _smooth_noise(rng, h, w, r)
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            fall = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))
            layer = ((noise * fall) > 0.35).astype(np.uint8)
        inside = layer.astype(bool)
        if not inside.any():
            continue
        t = _smooth_noise(rng, h, w, rng.uniform(3, 15))[inside][..., None]
        img[inside] = colour * (0.8 + 0.4 * t)


# --------------------------------------------------------------------------------------------
# Ground truth: the void band
# --------------------------------------------------------------------------------------------


def _void_band(instances: np.ndarray, band: int) -> np.ndarray:
    """Pixels within ``band // 2`` (at least 1) of a change of instance label: VOC's void border."""
    radius = max(1, band // 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hi = cv2.dilate(instances, kernel, borderType=cv2.BORDER_REPLICATE)
    lo = cv2.erode(instances, kernel, borderType=cv2.BORDER_REPLICATE)
    return hi != lo


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------


_COUNT_WEIGHTS = (0.3, 0.35, 0.22, 0.13, 0.1, 0.08, 0.06, 0.05)


_CROWD_SHRINK = (1.0, 0.9, 0.8, 0.72, 0.66, 0.62, 0.58, 0.55)


def _choose_classes(rng: np.random.Generator, first_class: int, params: MinivocParams) -> list[int]:
    """Class ids (1..20) of the objects of one image; the first is given."""
    weights = np.array(_COUNT_WEIGHTS[: params.max_objects])
    count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
    classes = [first_class]
    while len(classes) < count:
        if rng.random() < params.p_same_class:
            classes.append(classes[int(rng.integers(len(classes)))])
        else:
            classes.append(1 + int(rng.integers(NUM_FOREGROUND)))
    return classes


def _place_objects(rng: np.random.Generator, img: np.ndarray, instances: np.ndarray, classes: list[int],
                   params: MinivocParams) -> list[_Placed]:
    """Paint the objects in order (later ones on top) into ``img`` and ``instances``; returns those accepted.

    An object is rejected (and re-drawn, up to 25 tries) when less than ``min_visible`` of
    its in-image area, or of any earlier object's, would remain visible, or when less than
    half of it lies inside the image.
    """
    h, w = instances.shape
    placed: list[_Placed] = []
    shrink = _CROWD_SHRINK[len(classes) - 1]
    for class_id in classes:
        spec = CLASS_SPECS[class_id - 1]
        for attempt in range(25):
            radius = rng.uniform(*params.object_size) * min(h, w) * shrink
            if placed and rng.random() < params.p_touch:
                anchor = placed[int(rng.integers(len(placed)))]
                ang = rng.uniform(0, 2 * math.pi)
                dist = (anchor.radius + radius) * rng.uniform(0.4, 0.8)
                center = (anchor.center[0] + dist * math.cos(ang), anchor.center[1] + dist * math.sin(ang))
            else:
                center = (rng.uniform(0.12, 0.88) * w, rng.uniform(0.12, 0.88) * h)
            mask, rgb, origin, flip = _render_object(spec, center, radius, rng)
            clip = _clip_box(origin, mask.shape[0], h, w)
            if clip is None:
                continue
            iy, ix, cy_, cx_ = clip
            sub = mask[cy_, cx_]
            area_in = int(sub.sum())
            area_total = int(mask.sum())
            if area_total == 0 or area_in < 0.5 * area_total:
                continue
            trial = instances.copy()
            trial[iy, ix][sub] = len(placed) + 1
            if any(int((trial == k + 1).sum()) < params.min_visible * p.area_in_image for k, p in enumerate(placed)):
                continue
            instances[:] = trial
            img[iy, ix][sub] = rgb[cy_, cx_][sub]
            placed.append(_Placed(spec, class_id, flip, mask, origin, rgb, area_in, area_total, center, radius))
            break
    return placed


def _occlude(rng: np.random.Generator, img: np.ndarray, instances: np.ndarray, placed: list[_Placed],
             params: MinivocParams) -> None:
    """With probability ``p_occluder`` draw a thin wire/pole over everything (labelled background)."""
    if not placed or rng.random() >= params.p_occluder:
        return
    h, w = instances.shape
    target = placed[int(rng.integers(len(placed)))].center
    ang = rng.uniform(0, math.pi)
    p1 = (int(target[0] - 2 * w * math.cos(ang)), int(target[1] - 2 * w * math.sin(ang)))
    p2 = (int(target[0] + 2 * w * math.cos(ang)), int(target[1] + 2 * w * math.sin(ang)))
    layer = np.zeros((h, w), np.uint8)
    cv2.line(layer, p1, p2, 1, int(rng.integers(1, 4)))
    line = layer.astype(bool)
    trial = np.where(line, 0, instances)
    if any(int((trial == k + 1).sum()) < params.min_visible * p.area_in_image for k, p in enumerate(placed)):
        return
    instances[:] = trial
    img[line] = _bg_color(rng, 0.3) * rng.uniform(0.5, 1.0)


def _finish_image(rng: np.random.Generator, img: np.ndarray, params: MinivocParams) -> np.ndarray:
    """Lighting gradient, blur and sensor noise; returns uint8 RGB."""
    h, w = img.shape[:2]
    ang = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xs - w / 2) * math.cos(ang) + (ys - h / 2) * math.sin(ang)) / max(h, w)
    gain = 1.0 + params.light_gradient * rng.uniform(-1, 1) * 2 * ramp + rng.uniform(-0.08, 0.08)
    img = img * gain[..., None]
    sigma = rng.uniform(*params.blur_sigma)
    if sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise_sigma = rng.uniform(*params.noise_sigma)
    img = img + rng.normal(0.0, noise_sigma, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_sample(seed: int, number: int, first_class: int, params: MinivocParams = MinivocParams()) -> Sample:
    """Generate image number ``number`` (1-based) of the dataset of ``seed`` in memory.

    ``first_class`` (1..20) is the class of the image's first object. The result depends
    only on ``(seed, number, first_class, params)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, number, 0x6D696E69]))
    w = int(rng.integers(params.width_range[0], params.width_range[1] + 1))
    h = int(rng.integers(params.height_range[0], params.height_range[1] + 1))
    img = _background(rng, h, w, params)
    _draw_distractors(rng, img, int(rng.integers(params.distractors[0], params.distractors[1] + 1)), params)
    instances = np.zeros((h, w), dtype=np.uint8)
    classes = _choose_classes(rng, first_class, params)
    placed = _place_objects(rng, img, instances, classes, params)
    if not placed:  # cannot happen with sane parameters; keep the image valid anyway
        raise WsssError(f"minivoc: could not place any object in image {number} (parameters too crowded?)")
    _occlude(rng, img, instances, placed, params)
    image = _finish_image(rng, img, params)

    band = _void_band(instances, params.band_width(h, w))
    class_of = np.zeros(256, dtype=np.uint8)
    for k, p in enumerate(placed):
        class_of[k + 1] = p.class_id
    labels = class_of[instances]
    labels[band] = IGNORE_INDEX
    objects_map = instances.copy()
    objects_map[band] = IGNORE_INDEX

    objects = []
    for k, p in enumerate(placed):
        visible = instances == k + 1
        ys, xs = np.nonzero(visible)
        box = (int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1)
        region = objects_map == k + 1
        if not region.any():  # a sliver entirely inside the band: fall back to the visible mask
            region = visible
        pose = ("Left" if p.flip else "Right") if p.spec.pose == "side" else p.spec.pose
        objects.append(ObjectAnnotation(
            class_id=p.class_id,
            box=box,
            truncated=p.area_in_image < p.area_total,
            pose=pose,
            point=_annotator_point(rng, region),
            scribble=_object_scribble(rng, region),
        ))
    strokes = _background_scribbles(rng, objects_map == 0, int(rng.integers(1, 4)))
    return Sample(image=image, labels=labels, instances=objects_map, objects=objects, background_scribbles=strokes)
