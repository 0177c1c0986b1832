"""Schema of ``conf/make_cam.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import ShardConfig, StageConfig


@dataclass
class MakeCamConfig(StageConfig):
    classifier_dir: str = MISSING
    #: split whose pseudo-labels are made (VOC practice: train)
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    scales: list[float] = field(default_factory=lambda: [1.0, 0.5, 1.5, 2.0])
    flip: bool = True
    #: stride of the low-resolution maps kept for propagation
    low_stride: int = 4
    #: constant background score for the CAM label maps that are scored (IRN: 0.15, PSA: 0.2)
    bg_threshold: float = 0.15
    #: CPU processes (one thread each) computing the CAMs (wsss.parallel): null = one per thread of the job
    #: (``num_threads``), 1 = no pool (this process, ``num_threads`` threads). Ignored on a GPU (one process).
    workers: Optional[int] = None
    #: how the stride-16 CAMs reach full resolution: ``bilinear``, or ``superpixel`` (MSA: through the association
    #: of the superpixel network in ``superpixel_dir``, kernels.superpixel_upsample)
    upsample: str = "bilinear"
    superpixel_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="make_cam", node=MakeCamConfig, package="_global_")
