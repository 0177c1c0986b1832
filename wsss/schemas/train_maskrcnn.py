"""Schema of ``conf/train_maskrcnn.yaml`` (model and schedule in ``conf/maskrcnn/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class MaskRCNNModelConfig:
    """torchvision Mask R-CNN on a ResNet trunk + FPN. Weights only from local files: ``pretrained``
    (ImageNet trunk) or ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``)."""

    arch: str = "resnet50"
    #: trunk stage widths width·(1, 2, 4, 8); 64 = torchvision's ResNets (needed for ImageNet weights)
    width: int = 64
    pretrained: str = ""
    init_from_classifier: bool = False
    #: trunk stages trained from the top (5 = all; torchvision: 3 with ImageNet weights)
    trainable_layers: int = 3
    #: BatchNorm frozen to its (pretrained) statistics, as torchvision's detection models
    frozen_bn: bool = True
    fpn_channels: int = 256
    representation_size: int = 1024
    mask_layers: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    #: anchor size per FPN level P2..P6 (3 aspect ratios each)
    anchor_sizes: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    #: shorter image side: drawn from this list per training image; min_size_test at inference
    min_size_train: list[int] = field(default_factory=lambda: [800])
    min_size_test: int = 800
    max_size: int = 1333
    rpn_pre_nms_train: int = 2000
    rpn_post_nms_train: int = 2000
    rpn_pre_nms_test: int = 1000
    rpn_post_nms_test: int = 1000
    rpn_batch_size: int = 256
    box_batch_size: int = 512
    score_threshold: float = 0.05
    detections_per_image: int = 100


@dataclass
class MaskRCNNTrainConfig:
    """Iteration-based SGD (real momentum), linear warm-up then poly decay; ``batch_size`` is global (all GPUs)."""

    iterations: int = 20000
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9
    warmup_iterations: int = 500
    warmup_factor: float = 0.001
    #: max gradient norm (0 = off)
    grad_clip: float = 0.0
    flip: bool = True
    checkpoint_every: int = 1000
    log_every: int = 20
    workers: int = 0
    sync_bn: bool = False


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
