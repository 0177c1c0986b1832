"""Schema of ``conf/export_pseudolabels.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import ShardConfig, SupervisedStageConfig


@dataclass
class ExportConfig(SupervisedStageConfig):
    #: folder of final label PNGs (by default the CRF stage's)
    source_dir: str = MISSING
    #: weak-shot: the seeds folder; its base images (``split/base.txt``) hold their ground truth, which they are
    #: exported with (retraining then learns the base images from ground truth). null: every image from source_dir
    seeds_dir: Optional[str] = None
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)


ConfigStore.instance().store(group="schema", name="export_pseudolabels", node=ExportConfig, package="_global_")
