"""torchvision ResNet trunks with a chosen output stride, weights from a local file only."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet

from wsss.errors import WsssError

_ARCHS = {
    "resnet10": (resnet.BasicBlock, [1, 1, 1, 1]),
    "resnet18": (resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (resnet.Bottleneck, [3, 4, 6, 3]),
    "resnet101": (resnet.Bottleneck, [3, 4, 23, 3]),
}


class _ScaledResNet(resnet.ResNet):
    """torchvision's ResNet with stage widths ``width·(1, 2, 4, 8)`` instead of ``64·(1, 2, 4, 8)``.

    Built from torchvision's own blocks and ``_make_layer``; ``width=64`` is the standard net.
    """

    def __init__(self, block, layers: list[int], width: int) -> None:
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)


class ChannelsLastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that on the CPU pools in channels-last memory order and returns a contiguous tensor.

    The same values (a max is exact), but PyTorch's contiguous-layout CPU max-pool is ~10x slower than its
    channels-last one: 10.7 ms against 1.1 ms (plus two layout copies) on a ``(2, 32, 170, 136)`` map, one thread,
    which was 16 % of ``make_cam``. Input ``(B, C, H, W)`` → ``(B, C, H', W')``.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.device.type != "cpu" or features.dim() != 4:
            return super().forward(features)
        pooled = super().forward(features.contiguous(memory_format=torch.channels_last))
        return pooled.contiguous()


def _dilate(layer: nn.Sequential, dilation: int) -> None:
    """Turn the stride-2 entry of ``layer`` into stride 1 and dilate its 3×3 convolutions."""
    first = layer[0]
    for module in first.modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)
    for block in layer:
        for module in block.modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                module.dilation = (dilation, dilation)
                module.padding = (dilation, dilation)


class ResNetTrunk(nn.Module):
    """A torchvision ResNet without pooling/fc, returning the four stage outputs.

    ``width`` scales the stage widths (64 = torchvision's nets; smaller for the CPU demo).
    ``output_stride`` 32, 16 or 8: the last one or two stages keep their
    resolution and use dilated 3×3 convolutions (for BasicBlock nets too).

    Input ``(B, 3, H, W)`` ImageNet-normalised; output list of
    ``(B, C_k, H/s_k, W/s_k)`` for strides ``4, 8, 16|8, 32|16|8``.
    """

    def __init__(self, arch: str = "resnet50", output_stride: int = 16, pretrained: str = "", width: int = 64) -> None:
        super().__init__()
        if arch not in _ARCHS:
            raise WsssError(f"backbone.arch: unknown architecture '{arch}' (choose from {', '.join(_ARCHS)})")
        if output_stride not in (8, 16, 32):
            raise WsssError(f"backbone.output_stride: must be 8, 16 or 32, got {output_stride}")
        block, layers = _ARCHS[arch]
        if width != 64 and pretrained:
            raise WsssError(f"backbone.width: ImageNet weights need the standard width 64, got {width}")
        net = resnet.ResNet(block, layers) if width == 64 else _ScaledResNet(block, layers, width)
        if pretrained:
            load_imagenet_weights(net, pretrained)
        if output_stride <= 16:
            _dilate(net.layer4, 2 if output_stride == 16 else 4)
        if output_stride == 8:
            _dilate(net.layer3, 2)
        pool = net.maxpool
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu,
                                  ChannelsLastMaxPool2d(pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                                                        ceil_mode=pool.ceil_mode))
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = block.expansion
        self.channels = [width * expansion, 2 * width * expansion, 4 * width * expansion, 8 * width * expansion]
        self.output_stride = output_stride

    def forward(self, image: torch.Tensor,
                between_stages: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
        """The four stage outputs of ``image``.

        ``between_stages(k, features)``, when given, replaces the output of stage ``k`` (0 = layer1 … 3 = layer4)
        by what it returns, both in the returned list and as the input of the next stage (MSA's dynamic
        reassembly acts after layer3 this way, :mod:`wsss.cam.msa`). Without it the trunk is unchanged.
        """
        features, stage_input = [], self.stem(image)
        for index, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            stage_input = layer(stage_input)
            if between_stages is not None:
                stage_input = between_stages(index, stage_input)
            features.append(stage_input)
        return features


def load_imagenet_weights(net: nn.Module, path: str) -> None:
    """Load a torchvision ImageNet state dict from a local file (never downloads)."""
    file = Path(path)
    if not file.is_file():
        raise WsssError(f"backbone.pretrained: weights file not found: {path}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted or foreign file
        raise WsssError(f"{path}: cannot load weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise WsssError(f"{path}: weights do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
