"""References for :mod:`kernels.window`: the window's pair products as shifted views of the zero-padded grid.

One shifted copy of the rows per offset ``(dy, dx)`` (row-major, as the ops), so every product is an elementwise
product and a sum; float64, differentiable (autograd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_offsets(radius: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _neighbours(rows: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, h, w, C)`` → ``(B, h, w, D, C)``: the row of neighbour ``d`` of every node (zeros outside the grid)."""
    height, width = rows.shape[1:3]
    padded = F.pad(rows, (0, 0, radius, radius, radius, radius))
    return torch.stack([padded[:, radius + dy : radius + dy + height, radius + dx : radius + dx + width]
                        for dy, dx in window_offsets(radius)], dim=3)


def _inside(rows: torch.Tensor, radius: int) -> torch.Tensor:
    """``(1, h, w, D)`` 1 where neighbour ``d`` lies inside the grid."""
    ones = rows.new_ones(1, *rows.shape[1:3], 1)
    return _neighbours(ones, radius)[..., 0]


def window_dot_shifted(a: torch.Tensor, b: torch.Tensor, radius: int) -> torch.Tensor:
    a, b = a.double(), b.double()
    return (a[:, :, :, None, :] * _neighbours(b, radius)).sum(-1)


def window_aggregate_shifted(weights: torch.Tensor, values: torch.Tensor, radius: int) -> torch.Tensor:
    weights, values = weights.double(), values.double()
    return (weights[..., None] * _inside(values, radius)[..., None] * _neighbours(values, radius)).sum(3)


def window_transpose_shifted(weights: torch.Tensor, radius: int) -> torch.Tensor:
    flipped = weights.double().flip(-1)  # pair D-1-d of the neighbour at offset d
    neighbours = _neighbours(flipped, radius)  # (B, h, w, D, D): all pairs of neighbour d
    index = torch.arange(weights.shape[-1])
    return neighbours[:, :, :, index, index]
