"""The P2Seg network: a torchvision ResNet trunk, a Panoptic-DeepLab-style decoder and its heads, the affinity
decoder and the I2S re-weighting (SEEDS_ANATOMY §1.13).

``P2SegNet(image (B, 3, H, W))`` → dict of

* ``semantic`` ``(B, K, H, W)`` logits (K = background + classes);
* ``centre`` ``(B, K-1, H, W)`` centre heatmaps (one channel per object class);
* ``offset`` ``(B, 2, H, W)`` ``(dy, dx)`` in input pixels;
* ``affinity`` ``(B, N, N)`` in (0, 1), ``sigmoid(Fᵀ F)`` of the affinity embeddings ``F`` pooled to the affinity
  grid (stride ``4·affinity_pool``, N = its cells, row-major; the seed: dense at decoder resolution over 4×4
  max-pooled labels);
* ``refined`` ``(B, K, H, W)`` probabilities: I2S, the softmax of the semantic logits pooled to the grid, mixed by
  the row-normalised affinities (``P·Âᵀ``, once, as the seed) and upsampled.

The decoder (Panoptic-DeepLab): ASPP on the last trunk stage, fused with the stride-8 and stride-4 stages by
1×1 projections and 3×3 convolutions (Panoptic-DeepLab: 5×5 depthwise-separable, see :func:`_conv`), one decoder
shared by the heads (Panoptic-DeepLab has a second one for the instance heads; one keeps the CPU demo small), each
head a 3×3 conv + 1×1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from wsss.backbone import ResNetTrunk


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """3×3 conv + BN + ReLU. Panoptic-DeepLab's are 5×5 depthwise-separable; on the CPU the depthwise backward
    under two OpenMP threads on a busy 2-core machine took 52 s per demo step against 2.6 s with one thread, so
    plain 3×3 convolutions here."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU())


def _project(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU())


class _Head(nn.Sequential):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__(_conv(in_ch, mid_ch), nn.Conv2d(mid_ch, out_ch, 1))


class P2SegNet(nn.Module):
    """See the module docstring. ``arch``/``width``/``output_stride``/``pretrained``: the :class:`ResNetTrunk`;
    ``decoder_channels``: ASPP and decoder width; ``head_channels``: each head's; ``embedding_channels``: the
    affinity embedding's; ``affinity_pool``: decoder cells per affinity cell side."""

    def __init__(self, num_classes: int = 21, arch: str = "resnet50", width: int = 64, output_stride: int = 16,
                 pretrained: str = "", aspp_rates: tuple[int, int, int] = (6, 12, 18), decoder_channels: int = 256,
                 head_channels: int = 128, embedding_channels: int = 64, affinity_pool: int = 4) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(arch, output_stride, pretrained, width)
        c1, c2, _, c4 = self.trunk.channels
        d = decoder_channels
        self.aspp = ASPP(c4, list(aspp_rates), d)
        self.project8, self.project4 = _project(c2, d // 4), _project(c1, d // 8)
        self.fuse8 = _conv(d + d // 4, d)
        self.fuse4 = _conv(d + d // 8, d)
        self.semantic = _Head(d, head_channels, num_classes)
        self.centre = _Head(d, head_channels, num_classes - 1)
        self.offset = _Head(d, head_channels, 2)
        self.embedding = _Head(d, head_channels, embedding_channels)
        self.affinity_pool = affinity_pool

    def decoder(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → decoder features ``(B, D, H/4, W/4)`` (rounded up)."""
        feat4, feat8, _, last = self.trunk(image)
        x = self.aspp(last)
        x = F.interpolate(x, size=feat8.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse8(torch.cat([x, self.project8(feat8)], dim=1))
        x = F.interpolate(x, size=feat4.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse4(torch.cat([x, self.project4(feat4)], dim=1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        size = image.shape[-2:]
        features = self.decoder(image)
        scale = size[0] / features.shape[-2], size[1] / features.shape[-1]

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

        semantic = self.semantic(features)
        offset = self.offset(features)
        offset = up(offset * offset.new_tensor([scale[0], scale[1]])[None, :, None, None])
        embedding = F.avg_pool2d(self.embedding(features), self.affinity_pool, ceil_mode=True)  # (B, E, h, w)
        batch, _, gh, gw = embedding.shape
        flat = embedding.flatten(2)  # (B, E, N)
        affinity = torch.sigmoid(flat.transpose(1, 2) @ flat)  # (B, N, N)
        probs = F.adaptive_avg_pool2d(semantic.softmax(dim=1), (gh, gw)).flatten(2)  # (B, K, N)
        weights = affinity / affinity.sum(dim=2, keepdim=True)
        refined = (probs @ weights.transpose(1, 2)).view(batch, -1, gh, gw)  # (B, K, h, w)
        return {"semantic": up(semantic), "centre": up(self.centre(features)), "offset": offset,
                "affinity": affinity, "refined": up(refined), "grid": torch.tensor([gh, gw])}
