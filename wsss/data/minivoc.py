"""``minivoc``: a small synthetic dataset generated from a seed, in exact PASCAL VOC 2012 layout.

It stands in for VOC in the demo and the tests: same folders, same file
formats, same class names and ids, so every reader and stage that works on
VOC works on it unchanged, and the full pipeline runs in minutes on 2 CPU cores.

Layout written under ``root``::

    JPEGImages/<id>.jpg                   RGB, JPEG quality ``jpeg_quality`` (fixed, no metadata)
    SegmentationClass/<id>.png            palette PNG (VOC palette): 0 bg, 1..20, 255 void band
    SegmentationObject/<id>.png           palette PNG: 0 bg, k = k-th <object> of the XML, 255 void band
    Annotations/<id>.xml                  VOC XML: size, segmented=1, objects with 1-based inclusive boxes
    Points/<id>.txt                       one line per instance "x y class_index confidence" (BESTIE/P2Seg:
                                          0-based pixel x, y; class_index 0..19; confidence 1.0)
    Scribbles/<id>.xml                    ScribbleSup PASCAL format: <polygon><tag>class</tag><point><X/><Y/>...
                                          one polyline per instance, then polylines tagged "background"
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/{train,val,trainval}.txt and <class>_{train,val,trainval}.txt ("id  1" / "id -1")
    minivoc.json                          generator parameters, seed and per-class counts

Image ids are VOC-like, ``<year>_<number:06d>`` (``2026_000001`` ...), numbered
over all images; the val images are a seeded random subset, so the two splits
interleave as VOC's do.

Content. Each of the 20 classes has an appearance family (:data:`CLASS_SPECS`):
a set of parts (body, legs, wheels, head ...) of fixed shapes and layout, a
list of body colours drawn from a palette *shared* by many classes, and one
small discriminative part (``head=True``) with a class-specific texture and
colour pair (stripes, checker, dots, rings, grid, spots, noise, waves, bars).
Per instance the size, aspect (each axis), rotation, mirror, colours (HSV
jitter), texture frequency and phase, shading direction and blob outlines vary.
Images (sizes drawn per image, default 144..192 × 112..160) hold 1..4 objects
of one or several classes, often touching or occluding each other, sometimes
truncated by the image border or crossed by a thin occluder (a wire or pole,
labelled background), on one of several background texture families
(gradient, grass, wood, tiles, stones, fabric, camouflage blotches, and
horizon scenes combining two of them), with distractor clutter that belongs to
no class. Background colours are sometimes taken from the object palette, so
an object boundary is usually, but not always, visible in colour. A lighting
gradient, mild blur, sensor noise and JPEG compression finish the image.

The difficulty levers for weak supervision: the discriminative part is small
relative to the whole object and the rest (plain body in a shared colour)
looks like other classes, so class activation maps cover the head and miss
much of the body; thin parts (legs, masts, handles) are lost by coarse maps;
touching instances of one class merge; similar background colours make
boundaries ambiguous.

Ground truth follows VOC: a ``255`` void band (VOC's is about 5 px wide on
500×375 photos; here ``void_width`` px, by default that width scaled to the
image, at least 2 px) along every object border, object/object borders
included. XML boxes enclose each object's visible mask (void band included:
the box of ``SegmentationObject == k`` grown by up to half the band width),
1-based and inclusive. Points and scribbles lie inside the object's
non-void mask, away from its border, as an annotator would click or draw.

Determinism: the same ``seed`` and parameters give byte-identical files
(every image has its own random stream derived from ``(seed, image number)``;
JPEG and PNG writers are fixed and carry no time stamps). A different seed
gives a different dataset with the same statistics. Every class appears in
each split of at least 20 images (the first object of image ``j`` of a split
cycles through a seeded permutation of the 20 classes).

Atomicity: :func:`generate` writes everything into a hidden sibling folder
(``.<root name>.tmp-<pid>``) and only then moves it onto ``root``; entries of an
existing ``root`` listed in ``keep`` (default ``.hydra``, which Hydra writes into
the stage's output folder before the stage runs) are carried over into the new
folder, every other old entry is dropped. A killed run leaves ``root`` as it was
(plus the hidden temporary folder, removed by the next run).
"""

