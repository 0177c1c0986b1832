"""Schema of ``conf/segment_boxes.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class SegmentBoxesConfig(SupervisedStageConfig):
    #: a train_maskrcnn folder (its model.pt), trained from the boxes (mask_loss.kind filled_box or apro)
    model_dir: str = MISSING
    split: str = MISSING
    #: a box's instance is its mask probability above this, inside the box
    mask_threshold: float = 0.5


ConfigStore.instance().store(group="schema", name="segment_boxes", node=SegmentBoxesConfig, package="_global_")
