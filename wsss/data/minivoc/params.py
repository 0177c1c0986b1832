"""What the minivoc generator draws from: :class:`MinivocParams` (image sizes, objects, clutter, noise ...)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from wsss.errors import WsssError


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