from __future__ import annotations

import colorsys
import functools
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from wsss.data.classes import NUM_FOREGROUND, VOC_CLASSES
from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX, atomic_path, save_json, save_label_png
from wsss.progress import Progress

FORMAT_VERSION = 1
FOLDER_NAME = "minivoc"
_SPLITS = ("train", "val")

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


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinivocParams:
    """What the generator draws from (besides ``n_train``, ``n_val`` and ``seed``).

    Ranges are inclusive ``(low, high)`` pairs.
    """

    #: image width and height in pixels, drawn uniformly per image
    width_range: tuple[int, int] = (144, 192)
    height_range: tuple[int, int] = (112, 160)
    #: objects per image: 1..max_objects (weights 0.30/0.35/0.22/0.13 for 1..4, renormalised)
    max_objects: int = 4
    #: object radius (of the disc holding all its parts) as a fraction of min(H, W), before crowding shrink
    object_size: tuple[float, float] = (0.3, 0.54)
    #: probability that an object is placed against an earlier one (touching / occluding)
    p_touch: float = 0.55
    #: probability that an extra object repeats a class already in the image
    p_same_class: float = 0.3
    #: distractor shapes (no class) per image
    distractors: tuple[int, int] = (3, 9)
    #: probability of a thin occluder (wire, pole) drawn over the objects, labelled background
    p_occluder: float = 0.2
    #: probability that a background colour is taken from the object palette
    p_bg_object_color: float = 0.3
    #: a visible part of an object smaller than this fraction of its in-image area is rejected
    min_visible: float = 0.45
    #: Gaussian sensor noise sigma (0..255 scale) and blur sigma (pixels) ranges
    noise_sigma: tuple[float, float] = (1.5, 5.0)
    blur_sigma: tuple[float, float] = (0.3, 0.8)
    #: lighting gradient amplitude (fraction of brightness across the image)
    light_gradient: float = 0.25
    #: JPEG quality of JPEGImages (fixed so that files are reproducible)
    jpeg_quality: int = 90
    #: width of the 255 void band in pixels; 0 = VOC's 5 px scaled to the image (at least 2)
    void_width: int = 0
    #: the year part of the image ids (``<year>_000001``)
    year: int = 2026

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "MinivocParams":
        """Parameters from a mapping (a composed config); keys that are not fields are ignored.

        Range fields take any 2-long sequence (Hydra lists). The result is validated.
        """
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            default = getattr(cls, f.name)
            if isinstance(default, tuple):
                items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
                if len(items) != 2:
                    raise WsssError(f"minivoc: {f.name} must be a [low, high] pair, got {items}")
                value = tuple(type(d)(v) for d, v in zip(default, items))
            else:
                value = type(default)(value)
            kwargs[f.name] = value
        params = cls(**kwargs)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise :class:`WsssError` naming the first invalid field."""

        def pair(name: str, low_min: float) -> None:
            lo, hi = getattr(self, name)
            if not (low_min <= lo <= hi):
                raise WsssError(f"minivoc: {name} must be an increasing pair >= {low_min}, got {(lo, hi)}")

        pair("width_range", 48)
        pair("height_range", 48)
        pair("object_size", 0.05)
        pair("distractors", 0)
        pair("noise_sigma", 0.0)
        pair("blur_sigma", 0.0)
        if self.object_size[1] > 0.6:
            raise WsssError(f"minivoc: object_size must stay <= 0.6, got {self.object_size}")
        if not 1 <= self.max_objects <= 8:
            raise WsssError(f"minivoc: max_objects must lie in 1..8, got {self.max_objects}")
        for name in ("p_touch", "p_same_class", "p_occluder", "p_bg_object_color", "min_visible"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise WsssError(f"minivoc: {name} must lie in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise WsssError(f"minivoc: jpeg_quality must lie in 1..100, got {self.jpeg_quality}")
        if self.void_width < 0:
            raise WsssError(f"minivoc: void_width must be >= 0, got {self.void_width}")
        if not 1000 <= self.year <= 9999:
            raise WsssError(f"minivoc: year must have 4 digits, got {self.year}")

    def band_width(self, height: int, width: int) -> int:
        """Void band width (px) for an ``height × width`` image."""
        if self.void_width:
            return self.void_width
        return max(2, int(round(5.0 * math.sqrt(height * width / (500.0 * 375.0)))))


# --------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------


@dataclass
class ObjectAnnotation:
    """One object of a sample: class, box (1-based inclusive, VOC), flags and weak labels (0-based pixels)."""

    class_id: int
    box: tuple[int, int, int, int]
    truncated: bool
    pose: str
    point: tuple[int, int]
    scribble: list[tuple[int, int]]

    @property
    def name(self) -> str:
        """VOC class name."""
        return VOC_CLASSES[self.class_id]


@dataclass
class Sample:
    """One generated image with all its annotations (``labels``/``objects`` include the void band)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, before JPEG
    labels: np.ndarray  # (H, W) uint8: 0..20, 255
    instances: np.ndarray  # (H, W) uint8: 0, 1..K, 255
    objects: list[ObjectAnnotation]
    background_scribbles: list[list[tuple[int, int]]] = field(default_factory=list)


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
        if part.tex.kind == "bars":
            t = _texture(part.tex, pa, pb, rng, scale)
            index = np.rint(t * (len(_BAR_COLORS) - 1)).astype(np.int64)
            bars = np.stack([_resolve_color(n, body, cache, rng) for n in _BAR_COLORS])
            colour = bars[index]
        else:
            c1 = _resolve_color(part.color2, body, cache, rng) if part.color2 else c0 * 0.7
            t = _texture(part.tex, pa, pb, rng, scale)[..., None]
            colour = c0 * (1.0 - t) + c1 * t
        colour = colour * shade[..., None]
        rgb[inside] = colour[inside]
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
# Weak labels from the final masks
# --------------------------------------------------------------------------------------------


