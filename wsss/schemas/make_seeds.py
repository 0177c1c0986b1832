"""Schema of ``conf/make_seeds.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import CRFParams
from wsss.schemas.common import ShardConfig, SupervisedStageConfig, config_class, config_fields


CRFConfig = config_class("CRFConfig", "Dense CRF kernels (wsss.params.CRFParams).", config_fields(CRFParams))


@dataclass
class ImageSeedsConfig:
    """Seeds from CAMs: ``psa`` (la/ha CRF, α_low/α_high) or ``irn`` (constant fg/bg thresholds + label CRF)."""

    method: str = "psa"
    alpha_low: float = 4.0
    alpha_high: float = 32.0
    fg_threshold: float = 0.30
    bg_threshold: float = 0.05


@dataclass
class GeodesicSeedsConfig:
    """Geodesic evidence of the point seeds (wsss.seeds.geodesic): the clicks against the image border."""

    enabled: bool = True
    margin: float = 0.3
    border_guard: float = 0.3
    blur: float = 1.0
    step: float = 1e-3


@dataclass
class PointSeedsConfig:
    """Points (wsss.seeds.point): discs of ``radius`` px, fused with CAM evidence of the named classes."""

    radius: float = 3.0
    #: points below this confidence are dropped (P2Seg keeps pseudo points above 0.7)
    min_confidence: float = 0.0
    #: fuse with CAM evidence (image-level seeds of the classes the points name); ignored when cam=none
    cam_fusion: bool = True
    #: keep a CAM region of class c only within this many px of a point of class c (null: keep all)
    max_gap: Optional[float] = 16.0
    #: unknown pixels labelled by geodesic competition of the clicks and the image border (background)
    geodesic: GeodesicSeedsConfig = field(default_factory=GeodesicSeedsConfig)


@dataclass
class ScribbleSeedsConfig:
    """Scribbles (wsss.seeds.scribble): polylines rasterised ``width`` px thick, the rest unknown."""

    width: int = 3


@dataclass
class BoxSeedsConfig:
    """Boxes (wsss.seeds.box): GrabCut per box, filled box below ``min_cover``, smaller boxes win."""

    iterations: int = 3
    min_cover: float = 0.15
    #: box pixels GrabCut leaves out: ``ignore`` (255) or ``background`` (0)
    inside: str = "ignore"
    #: drop object pixels the CAM evidence calls confident background; ignored when cam=none
    cam_intersect: bool = False


@dataclass
class MakeSeedsConfig(SupervisedStageConfig):
    cam_dir: str = MISSING
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    #: the CAMs in ``cam_dir``: ``classifier`` (the plain classifier's) or ``msa`` (MSA's, conf/camnet/msa.yaml);
    #: ``none``: CAM-free (point/scribble/box only)
    cam: str = "classifier"
    image: ImageSeedsConfig = field(default_factory=ImageSeedsConfig)
    point: PointSeedsConfig = field(default_factory=PointSeedsConfig)
    scribble: ScribbleSeedsConfig = field(default_factory=ScribbleSeedsConfig)
    box: BoxSeedsConfig = field(default_factory=BoxSeedsConfig)
    crf: CRFConfig = field(default_factory=CRFConfig)
    #: processes running the image-level seeds' CRFs (wsss.parallel): null = one per thread of the job
    #: (``num_threads``), 1 = no pool. The outputs are the same for every value.
    workers: Optional[int] = None


ConfigStore.instance().store(group="schema", name="make_seeds", node=MakeSeedsConfig, package="_global_")
