"""Schema of ``conf/train_deeplab.yaml`` (model and schedule in ``conf/deeplab/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import DeepLabModelSettings, DeepLabSchedule
from wsss.schemas.common import SupervisedStageConfig, config_class, config_fields
from wsss.schemas.make_seeds import CRFConfig


DeepLabModelConfig = config_class(
    "DeepLabModelConfig",
    "DeepLabV3 on a torchvision ResNet trunk (wsss.params.DeepLabModelSettings). Weights only from local files: "
    "``pretrained`` (ImageNet trunk), ``init_checkpoint`` (a whole DeepLab, e.g. torchvision's COCO "
    "deeplabv3_resnet101 state dict), ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``).",
    config_fields(DeepLabModelSettings, replace={"init_trunk": ("init_from_classifier", bool, False)}),
)

DeepLabTrainConfig = config_class("DeepLabTrainConfig", "Schedule (wsss.params.DeepLabSchedule).",
                                  config_fields(DeepLabSchedule))


@dataclass
class DeepLabEvalConfig:
    """Inference on ``eval_split``: softmax averaged over ``scales`` (+ flip); ``crf``: also score the dense-CRF output."""

    scales: list[float] = field(default_factory=lambda: [1.0])
    flip: bool = True
    crf: bool = True


@dataclass
class TrainDeepLabConfig(SupervisedStageConfig):
    #: folder of semantic pseudo-labels <id>.png of ``split``
    labels_dir: str = MISSING
    #: the classifier stage's folder (read only when model.init_from_classifier)
    classifier_dir: str = MISSING
    split: str = MISSING
    eval_split: str = MISSING
    model: DeepLabModelConfig = field(default_factory=DeepLabModelConfig)
    train: DeepLabTrainConfig = field(default_factory=DeepLabTrainConfig)
    eval: DeepLabEvalConfig = field(default_factory=DeepLabEvalConfig)
    #: dense-CRF post-processing kernels (DeepLab's: SEEDS_ANATOMY §1.3)
    crf: CRFConfig = field(default_factory=CRFConfig)
    #: undeclared folder for resumable checkpoints
    work_dir: str = MISSING


ConfigStore.instance().store(group="schema", name="train_deeplab", node=TrainDeepLabConfig, package="_global_")