def _void_band(instances: np.ndarray, band: int) -> np.ndarray:
    """Pixels within ``band // 2`` (at least 1) of a change of instance label: VOC's void border."""
    radius = max(1, band // 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hi = cv2.dilate(instances, kernel, borderType=cv2.BORDER_REPLICATE)
    lo = cv2.erode(instances, kernel, borderType=cv2.BORDER_REPLICATE)
    return hi != lo


def _geodesic_path(region: np.ndarray, start: tuple[int, int], goal: tuple[int, int] | None = None,
                   ) -> list[tuple[int, int]]:
    """Shortest 8-connected path inside boolean ``region`` from ``start`` (x, y).

    With ``goal=None`` the path goes to the pixel geodesically farthest from ``start``.
    Returned as a list of ``(x, y)``.
    """
    ys, xs = np.nonzero(region)
    n = len(ys)
    index = np.full(region.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    h, w = region.shape
    rows, cols, weights = [], [], []
    for dy, dx, cost in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, math.sqrt(2)), (1, -1, math.sqrt(2))):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < h) & (x2 >= 0) & (x2 < w)
        j = np.full(n, -1, dtype=np.int64)
        j[ok] = index[y2[ok], x2[ok]]
        good = j >= 0
        rows.append(np.nonzero(good)[0])
        cols.append(j[good])
        weights.append(np.full(int(good.sum()), cost))
    graph = csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    src = int(index[start[1], start[0]])
    dist, pred = dijkstra(graph, directed=False, indices=src, return_predecessors=True)
    if goal is None:
        finite = np.where(np.isfinite(dist), dist, -1.0)
        dst = int(np.argmax(finite))
    else:
        dst = int(index[goal[1], goal[0]])
    path = []
    node = dst
    while node >= 0:
        path.append((int(xs[node]), int(ys[node])))
        if node == src:
            break
        node = int(pred[node])
    return path[::-1]


def _segments_inside(points: Sequence[tuple[int, int]], allowed: np.ndarray) -> bool:
    """Whether the 1-px polyline through ``points`` stays inside ``allowed``."""
    canvas = np.zeros(allowed.shape, np.uint8)
    pts = np.array(points, dtype=np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, 1, 1, lineType=cv2.LINE_8)
    return bool(np.all(allowed[canvas.astype(bool)]))


