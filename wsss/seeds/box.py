"""Seeds from boxes: GrabCut inside each box (Simple-Does-It's rule as A2GNN uses it, SEEDS_ANATOMY §1.12).

Per box (0-based inclusive ``(x0, y0, x1, y1)``):

1. ``cv2.grabCut`` initialised with the box as its rectangle, ``iterations`` rounds (3); the object is
   ``GC_FGD | GC_PR_FGD``. When that covers less than ``min_cover`` (0.15) of the box, or GrabCut cannot
   run (a box thinner than 2 px, or one covering the whole image, leaves it no background sample), the
   object is the filled box. OpenCV's random generator is reseeded before every call, so the result
   is deterministic. Every fallback is counted by its reason (:data:`FALLBACKS`) in a
   :class:`GrabCutReport` that ``make_seeds`` writes into ``metrics.json`` and its log; an OpenCV error
   is also logged on its own line (image, box, OpenCV's message) as it happens.
2. Overlaps: objects are painted from the largest box to the smallest, so smaller objects win.
3. Outside every box: background (0). Inside a box but in no object: 255 (``inside="ignore"``, the
   default: GrabCut's background inside a box is often object) or 0 (``inside="background"``).
4. Optionally (``cam_seeds`` given) object pixels where the CAM evidence is confident background are
   set to 255 (intersection with CAM evidence).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from wsss.data.annotations import BoxAnnotation

IGNORE = 255


@dataclass(frozen=True)
class BoxSeedParams:
    iterations: int = 3
    min_cover: float = 0.15
    #: ``ignore`` (255) or ``background`` (0) for box pixels GrabCut leaves out
    inside: str = "ignore"


#: why a box's object is the filled box: too thin for GrabCut (< 2 px), covering the whole image (no
#: background sample), GrabCut's object under ``min_cover`` of the box, OpenCV raised an error
FALLBACKS = ("thin_box", "whole_image", "low_cover", "opencv_error")


@dataclass
class GrabCutReport:
    """What GrabCut did over a run: boxes seen, fallbacks to the filled box by reason, the OpenCV errors."""

    boxes: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    #: one line per OpenCV error: ``<image id>: box (x0, y0, x1, y1): <OpenCV's message>``
    errors: list[str] = field(default_factory=list)

    def add(self, outcome: str | None, image_id: str = "", box: Sequence[int] = (), message: str = "") -> None:
        self.boxes += 1
        if outcome is not None:
            self.fallbacks[outcome] += 1
        if outcome == "opencv_error":
            line = f"{image_id or '?'}: box {tuple(int(v) for v in box)}: {message}"
            self.errors.append(line)
            print(f"[grabcut] OpenCV error, filled box used instead: {line}", file=sys.stderr, flush=True)

    def as_dict(self) -> dict[str, Any]:
        return {"boxes": self.boxes, "filled_box_fallbacks": {name: self.fallbacks[name] for name in FALLBACKS},
                "opencv_errors": self.errors}

    def summary(self) -> str:
        filled = sum(self.fallbacks.values())
        reasons = ", ".join(f"{name} {self.fallbacks[name]}" for name in FALLBACKS if self.fallbacks[name])
        return f"GrabCut: {self.boxes} boxes, {filled} filled box fallbacks" + (f" ({reasons})" if reasons else "")


def _opencv_message(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def grabcut_outcome(image: np.ndarray, box: tuple[int, int, int, int], iterations: int = 3,
                    min_cover: float = 0.15) -> tuple[np.ndarray, str | None, str]:
    """``(object mask (H,W) bool, fallback reason or None, OpenCV's message)`` of one box by GrabCut."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    filled = np.zeros((height, width), bool)
    filled[y0 : y1 + 1, x0 : x1 + 1] = True
    box_w, box_h = x1 - x0 + 1, y1 - y0 + 1
    if box_w < 2 or box_h < 2:
        return filled, "thin_box", ""
    if box_w >= width and box_h >= height:
        return filled, "whole_image", ""
    mask = np.zeros((height, width), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[:, :, ::-1], dtype=np.uint8)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(bgr, mask, (int(x0), int(y0), int(box_w), int(box_h)), bgd, fgd, int(iterations),
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error as exc:
        return filled, "opencv_error", _opencv_message(exc)
    obj = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)) & filled
    if obj.sum() < min_cover * box_w * box_h:
        return filled, "low_cover", ""
    return obj, None, ""


def grabcut_object(image: np.ndarray, box: tuple[int, int, int, int], iterations: int = 3,
                   min_cover: float = 0.15, report: GrabCutReport | None = None, image_id: str = "") -> np.ndarray:
    """Object mask ``(H,W)`` bool of one box by GrabCut (step 1 of the rule); always inside the box.

    ``report``: where the outcome is counted (an OpenCV error is logged there too).
    """
    obj, outcome, message = grabcut_outcome(image, box, iterations, min_cover)
    if report is not None:
        report.add(outcome, image_id, box, message)
    return obj


def box_seeds(image: np.ndarray, boxes: Sequence[BoxAnnotation], params: BoxSeedParams = BoxSeedParams(),
              cam_seeds: np.ndarray | None = None, report: GrabCutReport | None = None,
              image_id: str = "") -> np.ndarray:
    """Seeds ``(H,W)`` uint8 (0 bg, class ids, 255 unknown) from ``boxes`` on ``image (H,W,3)`` uint8.

    ``report``: counts each box's GrabCut outcome (``image_id`` names the image in its error lines).
    """
    if params.inside not in ("ignore", "background"):
        raise ValueError(f"box inside must be 'ignore' or 'background', got '{params.inside}'")
    height, width = image.shape[:2]
    seeds = np.zeros((height, width), np.uint8)
    inside_value = IGNORE if params.inside == "ignore" else 0
    for b in boxes:
        x0, y0, x1, y1 = b.box
        seeds[y0 : y1 + 1, x0 : x1 + 1] = inside_value
    order = sorted(range(len(boxes)), key=lambda k: (-boxes[k].area, k))
    for k in order:
        obj = grabcut_object(image, boxes[k].box, params.iterations, params.min_cover, report, image_id)
        if cam_seeds is not None:
            obj &= cam_seeds != 0
        seeds[obj] = boxes[k].class_id
    return seeds


def filled_box_labels(boxes: Sequence[BoxAnnotation], size: tuple[int, int]) -> np.ndarray:
    """The seeds-only baseline: filled boxes, smaller boxes on top, background outside. ``(H,W)`` uint8."""
    label = np.zeros(size, np.uint8)
    for b in sorted(boxes, key=lambda b: -b.area):
        x0, y0, x1, y1 = b.box
        label[y0 : y1 + 1, x0 : x1 + 1] = b.class_id
    return label


def class_box_masks(boxes: Sequence[BoxAnnotation], classes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Union of the boxes of each class in ``classes (K,)``: ``(K,H,W)`` bool (where that class may appear)."""
    masks = np.zeros((len(classes), *size), bool)
    position = {int(c): i for i, c in enumerate(np.asarray(classes).tolist())}
    for b in boxes:
        if b.class_id in position:
            x0, y0, x1, y1 = b.box
            masks[position[b.class_id], y0 : y1 + 1, x0 : x1 + 1] = True
    return masks
