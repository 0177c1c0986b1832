"""Schema of ``conf/gather_shards.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class GatherShardsConfig:
    #: the folder holding the shard jobs' folders ``0`` .. ``count-1``
    shard_root: str = MISSING
    #: how many shards (every one must be there)
    count: int = MISSING
    #: the stage's folder to write
    out_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="gather_shards", node=GatherShardsConfig, package="_global_")
