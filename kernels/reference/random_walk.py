"""References for :func:`kernels.random_walk`: a sparse iterative one and PSA/IRN's dense ``T^t``.

Both compute in ``dtype`` (float64 by default; the benchmark runs the dense one in float32 as IRN
does) and return that dtype. The dense form builds the ``N × N`` transition matrix and squares it,
so keep it to small graphs (N ≈ 12k already takes ~0.5 GB per matrix and minutes on a CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.random_walk import direction_offsets


def shift(tensor: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[..., y, x] = tensor[..., y + dy, x + dx]``, 0 where that lies outside."""
    height, width = tensor.shape[-2:]
    padded = F.pad(tensor, (abs(dx), abs(dx), abs(dy), abs(dy)))
    return padded[..., abs(dy) + dy:abs(dy) + dy + height, abs(dx) + dx:abs(dx) + dx + width]


def inside(height: int, width: int, dy: int, dx: int, device=None) -> torch.Tensor:
    """``(H, W)`` bool: ``(y + dy, x + dx)`` lies inside the image."""
    ys = torch.arange(height, device=device)[:, None] + dy
    xs = torch.arange(width, device=device)[None, :] + dx
    return (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)


def edge_weights(affinity: torch.Tensor, radius: int, beta: float, dtype=torch.float64) -> torch.Tensor:
    """``(B, D, H, W)``: ``affinity ** beta`` where the pair is inside the image, else 0."""
    height, width = affinity.shape[-2:]
    planes = [
        torch.where(inside(height, width, dy, dx, affinity.device), affinity[:, d].to(dtype) ** beta, 0.0)
        for d, (dy, dx) in enumerate(direction_offsets(radius))
    ]
    return torch.stack(planes, dim=1)


def random_walk_sparse(values: torch.Tensor, affinity: torch.Tensor, radius: int, beta: float, steps: int,
                       dtype=torch.float64) -> torch.Tensor:
    """``steps`` explicit steps ``v'_j = (v_j + Σ_d e_d(j) v_{j+o_d} + e_d(j-o_d) v_{j-o_d}) / deg_j``."""
    offsets = direction_offsets(radius)
    edges = edge_weights(affinity, radius, beta, dtype)
    degree = 1.0 + edges.sum(dim=1)
    for d, (dy, dx) in enumerate(offsets):
        degree = degree + shift(edges[:, d], -dy, -dx)
    v = values.to(dtype)
    for _ in range(steps):
        total = v.clone()
        for d, (dy, dx) in enumerate(offsets):
            e = edges[:, d:d + 1]
            total = total + e * shift(v, dy, dx) + shift(e * v, -dy, -dx)
        v = total / degree[:, None]
    return v


def transition_matrix(affinity: torch.Tensor, radius: int, beta: float, dtype=torch.float64,
                      frozen: torch.Tensor | None = None) -> torch.Tensor:
    """PSA/IRN's dense ``T = A^β / colsum(A^β)`` with ``A = pairs + pairsᵀ + I``: ``(B, N, N)``.

    ``frozen`` (``(B, H, W)`` bool, RETAB's second walk): the columns of frozen pixels are cut to the self
    loop before normalising (``A_ij = 0`` for ``i ≠ j``, ``j`` frozen), so ``v · T`` leaves them unchanged."""
    batch, _, height, width = affinity.shape
    n = height * width
    index = torch.arange(n, device=affinity.device).view(height, width)
    dense = torch.eye(n, dtype=dtype, device=affinity.device).repeat(batch, 1, 1)
    for d, (dy, dx) in enumerate(direction_offsets(radius)):
        valid = inside(height, width, dy, dx, affinity.device)
        source = index[valid]
        target = shift(index, dy, dx)[valid]
        weight = affinity[:, d][:, valid].to(dtype)
        dense[:, source, target] = weight
        dense[:, target, source] = weight
    dense = dense ** beta
    if frozen is not None:
        cut = frozen.reshape(batch, 1, n).to(affinity.device)
        dense = torch.where(cut, torch.eye(n, dtype=dtype, device=affinity.device).expand(batch, n, n), dense)
    return dense / dense.sum(dim=1, keepdim=True)


def random_walk_dense(values: torch.Tensor, affinity: torch.Tensor, radius: int, beta: float, steps: int,
                      dtype=torch.float64, frozen: torch.Tensor | None = None) -> torch.Tensor:
    """IRN's form: dense ``T``, ``T^steps`` by repeated squaring (``log2(steps)`` squarings when
    ``steps`` is a power of two, as PSA/IRN's ``logt``), then ``v · T^steps``."""
    batch, channels, height, width = values.shape
    trans = transition_matrix(affinity, radius, beta, dtype, frozen)
    power = None
    while True:
        if steps & 1:
            power = trans if power is None else power @ trans
        steps >>= 1
        if not steps:
            break
        trans = trans @ trans
    v = values.to(dtype).reshape(batch, channels, height * width)
    return (v @ power).reshape(batch, channels, height, width)
