"""Schema of ``conf/train_p2seg.yaml`` (model, schedule and export in ``conf/p2seg/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import P2SegExportSettings, P2SegModelSettings, P2SegSchedule
from wsss.schemas.common import SupervisedStageConfig, config_class, config_fields


P2SegModelConfig = config_class(
    "P2SegModelConfig",
    "The P2Seg network on a torchvision ResNet trunk (wsss.params.P2SegModelSettings). Weights only from local files: "
    "``pretrained`` (ImageNet trunk) or ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``).",
    config_fields(P2SegModelSettings, replace={"init_trunk": ("init_from_classifier", bool, False)}),
)

P2SegTrainConfig = config_class(
    "P2SegTrainConfig", "Schedule, targets and loss weights (wsss.params.P2SegSchedule).", config_fields(P2SegSchedule))

P2SegExportConfig = config_class(
    "P2SegExportConfig", "The network's instances, one per point (wsss.params.P2SegExportSettings); export_instances "
    "uses the saved model's.", config_fields(P2SegExportSettings))


@dataclass
class TrainP2SegConfig(SupervisedStageConfig):
    #: folder of semantic pseudo-labels <id>.png of ``split`` (another point recipe's: the p2seg recipe's ``pseudolabels``)
    labels_dir: str = MISSING
    #: the classifier stage's folder (read only when model.init_from_classifier)
    classifier_dir: str = MISSING
    split: str = MISSING
    #: the network's own instances are scored on this split (its points and ground-truth instances)
    eval_split: str = MISSING
    model: P2SegModelConfig = field(default_factory=P2SegModelConfig)
    train: P2SegTrainConfig = field(default_factory=P2SegTrainConfig)
    export: P2SegExportConfig = field(default_factory=P2SegExportConfig)
    #: undeclared folder for resumable checkpoints (one sub-folder per round)
    work_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="train_p2seg", node=TrainP2SegConfig, package="_global_")
