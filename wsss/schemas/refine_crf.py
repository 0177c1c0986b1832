"""Schema of ``conf/refine_crf.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig
from wsss.schemas.make_seeds import CRFConfig


@dataclass
class RefineCrfConfig(SupervisedStageConfig):
    #: folder with scores/<id>.npy ((K+1,H,W), channel 0 background) from a propagation stage
    scores_dir: str = MISSING
    cam_dir: str = MISSING
    split: str = MISSING
    crf: CRFConfig = field(default_factory=CRFConfig)


ConfigStore.instance().store(group="schema", name="refine_crf", node=RefineCrfConfig, package="_global_")
