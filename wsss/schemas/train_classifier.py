"""Schema of ``conf/train_classifier.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import MSASettings
from wsss.schemas.common import StageConfig


@dataclass
class BackboneConfig:
    """torchvision ResNet trunk; ``pretrained`` = local path to ImageNet weights ('' = from scratch)."""

    arch: str = "resnet50"
    output_stride: int = 16
    pretrained: str = ""
    #: stage widths width·(1,2,4,8); 64 = torchvision's standard nets
    width: int = 64


@dataclass
class OptimConfig:
    """SGD (real momentum) with poly decay; ``resize_long`` = [min, max] long side before cropping."""

    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    crop: int = 512
    resize_long: list[int] = field(default_factory=lambda: [320, 640])
    #: forward pass under autocast: ``fp32`` (none), ``bf16``, or ``auto``: bf16 where the hardware computes
    #: it natively (a CUDA GPU with bf16, a CPU with avx512_bf16 / amx_bf16), else fp32 (wsss.training)
    precision: str = "auto"


@dataclass
class TrainClassifierConfig(StageConfig):
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    #: MSA's parts (wsss.params.MSASettings; all off = the plain classifier); DCR and IPC read the association
    #: of the superpixel network in ``superpixel_dir``
    msa: MSASettings = field(default_factory=MSASettings)
    superpixel_dir: str = MISSING
    #: split scored after every epoch (``val/map``, ``val/exact_match`` in the history and the curves)
    val_split: str = MISSING
    #: how many images of ``val_split`` (the first in id order) are scored; 0 = no validation
    val_images: int = 200
    #: undeclared folder for resumable checkpoints
    work_dir: str = MISSING
    #: MiB of decoded training images kept in memory across epochs (wsss.data.cache);
    #: 0 = decode every epoch. Speed only: the samples are the same (a runtime-only key, wsss.config)
    decode_cache_mb: int = 2048


ConfigStore.instance().store(group="schema", name="train_classifier", node=TrainClassifierConfig, package="_global_")
