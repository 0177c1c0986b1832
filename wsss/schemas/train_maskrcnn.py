"""Schema of ``conf/train_maskrcnn.yaml`` (model and schedule in ``conf/maskrcnn/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import BoxMaskLossSettings, MaskRCNNSettings, MaskRCNNTrainSettings
from wsss.schemas.common import SupervisedStageConfig, config_class, config_fields


MaskRCNNModelConfig = config_class(
    "MaskRCNNModelConfig",
    "torchvision Mask R-CNN on a ResNet trunk + FPN (wsss.params.MaskRCNNSettings). Weights only from local files: "
    "``pretrained`` (ImageNet trunk) or ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``).",
    config_fields(MaskRCNNSettings, replace={"init_trunk": ("init_from_classifier", bool, False)}),
)

MaskRCNNTrainConfig = config_class(
    "MaskRCNNTrainConfig", "Schedule (wsss.params.MaskRCNNTrainSettings).", config_fields(MaskRCNNTrainSettings))


MaskLossConfig = config_class(
    "MaskLossConfig",
    "What the mask head learns from (wsss.params.BoxMaskLossSettings): ``mask`` = the instance pseudo-labels of "
    "``instances_dir``; ``filled_box`` = the annotated boxes as masks; ``apro`` = the boxes only, with APro's box "
    "projection, global and local propagation losses (wsss.retrain.box_supervision). The last two read the "
    "supervision's box annotations of the train split.",
    config_fields(BoxMaskLossSettings))


@dataclass
class MaskRCNNEvalConfig:
    #: a predicted mask is its probability map above this
    mask_threshold: float = 0.5
    #: also write predictions.json (COCO results format) and gt.json
    save_predictions: bool = True


@dataclass
class TrainMaskRCNNConfig(SupervisedStageConfig):
    #: folder holding instances.json (the export_instances stage's); read only when mask_loss.kind is mask
    instances_dir: str = ""
    #: the classifier stage's folder (read only when model.init_from_classifier)
    classifier_dir: str = MISSING
    eval_split: str = MISSING
    model: MaskRCNNModelConfig = field(default_factory=MaskRCNNModelConfig)
    train: MaskRCNNTrainConfig = field(default_factory=MaskRCNNTrainConfig)
    eval: MaskRCNNEvalConfig = field(default_factory=MaskRCNNEvalConfig)
    mask_loss: MaskLossConfig = field(default_factory=MaskLossConfig)
    #: undeclared folder for resumable checkpoints
    work_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="train_maskrcnn", node=TrainMaskRCNNConfig, package="_global_")
