"""Schema of ``conf/evaluate.yaml``: score a folder of label PNGs (or an instance json) against a split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import StageConfig


@dataclass
class EvaluateConfig(StageConfig):
    #: folder of ``<id>.png`` label maps (semantic) or a COCO-results ``.json`` (instance)
    pred: str = MISSING
    split: str = MISSING
    #: ``auto`` (a folder → semantic, a ``.json`` → instance), ``semantic`` or ``instance``
    kind: str = "auto"
    #: semantic: score a missing PNG as all-unlabelled instead of failing
    allow_missing: bool = False
    #: fail when an image of the split has no ground truth (else skip it, and count it in the protocol)
    require_gt: bool = True
    #: instance (VOC layout): mAP_r thresholds, one ``ap<100 t>`` key each
    iou_thresholds: List[float] = field(default_factory=lambda: [0.5, 0.75])
    use_07_metric: bool = False
    #: extra protocol facts recorded in metrics.json (e.g. ``+protocol.crf=true``)
    protocol: Dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="schema", name="evaluate", node=EvaluateConfig, package="_global_")
