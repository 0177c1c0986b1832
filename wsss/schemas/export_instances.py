"""Schema of ``conf/export_instances.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class InstanceCueConfig:
    """How instances are cut from the semantic pseudo-labels (see :mod:`wsss.instances`)."""

    #: auto (by supervision: image/scribble → components, point → points, box → boxes), components, points, boxes
    cue: str = "auto"
    #: components: regions smaller than this fraction of the image are dropped (IRN: 1 %)
    min_fraction: float = 0.01
    #: points: class regions smaller than this (pixels) are left out (BESTIE: 50)
    min_component_px: int = 50
    #: points: points below this confidence are ignored (BESTIE's PAM peaks: 0.7; annotated points have 1.0)
    min_confidence: float = 0.0
    #: points: side of the square given to a point with no region of its class (0 = drop; P2Seg: 64)
    fallback_size: int = 0
    #: boxes: a box without pixels of its class → fill (the box itself) or drop
    empty_box: str = "fill"


@dataclass
class ExportInstancesConfig(SupervisedStageConfig):
    #: folder of semantic pseudo-labels <id>.png
    labels_dir: str = MISSING
    split: str = MISSING
    instances: InstanceCueConfig = field(default_factory=InstanceCueConfig)


ConfigStore.instance().store(group="schema", name="export_instances", node=ExportInstancesConfig, package="_global_")
