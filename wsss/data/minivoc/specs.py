"""Class drawing specs of minivoc: the shared colour palette and each class's appearance family
(parts, shapes, textures, body colours; :data:`CLASS_SPECS`, in VOC order)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from wsss.data.classes import VOC_CLASSES

RGB = tuple[float, float, float]

# --------------------------------------------------------------------------------------------
# Palette shared by the classes (and, sometimes, the backgrounds)
# --------------------------------------------------------------------------------------------

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (190, 40, 35),
    "orange": (225, 125, 35),
    "yellow": (230, 200, 55),
    "green": (70, 145, 60),
    "darkgreen": (35, 90, 45),
    "teal": (40, 140, 140),
    "blue": (50, 85, 185),
    "navy": (30, 40, 95),
    "purple": (120, 60, 150),
    "pink": (225, 135, 165),
    "brown": (115, 75, 45),
    "tan": (195, 165, 115),
    "grey": (125, 125, 125),
    "silver": (185, 188, 192),
    "white": (232, 232, 226),
    "black": (32, 30, 30),
    "skin": (222, 178, 140),
    "cream": (240, 225, 190),
}

#: muted colours for backgrounds (the object palette is used too, with probability ``p_bg_object_color``)
BG_COLORS: tuple[tuple[int, int, int], ...] = (
    (120, 130, 90), (150, 140, 110), (95, 110, 120), (170, 160, 140), (110, 95, 80),
    (80, 105, 70), (140, 150, 160), (185, 175, 150), (100, 100, 105), (160, 120, 90),
    (130, 115, 140), (90, 85, 60), (200, 195, 185), (60, 70, 80), (150, 165, 130),
)

#: colours of the TV screen test-card bars
_BAR_COLORS = ("yellow", "teal", "green", "pink", "blue", "white")


# --------------------------------------------------------------------------------------------
# Class appearance families
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tex:
    """A texture in part coordinates (units of the object's size), giving a blend ``t`` in [0, 1].

    ``kind``: ``plain`` (soft low-frequency shading), ``stripes`` (bands across the part's
    ``angle`` direction), ``checker``, ``dots`` (radius ``size`` of a lattice cell),
    ``rings`` (concentric), ``grid`` (window panes: pillars where the cell fraction exceeds
    ``size``), ``spots`` (noise thresholded at ``size``), ``noise`` (fine mottling),
    ``waves`` (wavy stripes), ``bars`` (test-card colour bars). ``freq`` is in cycles per
    unit; ``contrast`` scales ``t``.
    """

    kind: str = "plain"
    freq: float = 4.0
    angle: float = 0.0
    size: float = 0.3
    contrast: float = 1.0


@dataclass(frozen=True)
class Part:
    """One part of an object, in object units (``u`` right, ``v`` down; the object faces +u).

    ``shape``: ``ellipse``, ``rect``, ``roundrect``, ``triangle`` (apex towards +a),
    ``trapezoid`` (narrower towards +b), ``ring`` or ``blob`` (wobbly ellipse).
    ``size`` are the half-extents along the part's own axes, rotated by ``rot`` degrees.
    ``color`` / ``color2`` are the two colours the texture blends: a :data:`PALETTE` name,
    ``body`` (the instance's body colour) or ``body:<factor>`` (body colour darkened by
    ``factor``); ``color2=None`` means ``color`` darkened to 70 %.
    ``head`` marks the class's discriminative part.
    """

    shape: str
    center: tuple[float, float]
    size: tuple[float, float]
    rot: float = 0.0
    color: str = "body"
    color2: str | None = None
    tex: Tex = Tex()
    head: bool = False


def _shape_mask(shape: str, a: np.ndarray, b: np.ndarray, wobble: np.ndarray | None) -> np.ndarray:
    """Inside-test of a unit shape in part coordinates ``(a, b)``."""
    if shape == "ellipse":
        return a * a + b * b <= 1.0
    if shape == "rect":
        return (np.abs(a) <= 1.0) & (np.abs(b) <= 1.0)
    if shape == "roundrect":
        return a ** 4 + b ** 4 <= 1.0
    if shape == "triangle":
        return (a >= -1.0) & (np.abs(b) <= (1.0 - a) * 0.5)
    if shape == "trapezoid":
        return (np.abs(b) <= 1.0) & (np.abs(a) <= 1.0 - 0.3 * (b + 1.0))
    if shape == "ring":
        r2 = a * a + b * b
        return (r2 <= 1.0) & (r2 >= 0.72 ** 2)
    if shape == "blob":
        assert wobble is not None
        r = np.sqrt(a * a + b * b)
        phi = np.arctan2(b, a)
        limit = np.ones_like(r)
        for k, amp, phase in wobble:
            limit += amp * np.cos(k * phi + phase)
        return r <= limit / (1.0 + wobble[:, 1].sum())
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class ClassSpec:
    """The appearance family of one class: parts (painted in order) and body colour choices.

    ``rot_range``: instances are rotated by a uniform angle in ``±rot_range`` degrees.
    ``pose``: what the XML ``<pose>`` says (``side`` = Left/Right by the mirror flag).
    """

    name: str
    parts: tuple[Part, ...]
    body_colors: tuple[str, ...]
    rot_range: float = 15.0
    pose: str = "side"

    @functools.cached_property
    def radius(self) -> float:
        """Radius (object units) of a disc around the origin holding every part (measured on a 0.02 grid)."""
        grid = np.arange(-2.5, 2.5, 0.02, dtype=np.float32)
        v, u = np.meshgrid(grid, grid, indexing="ij")
        inside = np.zeros(u.shape, dtype=bool)
        for p in self.parts:
            phi = math.radians(p.rot)
            du, dv = u - p.center[0], v - p.center[1]
            a = (du * math.cos(phi) + dv * math.sin(phi)) / p.size[0]
            b = (-du * math.sin(phi) + dv * math.cos(phi)) / p.size[1]
            inside |= _shape_mask("ellipse" if p.shape == "blob" else p.shape, a, b, None)
        return float(np.sqrt(u[inside] ** 2 + v[inside] ** 2).max()) + 0.03


def _legs(us: Sequence[float], v: float, half: tuple[float, float], color: str = "body:0.8") -> tuple[Part, ...]:
    """Vertical rectangular legs at the given ``u`` positions."""
    return tuple(Part("rect", (u, v), half, color=color) for u in us)


def _class_specs() -> tuple[ClassSpec, ...]:
    """The 20 class families, in VOC order."""
    stripes = lambda f, a=0.0, c=1.0: Tex("stripes", f, a, contrast=c)  # noqa: E731
    return (
        ClassSpec("aeroplane", (
            Part("rect", (0.02, 0.0), (0.15, 0.9), rot=8),                       # wings
            Part("rect", (-0.84, 0.0), (0.07, 0.34)),                            # tailplane
            Part("ellipse", (0.0, 0.0), (1.0, 0.17)),                            # fuselage
            Part("ellipse", (0.74, 0.0), (0.3, 0.19), color="red", color2="white", tex=stripes(6.0), head=True),
        ), ("white", "silver", "grey", "blue"), rot_range=180.0, pose="Unspecified"),
        ClassSpec("bicycle", (
            Part("ring", (-0.62, 0.25), (0.36, 0.36), color="black"),
            Part("ring", (0.62, 0.25), (0.36, 0.36), color="black"),
            Part("rect", (0.0, 0.05), (0.5, 0.05)),
            Part("rect", (-0.32, 0.12), (0.24, 0.05), rot=62),
            Part("rect", (0.34, 0.1), (0.25, 0.05), rot=-62),
            Part("ellipse", (-0.42, -0.16), (0.17, 0.07), color="black"),
            Part("rect", (0.5, -0.2), (0.05, 0.17), rot=15, color="silver"),
            Part("ellipse", (-0.62, 0.25), (0.17, 0.17), color="yellow", color2="black",
                 tex=Tex("checker", 9.0), head=True),
            Part("ellipse", (0.62, 0.25), (0.17, 0.17), color="yellow", color2="black",
                 tex=Tex("checker", 9.0), head=True),
        ), ("red", "blue", "green", "black", "yellow", "teal"), rot_range=12.0),
        ClassSpec("bird", (
            Part("triangle", (-0.78, -0.05), (0.3, 0.2)),                       # tail fan
            Part("ellipse", (-0.1, 0.0), (0.6, 0.36)),
            Part("ellipse", (-0.2, -0.04), (0.4, 0.17), rot=-8, color="body:0.7", color2="body:0.5",
                 tex=stripes(8.0, c=0.6)),
            Part("ellipse", (0.55, -0.24), (0.31, 0.31), color="red", color2="yellow",
                 tex=Tex("dots", 9.0, size=0.3), head=True),
            Part("triangle", (0.9, -0.22), (0.13, 0.07), color="orange"),
        ), ("brown", "tan", "blue", "yellow", "grey"), rot_range=30.0),
        ClassSpec("boat", (
            Part("trapezoid", (0.0, 0.4), (1.0, 0.22)),
            Part("rect", (0.0, -0.22), (0.035, 0.62), color="brown"),
            Part("triangle", (0.08, -0.3), (0.5, 0.48), rot=-90, color="white", color2="orange",
                 tex=stripes(5.0), head=True),
        ), ("white", "red", "blue", "navy", "brown"), rot_range=12.0),
        ClassSpec("bottle", (
            Part("roundrect", (0.0, 0.25), (0.34, 0.7)),
            Part("ellipse", (0.0, -0.4), (0.34, 0.17)),
            Part("rect", (0.0, -0.65), (0.12, 0.22)),
            Part("rect", (0.0, -0.9), (0.15, 0.07), color="yellow"),
            Part("rect", (0.0, 0.2), (0.34, 0.25), color="white", color2="blue", tex=stripes(10.0, 90.0),
                 head=True),
        ), ("green", "darkgreen", "brown", "teal", "navy"), rot_range=12.0, pose="Frontal"),
        ClassSpec("bus", (
            Part("roundrect", (0.0, 0.0), (1.0, 0.42)),
            Part("rect", (-0.02, -0.14), (0.88, 0.16), color="navy", color2="body",
                 tex=Tex("grid", 6.0, size=0.72), head=True),
            Part("ellipse", (-0.6, 0.42), (0.16, 0.16), color="black"),
            Part("ellipse", (0.6, 0.42), (0.16, 0.16), color="black"),
        ), ("yellow", "red", "white", "blue", "orange"), rot_range=10.0),
        ClassSpec("car", (
            Part("roundrect", (-0.05, -0.22), (0.52, 0.22)),
            Part("roundrect", (-0.05, -0.22), (0.4, 0.14), color="silver", color2="navy", tex=stripes(2.0, 90.0, 0.5)),
            Part("roundrect", (0.0, 0.1), (1.0, 0.26)),
            Part("ellipse", (-0.58, 0.33), (0.21, 0.21), color="black", color2="silver",
                 tex=Tex("rings", 4.5), head=True),
            Part("ellipse", (0.58, 0.33), (0.21, 0.21), color="black", color2="silver",
                 tex=Tex("rings", 4.5), head=True),
        ), ("red", "blue", "silver", "black", "white", "green", "yellow"), rot_range=10.0),
        ClassSpec("cat", (
            Part("rect", (-0.82, -0.28), (0.3, 0.06), rot=55),
            *_legs((-0.5, -0.3, 0.3, 0.48), 0.4, (0.07, 0.24)),
            Part("ellipse", (-0.05, 0.05), (0.62, 0.3), color2="body:0.6", tex=stripes(4.0, c=0.35)),
            Part("triangle", (0.47, -0.5), (0.13, 0.1), rot=-90, color="orange"),
            Part("triangle", (0.78, -0.5), (0.13, 0.1), rot=-90, color="orange"),
            Part("ellipse", (0.63, -0.22), (0.28, 0.26), color="orange", color2="black", tex=stripes(7.0),
                 head=True),
        ), ("orange", "grey", "black", "tan", "white"), rot_range=20.0),
        ClassSpec("chair", (
            *_legs((-0.5, 0.5), 0.58, (0.06, 0.4)),
            Part("rect", (0.0, 0.12), (0.58, 0.12)),
            Part("rect", (0.0, -0.45), (0.5, 0.44), color="teal", color2="white", tex=Tex("checker", 7.0),
                 head=True),
        ), ("brown", "tan", "black", "red", "white"), rot_range=10.0, pose="Frontal"),
        ClassSpec("cow", (
            *_legs((-0.55, -0.35, 0.35, 0.55), 0.48, (0.08, 0.28)),
            Part("roundrect", (0.0, 0.0), (0.72, 0.36)),
            Part("triangle", (0.76, -0.44), (0.09, 0.05), rot=-90, color="cream"),
            Part("ellipse", (0.84, -0.2), (0.31, 0.24), rot=20, color="white", color2="black",
                 tex=Tex("spots", 6.0, size=0.5), head=True),
        ), ("white", "brown", "black", "tan"), rot_range=15.0),
        ClassSpec("diningtable", (
            *_legs((-0.82, 0.82), 0.32, (0.06, 0.42)),
            Part("rect", (0.0, -0.18), (1.0, 0.1)),
            Part("rect", (0.0, 0.02), (0.78, 0.16), color="red", color2="white", tex=Tex("checker", 7.0),
                 head=True),
        ), ("brown", "tan", "white", "black"), rot_range=8.0, pose="Unspecified"),
        ClassSpec("dog", (
            Part("rect", (-0.78, -0.22), (0.22, 0.06), rot=40),
            *_legs((-0.5, -0.3, 0.3, 0.5), 0.42, (0.07, 0.26)),
            Part("ellipse", (-0.05, 0.03), (0.6, 0.3)),
            Part("roundrect", (0.65, -0.25), (0.3, 0.27), color="tan", color2="brown",
                 tex=Tex("noise", 9.0), head=True),
            Part("ellipse", (0.52, -0.17), (0.08, 0.19), color="brown"),
            Part("ellipse", (0.9, -0.18), (0.09, 0.08), color="black"),
        ), ("brown", "tan", "black", "white", "grey"), rot_range=20.0),
        ClassSpec("horse", (
            *_legs((-0.55, -0.38, 0.38, 0.55), 0.58, (0.065, 0.42)),
            Part("rect", (-0.8, 0.06), (0.25, 0.06), rot=65, color="black"),
            Part("ellipse", (0.0, 0.0), (0.68, 0.3)),
            Part("ellipse", (0.88, -0.64), (0.23, 0.11), rot=35),
            Part("rect", (0.62, -0.36), (0.34, 0.17), rot=-55, color="white", color2="black",
                 tex=stripes(9.0, 90.0), head=True),
        ), ("brown", "black", "white", "tan", "grey"), rot_range=12.0),
        ClassSpec("motorbike", (
            Part("ellipse", (-0.62, 0.28), (0.3, 0.3), color="black", color2="silver", tex=Tex("rings", 3.5)),
            Part("ellipse", (0.62, 0.28), (0.3, 0.3), color="black", color2="silver", tex=Tex("rings", 3.5)),
            Part("ellipse", (0.0, 0.05), (0.55, 0.2)),
            Part("rect", (0.5, -0.28), (0.04, 0.2), rot=20, color="silver"),
            Part("roundrect", (-0.25, -0.15), (0.28, 0.07), color="black"),
            Part("ellipse", (0.12, -0.15), (0.3, 0.17), color="purple", color2="silver", tex=stripes(7.0, 45.0),
                 head=True),
        ), ("red", "black", "blue", "orange", "silver"), rot_range=12.0),
        ClassSpec("person", (
            *_legs((-0.12, 0.12), 0.64, (0.09, 0.33), color="navy"),
            Part("rect", (-0.37, 0.0), (0.07, 0.33), rot=10),
            Part("rect", (0.37, 0.0), (0.07, 0.33), rot=-10),
            Part("roundrect", (0.0, 0.02), (0.3, 0.38)),
            Part("ellipse", (0.0, -0.6), (0.21, 0.24), color="skin", head=True),
            Part("ellipse", (0.0, -0.75), (0.19, 0.09), color="black"),
        ), ("red", "blue", "green", "white", "black", "yellow", "purple", "grey", "pink", "teal"),
            rot_range=10.0, pose="Frontal"),
        ClassSpec("pottedplant", (
            Part("trapezoid", (0.0, 0.58), (0.34, 0.3)),
            Part("rect", (0.0, 0.3), (0.38, 0.05), color="body:0.8"),
            Part("blob", (0.0, -0.2), (0.62, 0.5), color="green", color2="darkgreen", tex=Tex("noise", 12.0),
                 head=True),
        ), ("orange", "brown", "red", "white", "teal"), rot_range=10.0, pose="Unspecified"),
        ClassSpec("sheep", (
            *_legs((-0.45, -0.3, 0.3, 0.45), 0.45, (0.06, 0.25), color="black"),
            Part("blob", (-0.05, 0.0), (0.62, 0.4), color2="body:0.72", tex=Tex("dots", 12.0, size=0.33),
                 head=True),
            Part("ellipse", (0.68, -0.2), (0.2, 0.14), color="black"),
        ), ("white", "cream", "grey", "tan"), rot_range=15.0),
        ClassSpec("sofa", (
            *_legs((-0.85, 0.85), 0.42, (0.05, 0.08), color="black"),
            Part("roundrect", (0.0, -0.22), (0.95, 0.28)),
            Part("roundrect", (0.0, 0.18), (1.0, 0.2), color="body:0.9"),
            Part("roundrect", (-0.92, 0.05), (0.13, 0.3), color="body:0.8"),
            Part("roundrect", (0.92, 0.05), (0.13, 0.3), color="body:0.8"),
            Part("rect", (-0.4, -0.16), (0.36, 0.2), color="pink", color2="cream", tex=Tex("waves", 6.0),
                 head=True),
            Part("rect", (0.4, -0.16), (0.36, 0.2), color="pink", color2="cream", tex=Tex("waves", 6.0),
                 head=True),
        ), ("red", "blue", "grey", "brown", "green", "purple", "tan"), rot_range=8.0, pose="Frontal"),
        ClassSpec("train", (
            Part("rect", (-0.1, 0.0), (0.95, 0.3)),
            Part("rect", (-0.1, -0.3), (0.95, 0.035), color="grey"),
            Part("rect", (-0.15, -0.08), (0.78, 0.1), color="silver", color2="body", tex=Tex("grid", 7.0, size=0.7)),
            *(Part("ellipse", (u, 0.33), (0.09, 0.09), color="black") for u in (-0.8, -0.45, -0.1, 0.25, 0.6)),
            Part("roundrect", (0.86, 0.0), (0.2, 0.3), color="yellow", color2="black", tex=stripes(7.0, 45.0),
                 head=True),
        ), ("red", "blue", "green", "grey", "navy", "orange"), rot_range=10.0),
        ClassSpec("tvmonitor", (
            Part("rect", (0.0, 0.62), (0.06, 0.12)),
            Part("rect", (0.0, 0.74), (0.28, 0.04)),
            Part("rect", (0.0, 0.0), (0.72, 0.52)),
            Part("rect", (0.0, -0.01), (0.63, 0.43), color="blue", tex=Tex("bars", 4.0), head=True),
        ), ("black", "grey", "silver", "white"), rot_range=8.0, pose="Frontal"),
    )


CLASS_SPECS: tuple[ClassSpec, ...] = _class_specs()
assert tuple(s.name for s in CLASS_SPECS) == VOC_CLASSES[1:], "class families must follow VOC's order"
