"""Schema of ``conf/train_boundary.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig
from wsss.schemas.train_classifier import OptimConfig


@dataclass
class BoundaryModelConfig:
    """Features at ``stride`` (4 or 8) before the upsampling to the image; ``target_width``: reach (px) of the
    class-change part of the boundary target (wsss.weakshot.boundary.boundary_target)."""

    stride: int = 4
    target_width: int = 1


@dataclass
class TrainBoundaryConfig(SupervisedStageConfig):
    classifier_dir: str = MISSING
    #: the weak-shot seeds folder: its split (split.json, split/) and the base images' ground truth
    seeds_dir: str = MISSING
    split: str = MISSING
    #: start the trunk from the classifier's weights
    init_from_classifier: bool = True
    model: BoundaryModelConfig = field(default_factory=BoundaryModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    #: boundary where the predicted probability is at least this (RETAB: 0.5)
    threshold: float = 0.5
    #: average the prediction with the horizontal flip's
    flip: bool = True
    work_dir: str = MISSING
    #: MiB of decoded training images kept in memory across epochs (a runtime-only key, wsss.config)
    decode_cache_mb: int = 2048


ConfigStore.instance().store(group="schema", name="train_boundary", node=TrainBoundaryConfig, package="_global_")
