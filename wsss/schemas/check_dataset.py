"""Schema of ``conf/check_dataset.yaml``: report every problem of a dataset at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from hydra.core.config_store import ConfigStore

from wsss.schemas.common import StageConfig


@dataclass
class CheckDatasetConfig(StageConfig):
    #: splits to check (VOC: ``ImageSets/Segmentation/<split>.txt``; COCO: the ``{split}`` of the json path)
    splits: List[str] = field(default_factory=list)
    #: VOC XML folder
    annotations: str = "Annotations"
    #: decode every image fully (finds truncated files; slower) instead of reading headers only
    decode: bool = True


ConfigStore.instance().store(group="schema", name="check_dataset", node=CheckDatasetConfig, package="_global_")
