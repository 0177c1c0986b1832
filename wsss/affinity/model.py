"""AffinityNet: a ResNet trunk with multi-level 1×1 heads giving an affinity feature map (PSA/IRN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsss.backbone import ResNetTrunk


class AffinityNet(nn.Module):
    """Image ``(B,3,H,W)`` → features ``(B, feature_dim, ceil(H/stride), ceil(W/stride))``.

    Every trunk stage goes through a 1×1 conv + GroupNorm + ReLU, is resized to
    the feature stride (4 or 8) and concatenated; a last 1×1 conv mixes them.
    Affinities are ``exp(−mean_c |f_i − f_j|)`` (PSA), computed by
    :func:`kernels.pair_affinity_from_features`.
    """

    def __init__(self, arch: str, output_stride: int, feature_dim: int = 64, stride: int = 4, head_dim: int = 32,
                 width: int = 64) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(arch, output_stride, width=width)
        self.stride = stride
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, head_dim, 1, bias=False), nn.GroupNorm(4, head_dim), nn.ReLU(inplace=True))
            for c in self.trunk.channels
        )
        self.mix = nn.Conv2d(head_dim * len(self.heads), feature_dim, 1, bias=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        size = (-(-height // self.stride), -(-width // self.stride))
        levels = [
            F.interpolate(head(level), size=size, mode="bilinear", align_corners=False)
            for head, level in zip(self.heads, self.trunk(image))
        ]
        return self.mix(torch.cat(levels, dim=1))

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(trunk parameters, head parameters)."""
        return list(self.trunk.parameters()), list(self.heads.parameters()) + list(self.mix.parameters())

    def load_trunk_from(self, state_dict: dict) -> None:
        """Initialise the trunk from a :class:`CAMClassifier` state dict (keys ``trunk.*``)."""
        trunk_state = {k.removeprefix("trunk."): v for k, v in state_dict.items() if k.startswith("trunk.")}
        self.trunk.load_state_dict(trunk_state)
