"""Schema of ``conf/export_instances.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import InstanceSettings
from wsss.schemas.common import ShardConfig, SupervisedStageConfig, config_class, config_fields


InstanceCueConfig = config_class(
    "InstanceCueConfig", "How instances are cut from the semantic pseudo-labels (wsss.params.InstanceSettings).",
    config_fields(InstanceSettings))


@dataclass
class ExportInstancesConfig(SupervisedStageConfig):
    #: folder of semantic pseudo-labels <id>.png
    labels_dir: str = MISSING
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    #: a train_p2seg folder: export its network's instances (one per point) instead of cutting the labels
    model_dir: str = ""
    instances: InstanceCueConfig = field(default_factory=InstanceCueConfig)


ConfigStore.instance().store(group="schema", name="export_instances", node=ExportInstancesConfig, package="_global_")
