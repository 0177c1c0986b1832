"""Schema of ``conf/segment_boxes.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import ShardConfig, SupervisedStageConfig


@dataclass
class SegmentBoxesConfig(SupervisedStageConfig):
    #: a train_maskrcnn folder (its model.pt), trained from the boxes (mask_loss.kind filled_box or apro)
    model_dir: str = MISSING
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    #: a box's instance is its mask probability above this, inside the box
    mask_threshold: float = 0.5


ConfigStore.instance().store(group="schema", name="segment_boxes", node=SegmentBoxesConfig, package="_global_")
