"""Schema of ``conf/train_superpixel.yaml`` (network, loss and schedule in ``conf/superpixel/<dataset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import StageConfig
from wsss.schemas.train_classifier import OptimConfig
from wsss.params import SUPERPIXEL_LAB_WEIGHT, SUPERPIXEL_XY_WEIGHT


@dataclass
class SuperpixelModelConfig:
    """``cell``: side (px) of the regular grid's cells (MSA: 16); ``width``: channel factor of SpixelFCN's
    16-32-64-128-256 U-Net (wsss.superpixel.model)."""

    cell: int = 16
    width: float = 1.0


@dataclass
class SuperpixelLossConfig:
    """Weights of the colour (CIELAB) and position (XY) reconstruction terms (MSA: 0.005 and 0.005·0.003)."""

    lab_weight: float = SUPERPIXEL_LAB_WEIGHT
    xy_weight: float = SUPERPIXEL_XY_WEIGHT


@dataclass
class TrainSuperpixelConfig(StageConfig):
    #: the split trained on (without its labels) and whose every image gets its association and superpixels
    split: str = MISSING
    #: train on the first this-many images of the split (id order); 0 = all of them
    train_images: int = 0
    model: SuperpixelModelConfig = field(default_factory=SuperpixelModelConfig)
    loss: SuperpixelLossConfig = field(default_factory=SuperpixelLossConfig)
    #: Adam (``momentum`` = β₁) with poly decay; ``crop`` a multiple of ``model.cell``
    train: OptimConfig = field(default_factory=OptimConfig)
    #: SLIC's compactness for the comparison in metrics.json (scikit-image's default)
    slic_compactness: float = 10.0
    work_dir: str = MISSING
    #: MiB of decoded training images kept in memory across epochs (a runtime-only key, wsss.config)
    decode_cache_mb: int = 2048


ConfigStore.instance().store(group="schema", name="train_superpixel", node=TrainSuperpixelConfig, package="_global_")
