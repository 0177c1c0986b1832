"""DeepLabV3 for retraining on pseudo-labels: torchvision's ``DeepLabV3`` + ``DeepLabHead`` on a :class:`ResNetTrunk`.

Real photos: ResNet-50/101 at output stride 16 (ASPP rates 6, 12, 18) or 8 (12,
24, 36). The demo: ResNet-18 at stride 16 with small rates. Weights only ever come
from local files: ImageNet trunk weights (``pretrained``), a trained classifier's
trunk (``model.pt`` of the train_classifier stage), or a whole DeepLab checkpoint
(this project's ``model.pt`` or torchvision's ``deeplabv3_resnet{50,101}`` state
dict, e.g. the COCO-trained one, the common DeepLab initialisation).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead, DeepLabV3

from wsss.backbone import ResNetTrunk
from wsss.errors import WsssError


class TrunkFeatures(nn.Module):
    """Adapter giving torchvision's segmentation models their ``{"out": features}`` from a :class:`ResNetTrunk`.

    ``forward(image (B,3,H,W)) -> {"out": (B, C, H/s, W/s)}`` with ``s`` the trunk's output stride.
    """

    def __init__(self, trunk: ResNetTrunk) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, image: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict(out=self.trunk(image)[-1])


def deeplab_head(in_channels: int, num_classes: int, aspp_rates: Sequence[int], channels: int = 256) -> nn.Module:
    """torchvision's ``DeepLabHead`` (ASPP → 3×3 conv → BN → ReLU → 1×1 classifier); ``channels`` other than
    its fixed 256 builds the same layers around torchvision's ``ASPP(out_channels=channels)``."""
    if channels == 256:
        return DeepLabHead(in_channels, num_classes, list(aspp_rates))
    return nn.Sequential(
        ASPP(in_channels, list(aspp_rates), channels),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, num_classes, 1),
    )


def build_deeplab(arch: str, output_stride: int, num_classes: int, aspp_rates: Sequence[int],
                  pretrained: str = "", width: int = 64, head_channels: int = 256) -> DeepLabV3:
    """torchvision ``DeepLabV3`` (no auxiliary head): ``model(image)["out"]`` is ``(B, num_classes, H, W)`` logits.

    ``width``: trunk stage widths ``width·(1, 2, 4, 8)`` (64 = torchvision's ResNets);
    ``head_channels``: ASPP/head width (torchvision: 256).
    """
    if len(aspp_rates) != 3:
        raise WsssError(f"model.aspp_rates: torchvision's ASPP takes 3 rates, got {list(aspp_rates)}")
    trunk = ResNetTrunk(arch, output_stride, pretrained, width)
    head = deeplab_head(trunk.channels[-1], num_classes, aspp_rates, head_channels)
    return DeepLabV3(TrunkFeatures(trunk), head)


def deeplab_param_groups(model: DeepLabV3) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(trunk parameters, ASPP head parameters) for per-group learning rates."""
    return list(model.backbone.parameters()), list(model.classifier.parameters())


def _read_state(path: str, what: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise WsssError(f"{what}: file not found: {path}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupted or foreign file
        raise WsssError(f"{path}: cannot load weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    elif isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WsssError(f"{path}: not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def check_trunk_config(path: str, arch: str, width: int) -> None:
    """The ``model.pt`` at ``path`` must hold a trunk of ``arch`` and ``width`` when its config says which."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise WsssError(f"{path}: cannot load weights ({type(exc).__name__}: {exc})") from None
    backbone = (checkpoint.get("config") or {}).get("backbone") if isinstance(checkpoint, dict) else None
    if not backbone:
        return
    theirs = (backbone.get("arch"), int(backbone.get("width", 64)))
    if theirs != (arch, int(width)):
        raise WsssError(f"{path}: its trunk is {theirs[0]} width {theirs[1]}, model.arch/model.width ask for "
                        f"{arch} width {width}; make them equal or set model.init_from_classifier=false")


def load_trunk_weights(trunk: ResNetTrunk, path: str, what: str = "init_from_classifier") -> None:
    """Load the ``trunk.*`` weights of a ``model.pt`` (classifier, affinity net, DeepLab) into ``trunk``.

    Weight shapes do not depend on the output stride, so a stride-16 classifier
    trunk initialises a stride-32 detection trunk too.
    """
    if not Path(path).is_file():
        raise WsssError(f"{what}: file not found: {path}")
    state = _read_state(path, what)
    for prefix in ("trunk.", "backbone.trunk.", "backbone.body."):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            break
    else:
        raise WsssError(f"{path}: no trunk weights (keys 'trunk.*') in this checkpoint")
    missing, unexpected = trunk.load_state_dict(sub, strict=False)
    if missing or unexpected:
        raise WsssError(f"{path}: trunk weights do not match the architecture "
                        f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}); check model.arch and model.width")


_TV_STEM = {"backbone.conv1.": "backbone.trunk.stem.0.", "backbone.bn1.": "backbone.trunk.stem.1."}


def load_deeplab_checkpoint(model: DeepLabV3, path: str) -> list[str]:
    """Initialise ``model`` from a whole DeepLab state dict (ours, or torchvision's layout).

    The final 1×1 classifier is skipped when its class count differs; the
    auxiliary head of torchvision's models is ignored. Returns the names skipped.
    """
    state = _read_state(path, "model.init_checkpoint")
    renamed = {}
    for key, value in state.items():
        if key.startswith("aux_classifier."):
            continue
        for old, new in _TV_STEM.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        else:
            if key.startswith("backbone.layer"):
                key = "backbone.trunk." + key[len("backbone."):]
        renamed[key] = value
    own = model.state_dict()
    skipped = [k for k, v in renamed.items() if k in own and own[k].shape != v.shape]
    for key in skipped:
        renamed.pop(key)
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        raise WsssError(f"{path}: DeepLab weights do not match the architecture "
                        f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]}); check model.arch")
    return skipped
