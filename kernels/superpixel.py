"""Superpixel pooling and upsampling on SpixelFCN's 3×3 grid association (as MSA uses them).

The image ``(H, W)`` is tiled into a grid of ``h × w`` cells of ``sh × sw`` pixels
(``H = h·sh``, ``W = w·sw``; other sizes raise ``ValueError``, as SpixelFCN needs sides divisible by
the cell). Pixel ``p`` in cell ``(cy, cx)`` is softly associated (``assoc``, e.g. a softmax) with the
9 cells ``(cy+dy, cx+dx)``, ``dy, dx ∈ {-1, 0, 1}``; channel ``t`` of ``assoc`` is the neighbour
:data:`ASSOC_OFFSETS` ``[t]``, row-major over ``(dy, dx)``: 0 top-left, 1 top, 2 top-right, 3 left,
4 centre, 5 right, 6 bottom-left, 7 bottom, 8 bottom-right (SpixelFCN's order).

Border: neighbour cells outside the grid do not exist. Their association mass is dropped, not
renormalised: in pooling it feeds no cell, in upsampling the term contributes 0 (exactly what
SpixelFCN/MSA's zero-padded shifted pooling does).

Both ops are differentiable with respect to both inputs (compiled backward, first order).
"""

from __future__ import annotations

import torch

from kernels._checks import check_int, check_same, check_tensor, compiled_ops

__all__ = ["ASSOC_OFFSETS", "POOL_EPS", "superpixel_pool", "superpixel_upsample"]

#: ``(dy, dx)`` of the cell that ``assoc`` channel ``t`` refers to, relative to the pixel's own cell.
ASSOC_OFFSETS: tuple[tuple[int, int], ...] = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))

#: Per-pixel epsilon of the pooled mean (MSA: ``avgpool(Q·f) / (avgpool(Q) + 1e-8)``).
POOL_EPS = 1e-8


def _cell(op: str, cell: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(cell, (tuple, list)):
        if len(cell) != 2:
            raise ValueError(f"{op}: cell must be an int or (sh, sw), got {cell!r}")
        return check_int(op, "cell height", cell[0], 1), check_int(op, "cell width", cell[1], 1)
    size = check_int(op, "cell", cell, 1)
    return size, size


def _check_assoc(op: str, assoc: torch.Tensor, batch: int, cell: tuple[int, int]) -> None:
    check_tensor(op, "assoc", assoc, 4)
    if assoc.shape[0] != batch or assoc.shape[1] != 9:
        raise ValueError(f"{op}: assoc must be (B, 9, H, W) with B = {batch}, got {tuple(assoc.shape)}")
    height, width = assoc.shape[2:]
    if height % cell[0] or width % cell[1]:
        raise ValueError(f"{op}: image size {height}x{width} is not a multiple of the cell {cell[0]}x{cell[1]}")


class _Pool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, assoc, sh, sw):
        ops = compiled_ops("superpixel_pool", features, assoc)
        numer, denom = ops.superpixel_pool_sums(features, assoc, sh, sw)
        denom = denom + POOL_EPS * sh * sw
        pooled = numer / denom
        ctx.save_for_backward(features, assoc, pooled, denom)
        ctx.cell = (sh, sw)
        return pooled

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        features, assoc, pooled, denom = ctx.saved_tensors
        sh, sw = ctx.cell
        ops = torch.ops.wsss
        grad = grad.contiguous()
        scaled = grad / denom  # dL/dnumer
        grad_features = grad_assoc = None
        if ctx.needs_input_grad[0]:
            grad_features = ops.superpixel_upsample(scaled, assoc, sh, sw)
        if ctx.needs_input_grad[1]:
            # dL/dQ[p,k] = <f_p, g_k>/D_k - <s_k, g_k>/D_k
            per_cell = (scaled * pooled).sum(dim=1, keepdim=True)
            ones = features.new_ones(features.shape[0], 1, *features.shape[2:])
            grad_assoc = ops.superpixel_assoc_dot(features, scaled, sh, sw) - ops.superpixel_assoc_dot(ones, per_cell, sh, sw)
        return grad_features, grad_assoc, None, None


