"""PSA/IRN pair neighbourhood, AffinityNet pair affinities and the sparse random walk.

The neighbourhood of :func:`direction_offsets` is the single definition used everywhere pairs are
formed (AffinityNet pair labels and affinities, random walk): the pair ``(i, i + o_d)`` of pixel
``i = (y, x)`` and direction ``o_d = (dy, dx)`` is stored at ``i`` in plane ``d`` of a
``(B, D, H, W)`` tensor.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from kernels._checks import check_finite, check_int, check_positive_float, check_same, check_tensor, compiled_ops

__all__ = ["direction_offsets", "pair_affinity_from_features", "random_walk"]


@functools.cache
def _offsets(radius: int) -> tuple[tuple[int, int], ...]:
    offsets = [(0, dx) for dx in range(1, radius)]
    for dy in range(1, radius):
        for dx in range(-radius + 1, radius):
            if dx * dx + dy * dy < radius * radius:
                offsets.append((dy, dx))
    return tuple(offsets)


def direction_offsets(radius: int) -> list[tuple[int, int]]:
    """PSA's half-disc of neighbour directions ``(dy, dx)`` at ``radius`` (34 at radius 5).

    First ``(0, 1) … (0, radius-1)``, then for ``dy = 1 … radius-1`` and ``dx = -radius+1 … radius-1``
    every ``(dy, dx)`` with ``dx² + dy² < radius²``. No direction is the negative of another, so
    every unordered pair of pixels closer than ``radius`` appears exactly once. ``radius >= 2``.
    """
    radius = check_int("direction_offsets", "radius", radius, 2)
    return list(_offsets(radius))


def _flat_offsets(radius: int) -> list[int]:
    return [value for offset in _offsets(radius) for value in offset]


def pair_affinity_from_features(features: torch.Tensor, radius: int) -> torch.Tensor:
    """PSA's pair affinities ``a_id = exp(-mean_c |f[c, i] - f[c, i + o_d]|)``.

    ``features``: ``(B, F, H, W)`` float tensor (any floating dtype, any device). Returns
    ``(B, D, H, W)`` of the same dtype/device, ``D = len(direction_offsets(radius))``; entry
    ``[b, d, y, x]`` is the affinity of ``(y, x)`` with ``(y + dy, x + dx)`` and is 0 where that
    neighbour lies outside the image. Differentiable (AffinityNet training). float32/float64 on the CPU
    (and on CUDA with the cuda build) go through the compiled op ``wsss::pair_affinity`` and its backward
    (one pass over the pairs each way, no per-direction temporaries: forward + backward of the demo's batch,
    8x32x40x40, 7.3x faster than the plain form on 2 CPU threads, ``python -m kernels.bench --only
    pair_affinity``); other dtypes and devices through the plain PyTorch form
    :func:`_pair_affinity_torch`, the reference the tests hold it to.
    """
    op = "pair_affinity_from_features"
    check_tensor(op, "features", features, 4, (torch.float16, torch.bfloat16, torch.float32, torch.float64))
    radius = check_int(op, "radius", radius, 2)
    if features.shape[1] < 1:
        raise ValueError(f"{op}: features need at least one channel, got shape {tuple(features.shape)}")
    if _compiled_pair_affinity_serves(features):
        return _PairAffinity.apply(features, radius)
    return _pair_affinity_torch(features, radius)


def _compiled_pair_affinity_serves(features: torch.Tensor) -> bool:
    if features.dtype not in (torch.float32, torch.float64):
        return False
    if features.device.type == "cpu":
        return True
    from kernels._loader import load_library

    return features.device.type == "cuda" and load_library() == "cuda"


class _PairAffinity(torch.autograd.Function):
    """``wsss::pair_affinity`` with ``wsss::pair_affinity_backward`` as its gradient (pair_affinity.cpp)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, radius: int) -> torch.Tensor:
        ops = compiled_ops("pair_affinity_from_features", features)
        offsets = _flat_offsets(radius)
        affinity = ops.pair_affinity(features.detach(), offsets)
        ctx.save_for_backward(features, affinity)
        ctx.offsets = offsets
        return affinity

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        features, affinity = ctx.saved_tensors
        grad_features = torch.ops.wsss.pair_affinity_backward(grad.contiguous(), features.detach(), affinity, ctx.offsets)
        return grad_features, None


