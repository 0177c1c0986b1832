"""Schema of ``conf/train_deeplab.yaml`` (model and schedule in ``conf/deeplab/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig
from wsss.schemas.make_seeds import CRFConfig


@dataclass
class DeepLabModelConfig:
    """DeepLabV3 on a torchvision ResNet trunk. Weights only from local files:
    ``pretrained`` (ImageNet trunk), ``init_checkpoint`` (a whole DeepLab, e.g. torchvision's COCO
    deeplabv3_resnet101 state dict), ``init_from_classifier`` (the trunk of ``<classifier_dir>/model.pt``)."""

    arch: str = "resnet101"
    #: trunk stage widths width·(1, 2, 4, 8); 64 = torchvision's ResNets (needed for ImageNet weights)
    width: int = 64
    output_stride: int = 16
    aspp_rates: list[int] = field(default_factory=lambda: [6, 12, 18])
    #: ASPP and head channels (torchvision's DeepLabHead: 256)
    head_channels: int = 256
    pretrained: str = ""
    init_checkpoint: str = ""
    init_from_classifier: bool = False


@dataclass
class DeepLabTrainConfig:
    """Iteration-based SGD (real momentum) with poly decay; ``batch_size`` is the global batch (all GPUs)."""

    iterations: int = 20000
    batch_size: int = 10
    lr: float = 2.5e-4
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    power: float = 0.9
    crop: int = 321
    #: random rescale factor range of image and label before cropping
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    checkpoint_every: int = 1000
    log_every: int = 20
    #: DataLoader worker processes
    workers: int = 0
    #: SyncBatchNorm under torchrun on CUDA
    sync_bn: bool = True


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