class _Upsample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sp_features, assoc, sh, sw):
        ops = compiled_ops("superpixel_upsample", sp_features, assoc)
        ctx.save_for_backward(sp_features, assoc)
        ctx.cell = (sh, sw)
        return ops.superpixel_upsample(sp_features, assoc, sh, sw)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        sp_features, assoc = ctx.saved_tensors
        sh, sw = ctx.cell
        ops = torch.ops.wsss
        grad = grad.contiguous()
        grad_sp = grad_assoc = None
        if ctx.needs_input_grad[0]:
            grad_sp = ops.superpixel_pool_sums(grad, assoc, sh, sw)[0]
        if ctx.needs_input_grad[1]:
            grad_assoc = ops.superpixel_assoc_dot(grad, sp_features, sh, sw)
        return grad_sp, grad_assoc, None, None


def superpixel_pool(features: torch.Tensor, assoc: torch.Tensor, cell: int | tuple[int, int]) -> torch.Tensor:
    """Superpixel features ``s_k = Σ_{p: k∈N9(p)} Q[p,k] f_p / (Σ Q[p,k] + POOL_EPS·sh·sw)``.

    (The epsilon is MSA's ``1e-8`` on the cell-averaged sums.)

    Args:
        features: ``(B, C, H, W)`` float32/float64, CPU or CUDA.
        assoc: ``(B, 9, H, W)`` association ``Q`` (channel order: module docstring), same dtype/device.
        cell: ``(sh, sw)`` or one int; ``H``, ``W`` must be multiples.

    Returns ``(B, C, H/sh, W/sw)``; differentiable w.r.t. ``features`` and ``assoc``.
    """
    op = "superpixel_pool"
    check_tensor(op, "features", features, 4)
    sh, sw = _cell(op, cell)
    _check_assoc(op, assoc, features.shape[0], (sh, sw))
    check_same(op, "features", features, "assoc", assoc)
    if features.shape[2:] != assoc.shape[2:]:
        raise ValueError(f"{op}: features {tuple(features.shape)} and assoc {tuple(assoc.shape)} differ in size")
    return _Pool.apply(features.contiguous(), assoc.contiguous(), sh, sw)


def superpixel_upsample(sp_features: torch.Tensor, assoc: torch.Tensor, cell: int | tuple[int, int]) -> torch.Tensor:
    """Pixel features ``f̂_p = Σ_{k∈N9(p)} Q[p,k] s_k`` (MSA's superpixel upsampling of CAMs).

    Args:
        sp_features: ``(B, C, h, w)`` float32/float64 superpixel (cell) features, CPU or CUDA.
        assoc: ``(B, 9, h·sh, w·sw)`` association, same dtype/device.
        cell: ``(sh, sw)`` or one int.

    Returns ``(B, C, h·sh, w·sw)``; differentiable w.r.t. ``sp_features`` and ``assoc``.
    """
    op = "superpixel_upsample"
    check_tensor(op, "sp_features", sp_features, 4)
    sh, sw = _cell(op, cell)
    _check_assoc(op, assoc, sp_features.shape[0], (sh, sw))
    check_same(op, "sp_features", sp_features, "assoc", assoc)
    grid = (assoc.shape[2] // sh, assoc.shape[3] // sw)
    if tuple(sp_features.shape[2:]) != grid:
        raise ValueError(f"{op}: sp_features must be (B, C, {grid[0]}, {grid[1]}) for assoc {tuple(assoc.shape)} and "
                         f"cell {sh}x{sw}, got {tuple(sp_features.shape)}")
    return _Upsample.apply(sp_features.contiguous(), assoc.contiguous(), sh, sw)