def _pair_affinity_torch(features: torch.Tensor, radius: int) -> torch.Tensor:
    """The plain PyTorch form of :func:`pair_affinity_from_features` (any dtype and device; autograd does the rest)."""
    offsets = _offsets(radius)
    height, width = features.shape[-2:]
    planes = []
    for dy, dx in offsets:
        rows, cols = max(0, height - dy), max(0, width - abs(dx))
        left = min(max(0, -dx), width)  # first source column whose neighbour is inside
        source = features[:, :, :rows, left:left + cols]
        target = features[:, :, dy:dy + rows, left + dx:left + dx + cols] if cols else source
        affinity = torch.exp(-(source - target).abs().mean(dim=1))
        # (computed even when empty, so that the zeros stay attached to the autograd graph)
        planes.append(F.pad(affinity, (left, width - left - cols, 0, height - rows)))
    if not planes:
        return features.new_zeros(features.shape[0], 0, height, width)
    return torch.stack(planes, dim=1)


def random_walk(values: torch.Tensor, affinity: torch.Tensor, radius: int, beta: float, steps: int,
                frozen: torch.Tensor | None = None) -> torch.Tensor:
    """Random walk of ``values`` on the radius-``radius`` pixel graph (PSA / IRN semantics).

    Graph: pixel ``i`` is linked to ``i + o_d`` for every direction of :func:`direction_offsets`,
    symmetric, with weight ``affinity[b, d, i] ** beta``; pairs leaving the image are dropped
    (whatever their stored value); every pixel has a self loop of weight 1. So ``A = pairs + pairsᵀ + I``
    and ``T = A**beta`` (element-wise) normalised per column: ``T_ij = A_ij^β / Σ_k A_kj^β``. The
    result is ``v · T^steps`` for the ``C × N`` row vectors ``v`` of each batch item, i.e. each step is
    ``v'_j = Σ_i v_i A_ij^β / Σ_k A_kj^β`` — as PSA/IRN's dense ``T`` squared ``log2(steps)`` times
    (they use ``steps = 256``), but in O(N·D) memory and O(steps·N·D·C) time, never an N×N matrix.

    Args:
        values: ``(B, C, H, W)`` float32 or float64, CPU or CUDA (e.g. CAMs with a background plane).
        affinity: ``(B, D, H, W)`` with ``D = len(direction_offsets(radius))``, same dtype and device,
            non-negative and finite (e.g. :func:`pair_affinity_from_features`, IRN ``1 - boundary``).
        radius: neighbourhood radius (PSA/IRN: 5).
        beta: exponent > 0 (PSA 8, IRN 10).
        steps: number of steps >= 1 (PSA/IRN: 2**logt = 256).
        frozen: optional ``(B, H, W)`` bool mask (RETAB's second walk): a frozen pixel keeps its value at
            every step (its column of ``T`` is the identity) but still sends it along its edges, so only the
            other pixels change, each still normalised over all its edges (the graph becomes directed).

    Returns ``(B, C, H, W)``, same dtype and device. Not differentiable (the result never requires
    grad). CPU runs multithreaded (``torch.set_num_threads``); CUDA needs the cuda build.
    """
    op = "random_walk"
    check_tensor(op, "values", values, 4)
    check_tensor(op, "affinity", affinity, 4)
    check_same(op, "values", values, "affinity", affinity)
    radius = check_int(op, "radius", radius, 2)
    beta = check_positive_float(op, "beta", beta)
    steps = check_int(op, "steps", steps, 1)
    expected = (values.shape[0], len(_offsets(radius)), *values.shape[2:])
    if tuple(affinity.shape) != expected:
        raise ValueError(f"{op}: affinity must be {expected} (B, D, H, W) for radius {radius} and values "
                         f"{tuple(values.shape)}, got {tuple(affinity.shape)}")
    if frozen is not None:
        check_tensor(op, "frozen", frozen, 3, (torch.bool,))
        if tuple(frozen.shape) != (values.shape[0], *values.shape[2:]) or frozen.device != values.device:
            raise ValueError(f"{op}: frozen must be (B, H, W) = {(values.shape[0], *values.shape[2:])} on "
                             f"{values.device}, got {tuple(frozen.shape)} on {frozen.device}")
    with torch.no_grad():
        if affinity.numel() and not bool(((affinity >= 0) & torch.isfinite(affinity)).all()):
            raise ValueError(f"{op}: affinity must be finite and >= 0")
        check_finite(op, "values", values)
        ops = compiled_ops(op, values, affinity)
        return ops.random_walk(values.detach(), affinity.detach(), _flat_offsets(radius), beta, steps, frozen)
