"""Schema of ``conf/refine_crf.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import ShardConfig, SupervisedStageConfig
from wsss.schemas.make_seeds import CRFConfig


@dataclass
class RefineCrfConfig(SupervisedStageConfig):
    #: a ``propagate`` folder: scores/<id>.npy ((K+1,H,W), channel 0 background) and keys.json (classes of 1..K)
    scores_dir: str = MISSING
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    crf: CRFConfig = field(default_factory=CRFConfig)
    #: the recipe's seeds folder (``make_seeds``: <id>.png, 255 unknown), read when ``keep_seeds``
    seeds_dir: str = MISSING
    #: a confident seed keeps its label; the CRF decides the unknown pixels only
    keep_seeds: bool = False
    #: processes running the CRF (wsss.parallel): null = one per thread of the job (``num_threads``, which
    #: Snakemake sets to the rule's threads; 0 there = every core); 1 = no pool, the loop in this process.
    #: The outputs are the same for every value.
    workers: Optional[int] = None


ConfigStore.instance().store(group="schema", name="refine_crf", node=RefineCrfConfig, package="_global_")
