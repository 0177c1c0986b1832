"""Multi-label classifier whose 1×1 classification conv doubles as the CAM head (IRN-style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsss.backbone import ResNetTrunk
from wsss.params import MSASettings


class CAMClassifier(nn.Module):
    """ResNet trunk + bias-free 1×1 conv to ``num_classes`` (the 20 foreground classes).

    ``forward(image (B,3,H,W)) -> logits (B, num_classes)`` via global average pooling;
    ``cam(image) -> (B, num_classes, H/s, W/s)`` = ReLU of the 1×1 conv on the last stage,
    s = ``output_stride``.
    """

    def __init__(self, arch: str, output_stride: int, num_classes: int = 20, pretrained: str = "", width: int = 64) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(arch, output_stride, pretrained, width)
        self.classifier = nn.Conv2d(self.trunk.channels[-1], num_classes, kernel_size=1, bias=False)
        self.num_classes = num_classes

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.trunk(image)[-1]
        pooled = F.adaptive_avg_pool2d(features, 1)
        return self.classifier(pooled).flatten(1)

    def cam(self, image: torch.Tensor) -> torch.Tensor:
        features = self.trunk(image)[-1]
        return F.relu(self.classifier(features))

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(trunk parameters, newly initialised head parameters) for per-group learning rates."""
        return list(self.trunk.parameters()), list(self.classifier.parameters())


def build_classifier(arch: str, output_stride: int, pretrained: str, width: int, msa: MSASettings) -> CAMClassifier:
    """A :class:`CAMClassifier`, or MSA's :class:`wsss.cam.msa.MSAClassifier` when any of its parts is on."""
    if not msa.enabled:
        return CAMClassifier(arch, output_stride, 20, pretrained, width)
    from wsss.cam.msa import MSAClassifier

    return MSAClassifier(arch, output_stride, 20, pretrained, width, settings=msa)
