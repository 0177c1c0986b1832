"""Schema of ``conf/propagate.yaml`` and of the ``propagation`` group (``conf/propagation/*.yaml``).

Each group file starts its defaults list with its schema (``- schema_<name>``, stored below in
the ``propagation`` group), so a propagator's keys are type-checked like a stage's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class RandomWalkPropagationConfig:
    """Random walk from the seeds (+ CAMs) on AffinityNet affinities (wsss.propagation.seeded_walk)."""

    name: str = "random_walk"
    beta: float = 10.0
    steps: int = 256
    #: CAM background power (1 − max cam)^alpha
    alpha: float = 16.0
    #: reset the seeded cells to their one-hot every this many steps (0: PSA's free walk)
    clamp_every: int = 16
    #: average AffinityNet features with the horizontal flip
    flip: bool = True


@dataclass
class A2GNNPropagationConfig:
    """Per-image graph attention network (wsss.propagation.a2gnn); A2GNN's defaults."""

    name: str = "a2gnn"
    radius: int = 3
    #: node stride (AffinityNet features average-pooled to it; 0 = the AffinityNet's own stride)
    graph_stride: int = 8
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.5
    lr: float = 0.03
    weight_decay: float = 5e-4
    epochs: int = 50
    adjacency_weight: float = 10.0
    crf_weight: float = 0.3
    crf_radius: int = 5
    crf_sigma_xy: float = 6.0
    crf_sigma_rgb: float = 0.1
    rw_weight: float = 0.0
    rw_beta: float = 8.0
    rw_steps: int = 64
    rw_alpha: float = 6.0
    flip: bool = True
    #: per supervision name, values replacing the ones above (A2GNN's box/scribble settings)
    by_supervision: Dict[str, Dict[str, Any]] = field(default_factory=dict)


@dataclass
class AProPropagationConfig:
    """Minimax tree propagation + local propagation of the seeds (wsss.propagation.apro)."""

    name: str = "apro"
    zeta_global: float = 0.01
    zeta_label: float = 0.0
    guide_blur: float = 2.0
    max_side: int = 96
    geodesic_weight: float = 0.5
    geodesic_zeta: float = 0.1
    geodesic_sigma: float = 2.0
    kernel_size: int = 5
    zeta_local: float = 0.15
    iterations: int = 20
    prior_weight: float = 0.0
    background_prior: float = 1e-4
    alpha: float = 16.0
    sharpen: float = 3.0


@dataclass
class PropagateConfig(SupervisedStageConfig):
    #: ``classifier``: CAMs from ``cam_dir`` (and AffinityNet from ``affinity_dir``); ``none``: CAM-free (apro only)
    cam: str = "classifier"
    cam_dir: str = MISSING
    seeds_dir: str = MISSING
    affinity_dir: str = MISSING
    split: str = MISSING
    propagation: Any = MISSING


_store = ConfigStore.instance()
_store.store(group="schema", name="propagate", node=PropagateConfig, package="_global_")
_store.store(group="propagation", name="schema_random_walk", node=RandomWalkPropagationConfig)
_store.store(group="propagation", name="schema_a2gnn", node=A2GNNPropagationConfig)
_store.store(group="propagation", name="schema_apro", node=AProPropagationConfig)