def _simplify(path: list[tuple[int, int]], allowed: np.ndarray, step: int = 4) -> list[tuple[int, int]]:
    """Every ``step``-th vertex of ``path`` (ends kept), or the full path if the short cut leaves ``allowed``."""
    if len(path) <= 2:
        return path if len(path) == 2 else path * 2
    thin = path[::step]
    if thin[-1] != path[-1]:
        thin.append(path[-1])
    return thin if _segments_inside(thin, allowed) else path


def _interior(region: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance transform of ``region`` and its pixels at least ``margin`` (or half the max) from the border."""
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    peak = float(dist.max())
    return dist, dist >= min(margin, max(1.0, 0.5 * peak))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def _annotator_point(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int]:
    """A click inside ``region``: a random pixel among those deep inside (not necessarily the centroid)."""
    dist, _ = _interior(region, 0.0)
    deep = dist >= max(1.0, 0.45 * float(dist.max()))
    ys, xs = np.nonzero(deep)
    k = int(rng.integers(len(ys)))
    return int(xs[k]), int(ys[k])


def _object_scribble(rng: np.random.Generator, region: np.ndarray) -> list[tuple[int, int]]:
    """A stroke through ``region`` along its long axis, kept away from the border, ends trimmed."""
    _, inner = _interior(region, 2.5)
    inner = _largest_component(inner & region)
    ys, xs = np.nonzero(inner)
    if len(ys) == 1:
        return [(int(xs[0]), int(ys[0]))] * 2
    coords = np.stack([xs, ys], 1).astype(np.float64)
    centred = coords - coords.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0] if len(vt) else np.array([1.0, 0.0])
    proj = centred @ axis
    start = (int(xs[np.argmin(proj)]), int(ys[np.argmin(proj)]))
    goal = (int(xs[np.argmax(proj)]), int(ys[np.argmax(proj)]))
    path = _geodesic_path(inner, start, goal)
    trim_a = int(len(path) * rng.uniform(0.04, 0.15))
    trim_b = int(len(path) * rng.uniform(0.04, 0.15))
    path = path[trim_a: len(path) - trim_b] or path
    return _simplify(path, region)


def _background_scribbles(rng: np.random.Generator, background: np.ndarray, count: int,
                          ) -> list[list[tuple[int, int]]]:
    """Up to ``count`` strokes in the largest background areas, away from objects and the void band."""
    _, inner = _interior(background, 3.0)
    inner &= background
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8), connectivity=8)
    order = [1 + int(i) for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")]
    strokes = []
    h, w = background.shape
    for comp in order[:count]:
        if stats[comp, cv2.CC_STAT_AREA] < 20:
            break
        region = labels == comp
        ys, xs = np.nonzero(region)
        k = int(rng.integers(len(ys)))
        far = _geodesic_path(region, (int(xs[k]), int(ys[k])))[-1]
        path = _geodesic_path(region, far)
        max_len = int(rng.uniform(0.25, 0.6) * (h + w))
        if len(path) > max_len:
            offset = int(rng.integers(0, len(path) - max_len + 1))
            path = path[offset: offset + max_len]
        strokes.append(_simplify(path, background))
    return strokes


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


# --------------------------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------------------------


def voc_xml(image_id: str, sample: Sample) -> str:
    """The VOC 2012 ``Annotations/<id>.xml`` text of a sample."""
    h, w = sample.labels.shape
    lines = [
        "<annotation>",
        f"\t<folder>{FOLDER_NAME}</folder>",
        f"\t<filename>{escape(image_id)}.jpg</filename>",
        "\t<source>",
        "\t\t<database>minivoc (synthetic, wsss)</database>",
        "\t\t<annotation>PASCAL VOC2012 layout</annotation>",
        "\t\t<image>generated</image>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>1</segmented>",
    ]
    for obj in sample.objects:
        x0, y0, x1, y1 = obj.box
        lines += [
            "\t<object>",
            f"\t\t<name>{obj.name}</name>",
            f"\t\t<pose>{obj.pose}</pose>",
            f"\t\t<truncated>{int(obj.truncated)}</truncated>",
            "\t\t<difficult>0</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{x0}</xmin>",
            f"\t\t\t<ymin>{y0}</ymin>",
            f"\t\t\t<xmax>{x1}</xmax>",
            f"\t\t\t<ymax>{y1}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def scribble_xml(image_id: str, sample: Sample) -> str:
    """The ScribbleSup (PASCAL) ``<id>.xml`` text: one ``<polygon>`` polyline per object, then background ones."""
    h, w = sample.labels.shape
    lines = [
        "<annotation>",
        f"\t<folder>{FOLDER_NAME}</folder>",
        f"\t<filename>{escape(image_id)}.jpg</filename>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
    ]
    strokes = [(obj.name, obj.scribble) for obj in sample.objects]
    strokes += [("background", s) for s in sample.background_scribbles]
    for tag, points in strokes:
        lines += ["\t<polygon>", f"\t\t<tag>{tag}</tag>"]
        for x, y in points:
            lines += ["\t\t<point>", f"\t\t\t<X>{x}</X>", f"\t\t\t<Y>{y}</Y>", "\t\t</point>"]
        lines.append("\t</polygon>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def points_txt(sample: Sample) -> str:
    """BESTIE/P2Seg point file: ``x y class_index confidence`` per instance (class_index 0-based over 20)."""
    return "".join(f"{o.point[0]} {o.point[1]} {o.class_id - 1} 1.0\n" for o in sample.objects)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Write an RGB JPEG with fixed settings (no metadata, 4:2:0, baseline) atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="JPEG", quality=quality, subsampling=2,
                                                optimize=False, progressive=False)


def write_sample(root: Path, image_id: str, sample: Sample, params: MinivocParams) -> None:
    """Write every file of one sample under ``root`` (VOC layout)."""
    _write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", sample.image, params.jpeg_quality)
    save_label_png(root / "SegmentationClass" / f"{image_id}.png", sample.labels)
    save_label_png(root / "SegmentationObject" / f"{image_id}.png", sample.instances)
    _write_text(root / "Annotations" / f"{image_id}.xml", voc_xml(image_id, sample))
    _write_text(root / "Points" / f"{image_id}.txt", points_txt(sample))
    _write_text(root / "Scribbles" / f"{image_id}.xml", scribble_xml(image_id, sample))


def _write_lists(root: Path, splits: dict[str, list[str]], present: dict[str, set[int]]) -> None:
    """ImageSets/Segmentation and ImageSets/Main lists (Main also per class, ``1`` present / ``-1`` absent)."""
    lists = dict(splits)
    lists["trainval"] = sorted(splits["train"] + splits["val"])
    for name, ids in lists.items():
        text = "".join(f"{i}\n" for i in ids)
        _write_text(root / "ImageSets" / "Segmentation" / f"{name}.txt", text)
        _write_text(root / "ImageSets" / "Main" / f"{name}.txt", text)
        for cid in range(1, NUM_FOREGROUND + 1):
            rows = "".join(f"{i} {1 if cid in present[i] else -1:2d}\n" for i in ids)
            _write_text(root / "ImageSets" / "Main" / f"{VOC_CLASSES[cid]}_{name}.txt", rows)


# --------------------------------------------------------------------------------------------
# The whole dataset
# --------------------------------------------------------------------------------------------


def split_plan(n_train: int, n_val: int, seed: int, year: int = 2026) -> list[tuple[str, str, int, int]]:
    """``(split, image_id, number, first_class)`` for every image, in id order.

    The val images are a seeded random subset of the numbers ``1..n_train+n_val``; the
    first object of the ``j``-th image of a split has class ``perm_b[j % 20]`` with a fresh
    seeded permutation ``perm_b`` of the 20 classes per block ``b = j // 20``.
    """
    total = n_train + n_val
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x73706C74]))
    val_numbers = set((rng.permutation(total)[:n_val] + 1).tolist())
    plan = []
    counters = {"train": 0, "val": 0}
    perms: dict[tuple[str, int], np.ndarray] = {}
    for number in range(1, total + 1):
        split = "val" if number in val_numbers else "train"
        j = counters[split]
        counters[split] += 1
        key = (split, j // NUM_FOREGROUND)
        if key not in perms:
            block_rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLITS.index(split), key[1], 0x70726D]))
            perms[key] = block_rng.permutation(NUM_FOREGROUND) + 1
        plan.append((split, f"{year}_{number:06d}", number, int(perms[key][j % NUM_FOREGROUND])))
    return plan


@dataclass
class GenerationReport:
    """What :func:`generate` wrote."""

    root: str
    n_train: int
    n_val: int
    seed: int
    seconds: float
    class_instances: dict[str, int]
    class_images: dict[str, int]


def _pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(root: Path) -> None:
    """Delete ``.<name>.tmp-<pid>*`` / ``.<name>.old-<pid>*`` siblings left by killed runs (dead pids only)."""
    for path in root.parent.glob(f".{root.name}.*-*"):
        kind, _, rest = path.name[len(root.name) + 2:].partition("-")
        pid_text = rest.split(".", 1)[0].split("_", 1)[0]
        if kind in ("tmp", "old") and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _install(tmp: Path, root: Path, keep: Sequence[str]) -> None:
    """Make ``tmp`` the new ``root``; entries of an old ``root`` named in ``keep`` are carried over."""
    if not root.exists():
        os.replace(tmp, root)
        return
    if not root.is_dir():
        raise WsssError(f"{root}: exists and is not a folder")
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(root, old)
    os.replace(tmp, root)
    for name in keep:
        if (old / name).exists() and not (root / name).exists():
            os.replace(old / name, root / name)
    shutil.rmtree(old, ignore_errors=True)


def generate(
    root: str | os.PathLike,
    n_train: int = 1000,
    n_val: int = 150,
    seed: int = 0,
    params: MinivocParams = MinivocParams(),
    keep: Sequence[str] = (".hydra",),
    progress: bool = True,
) -> GenerationReport:
    """Generate minivoc into ``root`` (VOC 2012 layout; see the module docstring).

    Args:
        root: the dataset folder to create or replace (``data/minivoc``).
        n_train: images in ``train``.
        n_val: images in ``val``.
        seed: the dataset seed: same seed and parameters, byte-identical files.
        params: drawing parameters (image sizes, objects per image, clutter, noise ...).
        keep: names of entries of an existing ``root`` to carry over (Hydra's ``.hydra``);
            everything else of an old ``root`` is replaced.
        progress: report progress (rate, ETA) on stderr.

    Everything is written into a hidden sibling temporary folder first and moved onto
    ``root`` at the end, so a killed run leaves no half-written dataset.
    """
    if n_train < 1 or n_val < 0:
        raise WsssError(f"minivoc: need n_train >= 1 and n_val >= 0, got n_train={n_train}, n_val={n_val}")
    if n_train + n_val > 999_999:
        raise WsssError(f"minivoc: at most 999999 images (ids have 6 digits), got {n_train + n_val}")
    params.validate()
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-{os.getpid()}_", dir=root.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset folder should not be
    try:
        plan = split_plan(n_train, n_val, seed, params.year)
        splits: dict[str, list[str]] = {"train": [], "val": []}
        present: dict[str, set[int]] = {}
        instances = np.zeros(NUM_FOREGROUND + 1, dtype=np.int64)
        images = np.zeros(NUM_FOREGROUND + 1, dtype=np.int64)
        items: Iterable = plan
        if progress:
            items = Progress(plan, desc="make_minivoc", unit="images")
        for split, image_id, number, first_class in items:
            sample = render_sample(seed, number, first_class, params)
            write_sample(tmp, image_id, sample, params)
            splits[split].append(image_id)
            ids = {o.class_id for o in sample.objects}
            present[image_id] = ids
            for o in sample.objects:
                instances[o.class_id] += 1
            for cid in ids:
                images[cid] += 1
        _write_lists(tmp, splits, present)
        names = VOC_CLASSES[1:]
        report = GenerationReport(
            root=str(root), n_train=n_train, n_val=n_val, seed=seed, seconds=0.0,
            class_instances={n: int(instances[i + 1]) for i, n in enumerate(names)},
            class_images={n: int(images[i + 1]) for i, n in enumerate(names)},
        )
        manifest = {
            "generator": "wsss.data.minivoc",
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "n_train": n_train,
            "n_val": n_val,
            "params": asdict(params),
            "class_instances": report.class_instances,
            "class_images": report.class_images,
        }
        save_json(tmp / "minivoc.json", manifest)
        _install(tmp, root, keep)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.seconds = time.monotonic() - start
    return report
