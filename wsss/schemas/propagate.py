"""Schema of ``conf/propagate.yaml`` and of the ``propagation`` group (``conf/propagation/*.yaml``).

Each group file starts its defaults list with its schema (``- schema_<name>``, stored below in
the ``propagation`` group), so a propagator's keys are type-checked like a stage's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import A2GNNParams, AProParams, BoundaryWalkParams, RandomWalkParams, SeededWalkParams
from wsss.schemas.common import ShardConfig, SupervisedStageConfig, config_class, config_fields


CamWalkPropagationConfig = config_class(
    "CamWalkPropagationConfig",
    "PSA/IRN's random walk of the CAMs on AffinityNet affinities (wsss.propagation.random_walk); "
    "``flip``: average AffinityNet features with the horizontal flip.",
    [("name", str, "cam_walk"), *config_fields(RandomWalkParams, drop={"radius"}), ("flip", bool, True)],
)

BoundaryWalkPropagationConfig = config_class(
    "BoundaryWalkPropagationConfig",
    "RETAB's two-stage walk of the CAMs on AffinityNet affinities, gated by train_boundary's boundaries "
    "(wsss.weakshot.walk); ``flip``: average AffinityNet features with the horizontal flip.",
    [("name", str, "boundary_walk"), *config_fields(BoundaryWalkParams, drop={"radius"}), ("flip", bool, True)],
)

RandomWalkPropagationConfig = config_class(
    "RandomWalkPropagationConfig",
    "Random walk from the seeds (+ CAMs) on AffinityNet affinities (wsss.propagation.seeded_walk); "
    "``flip``: average AffinityNet features with the horizontal flip.",
    [("name", str, "random_walk"), *config_fields(SeededWalkParams, drop={"radius"}), ("flip", bool, True)],
)

A2GNNPropagationConfig = config_class(
    "A2GNNPropagationConfig",
    "Per-image graph attention network (wsss.propagation.a2gnn); A2GNN's defaults. "
    "``by_supervision``: per supervision name, values replacing the others (A2GNN's box/scribble settings).",
    [("name", str, "a2gnn"), *config_fields(A2GNNParams, drop={"rw_radius"}), ("flip", bool, True),
     ("by_supervision", Dict[str, Dict[str, Any]], field(default_factory=dict))],
)

AProPropagationConfig = config_class(
    "AProPropagationConfig",
    "Minimax tree propagation + local propagation of the seeds (wsss.propagation.apro).",
    [("name", str, "apro"), *config_fields(AProParams)],
)


@dataclass
class PropagateConfig(SupervisedStageConfig):
    #: ``classifier`` / ``msa``: CAMs from ``cam_dir`` (the plain classifier's / MSA's) and AffinityNet from
    #: ``affinity_dir``; ``none``: CAM-free (apro only)
    cam: str = "classifier"
    cam_dir: str = MISSING
    seeds_dir: str = MISSING
    affinity_dir: str = MISSING
    #: ``train_boundary``'s folder (propagators that read boundaries: ``boundary_walk``); null otherwise
    boundary_dir: Optional[str] = None
    split: str = MISSING
    #: the part of the split this job labels (the DAG's shard jobs set it; the whole split by default)
    shard: ShardConfig = field(default_factory=ShardConfig)
    propagation: Any = MISSING


_store = ConfigStore.instance()
_store.store(group="schema", name="propagate", node=PropagateConfig, package="_global_")
_store.store(group="propagation", name="schema_cam_walk", node=CamWalkPropagationConfig)
_store.store(group="propagation", name="schema_random_walk", node=RandomWalkPropagationConfig)
_store.store(group="propagation", name="schema_boundary_walk", node=BoundaryWalkPropagationConfig)
_store.store(group="propagation", name="schema_a2gnn", node=A2GNNPropagationConfig)
_store.store(group="propagation", name="schema_apro", node=AProPropagationConfig)
