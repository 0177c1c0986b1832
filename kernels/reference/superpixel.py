"""References for :mod:`kernels.superpixel`: MSA/SpixelFCN's shifted-pooling formulation.

Pooling: for each of the 9 association channels, ``avg_pool2d`` of ``Q_t · [f, 1]`` over the cells,
shifted by the channel's cell offset and summed; the last plane is the pooled association, and the
result is ``Σ Q f / (Σ Q + eps)`` on these cell means. Upsampling: the zero-padded cell grid shifted
by each offset, nearest-upsampled to pixels, weighted by ``Q_t`` and summed. Differentiable (autograd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.superpixel import ASSOC_OFFSETS, POOL_EPS


def _shifted(cells: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[..., k] = cells[..., k + (dy, dx)]`` with zeros outside the grid."""
    h, w = cells.shape[-2:]
    padded = F.pad(cells, (1, 1, 1, 1))
    return padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def superpixel_pool_shifted(features: torch.Tensor, assoc: torch.Tensor, cell: tuple[int, int],
                            dtype=torch.float64) -> torch.Tensor:
    sh, sw = cell
    features, assoc = features.to(dtype), assoc.to(dtype)
    batch, channels, height, width = features.shape
    extended = torch.cat([features, features.new_ones(batch, 1, height, width)], dim=1)
    total = 0
    for t, (dy, dx) in enumerate(ASSOC_OFFSETS):
        means = F.avg_pool2d(extended * assoc[:, t:t + 1], (sh, sw))  # cell c's share for cell c + (dy, dx)
        total = total + _shifted(means, -dy, -dx)
    return total[:, :channels] / (total[:, channels:] + POOL_EPS)


def superpixel_upsample_shifted(sp_features: torch.Tensor, assoc: torch.Tensor, cell: tuple[int, int],
                                dtype=torch.float64) -> torch.Tensor:
    sp_features, assoc = sp_features.to(dtype), assoc.to(dtype)
    size = assoc.shape[2:]
    total = 0
    for t, (dy, dx) in enumerate(ASSOC_OFFSETS):
        total = total + F.interpolate(_shifted(sp_features, dy, dx), size=size, mode="nearest") * assoc[:, t:t + 1]
    return total
