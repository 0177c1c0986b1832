"""Schema of ``conf/random_walk.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class RandomWalkStageConfig(SupervisedStageConfig):
    cam_dir: str = MISSING
    affinity_dir: str = MISSING
    split: str = MISSING
    beta: float = 10.0
    #: number of walk steps t (PSA/IRN: 2^8 = 256)
    steps: int = 256
    #: power (PSA, bg = (1-max)^alpha) or constant (IRN, bg = bg_threshold after max-normalising)
    background: str = "power"
    alpha: float = 16.0
    bg_threshold: float = 0.25
    flip: bool = True


ConfigStore.instance().store(group="schema", name="random_walk", node=RandomWalkStageConfig, package="_global_")
