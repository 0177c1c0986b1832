"""One generated minivoc image with its annotations, in memory (:class:`Sample`, :class:`ObjectAnnotation`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wsss.data.classes import VOC_CLASSES


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
