"""Seeds of one image under point, scribble or box supervision: reads the annotation, dispatches on the kind.

The builders are :mod:`wsss.seeds.point`, :mod:`wsss.seeds.scribble` and :mod:`wsss.seeds.box`;
CAM evidence (:mod:`wsss.seeds.evidence`, image-level seeds over the classes the annotation
names) feeds the point fusion and the optional box intersection unless the run is CAM-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wsss.crf import CRFParams
from wsss.data.annotations import SUPERVISIONS_WITH_FILES, WeakAnnotation, load_weak_annotation
from wsss.data.reader import DatasetReader
from wsss.errors import WsssError
from wsss.params import CAM_SOURCES
from wsss.seeds.box import BoxSeedParams, GrabCutReport, box_seeds
from wsss.seeds.evidence import cam_evidence_seeds
from wsss.seeds.geodesic import GeodesicParams
from wsss.seeds.point import point_seeds
from wsss.seeds.scribble import scribble_seeds


@dataclass(frozen=True)
class WeakSeedBuilder:
    """Per-kind settings (the ``make_seeds`` sub-configs) and the CAM evidence rule."""

    kind: str
    folder: str
    use_cam: bool = True
    point_radius: float = 3.0
    point_min_confidence: float = 0.0
    point_cam_fusion: bool = True
    point_max_gap: float | None = 16.0
    point_geodesic: GeodesicParams | None = GeodesicParams()
    scribble_width: int = 3
    box: BoxSeedParams = BoxSeedParams()
    box_cam_intersect: bool = False
    cam_method: str = "psa"
    alpha_low: float = 4.0
    alpha_high: float = 32.0
    fg_threshold: float = 0.30
    bg_threshold: float = 0.05
    crf: CRFParams = CRFParams()

    @classmethod
    def from_config(cls, cfg: Any) -> "WeakSeedBuilder":
        """From a composed ``make_seeds`` config (validates ``cam`` and the kind)."""
        kind = str(cfg.supervision.name)
        if kind not in SUPERVISIONS_WITH_FILES:
            raise WsssError(f"supervision.name: '{kind}' is not a point/scribble/box supervision")
        if cfg.cam not in CAM_SOURCES:
            raise WsssError(f"cam: must be one of {', '.join(CAM_SOURCES)}, got '{cfg.cam}'")
        if cfg.box.inside not in ("ignore", "background"):
            raise WsssError(f"box.inside: must be 'ignore' or 'background', got '{cfg.box.inside}'")
        if cfg.image.method not in ("psa", "irn"):
            raise WsssError(f"image.method: must be 'psa' or 'irn', got '{cfg.image.method}'")
        return cls(
            kind=kind, folder=str(cfg.supervision.annotations), use_cam=cfg.cam != "none",
            point_radius=float(cfg.point.radius), point_min_confidence=float(cfg.point.min_confidence),
            point_cam_fusion=bool(cfg.point.cam_fusion),
            point_max_gap=None if cfg.point.max_gap is None else float(cfg.point.max_gap),
            point_geodesic=GeodesicParams(float(cfg.point.geodesic.margin), float(cfg.point.geodesic.border_guard),
                                          float(cfg.point.geodesic.blur), float(cfg.point.geodesic.step))
            if cfg.point.geodesic.enabled else None,
            scribble_width=int(cfg.scribble.width),
            box=BoxSeedParams(int(cfg.box.iterations), float(cfg.box.min_cover), str(cfg.box.inside)),
            box_cam_intersect=bool(cfg.box.cam_intersect), cam_method=str(cfg.image.method),
            alpha_low=float(cfg.image.alpha_low), alpha_high=float(cfg.image.alpha_high),
            fg_threshold=float(cfg.image.fg_threshold), bg_threshold=float(cfg.image.bg_threshold),
            crf=CRFParams(**cfg.crf),
        )

    @property
    def uses_cam(self) -> bool:
        """Whether :meth:`build` needs the CAMs."""
        if not self.use_cam:
            return False
        return (self.kind == "point" and self.point_cam_fusion) or (self.kind == "box" and self.box_cam_intersect)

    def seeds(self, image: np.ndarray, annotation: WeakAnnotation,
              cam: tuple[np.ndarray, np.ndarray] | None = None, report: GrabCutReport | None = None,
              image_id: str = "") -> np.ndarray:
        """Seeds ``(H,W)`` uint8 of ``image (H,W,3)`` from its ``annotation``; ``cam = (cam (K,H,W), keys (K,))``;
        ``report``: where boxes' GrabCut outcomes are counted."""
        size = image.shape[:2]
        cam_seeds = None
        if self.uses_cam and cam is not None:
            cam_seeds = cam_evidence_seeds(image, cam[0], cam[1], annotation.classes(), self.cam_method,
                                           self.alpha_low, self.alpha_high, self.fg_threshold, self.bg_threshold,
                                           self.crf)
        if self.kind == "point":
            return point_seeds(annotation.points, size, self.point_radius, cam_seeds, self.point_max_gap,
                               self.point_min_confidence, image, self.point_geodesic)
        if self.kind == "scribble":
            return scribble_seeds(annotation.scribbles, size, self.scribble_width)
        return box_seeds(image, annotation.boxes, self.box, cam_seeds, report, image_id)

    def build(self, dataset: DatasetReader, image_id: str, cam: tuple[np.ndarray, np.ndarray] | None = None,
              report: GrabCutReport | None = None) -> np.ndarray:
        """Read the annotation of ``image_id`` and return its seeds ``(H,W)`` uint8."""
        annotation = load_weak_annotation(dataset, self.kind, self.folder, image_id)
        return self.seeds(dataset.load_image(image_id), annotation, cam, report, image_id)
