"""Schema of ``conf/make_seeds.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class CRFConfig:
    """Dense CRF kernels (see wsss.crf.CRFParams)."""

    iterations: int = 10
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0


@dataclass
class ImageSeedsConfig:
    """Seeds from CAMs: ``psa`` (la/ha CRF, α_low/α_high) or ``irn`` (constant fg/bg thresholds + label CRF)."""

    method: str = "psa"
    alpha_low: float = 4.0
    alpha_high: float = 32.0
    fg_threshold: float = 0.30
    bg_threshold: float = 0.05


@dataclass
class MakeSeedsConfig(SupervisedStageConfig):
    cam_dir: str = MISSING
    split: str = MISSING
    image: ImageSeedsConfig = field(default_factory=ImageSeedsConfig)
    crf: CRFConfig = field(default_factory=CRFConfig)


ConfigStore.instance().store(group="schema", name="make_seeds", node=MakeSeedsConfig, package="_global_")
