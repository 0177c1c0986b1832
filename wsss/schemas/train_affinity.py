"""Schema of ``conf/train_affinity.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig
from wsss.schemas.train_classifier import OptimConfig


@dataclass
class AffinityModelConfig:
    """Affinity features at ``stride`` (4 or 8), pairs within ``radius`` (PSA: 5)."""

    feature_dim: int = 64
    stride: int = 4
    radius: int = 5


@dataclass
class TrainAffinityConfig(SupervisedStageConfig):
    classifier_dir: str = MISSING
    seeds_dir: str = MISSING
    #: weak-shot: ``train_boundary``'s folder; the predicted boundary pixels of the images without ground truth (the
    #: novel images of the seeds folder's split) are left out of the pairs (RETAB). null: no boundary
    boundary_dir: Optional[str] = None
    split: str = MISSING
    #: start the trunk from the classifier's weights
    init_from_classifier: bool = True
    model: AffinityModelConfig = field(default_factory=AffinityModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    work_dir: str = MISSING
    #: MiB of decoded training images (and seed maps) kept in memory across epochs (wsss.data.cache);
    #: 0 = decode every epoch. Speed only: the samples are the same (a runtime-only key, wsss.config)
    decode_cache_mb: int = 2048


ConfigStore.instance().store(group="schema", name="train_affinity", node=TrainAffinityConfig, package="_global_")
