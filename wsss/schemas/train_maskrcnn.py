"""Schema of ``conf/train_maskrcnn.yaml`` (model and schedule in ``conf/maskrcnn/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import MaskRCNNSettings, MaskRCNNTrainSettings
from wsss.schemas.common import SupervisedStageConfig, config_class, config_fields


MaskRCNNModelConfig = config_class(
    "MaskRCNNModelConfig",
    "torchvision Mask R-CNN on a ResNet trunk + FPN (wsss.params.MaskRCNNSettings). Weights only from local files: "
    "``pretrained`` (ImageNet trunk) or ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``).",
    config_fields(MaskRCNNSettings, replace={"init_trunk": ("init_from_classifier", bool, False)}),
)

MaskRCNNTrainConfig = config_class(
    "MaskRCNNTrainConfig", "Schedule (wsss.params.MaskRCNNTrainSettings).", config_fields(MaskRCNNTrainSettings))


@dataclass
class MaskRCNNEvalConfig:
    #: a predicted mask is its probability map above this
    mask_threshold: float = 0.5
    #: also write predictions.json (COCO results format) and gt.json
    save_predictions: bool = True


@dataclass
class TrainMaskRCNNConfig(SupervisedStageConfig):
    #: folder holding instances.json (the export_instances stage's)
    instances_dir: str = MISSING
    #: the classifier stage's folder (read only when model.init_from_classifier)
    classifier_dir: str = MISSING
    eval_split: str = MISSING
    model: MaskRCNNModelConfig = field(default_factory=MaskRCNNModelConfig)
    train: MaskRCNNTrainConfig = field(default_factory=MaskRCNNTrainConfig)
    eval: MaskRCNNEvalConfig = field(default_factory=MaskRCNNEvalConfig)
    #: undeclared folder for resumable checkpoints
    work_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="train_maskrcnn", node=TrainMaskRCNNConfig, package="_global_")
