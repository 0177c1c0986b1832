"""Pair products over the square window of a node grid: A2GNN's attention without an ``N×N`` matrix.

A grid of ``h × w`` nodes holds one row of ``C`` values per node, tensors ``(B, h, w, C)``. Node ``(y, x)`` has
the ``D = (2r+1)²`` neighbours ``(y+dy, x+dx)``, ``dy, dx ∈ [−r, r]``, row-major (:data:`D // 2` is the node
itself, as ``wsss.propagation.a2gnn.window_offsets``); per-pair tensors are ``(B, h, w, D)``. Neighbours outside
the grid do not exist: their products are 0 and their weights are ignored.

* :func:`window_dot` ``out[y,x,d] = ⟨a[y,x], b[y+dy,x+dx]⟩``, :func:`window_self_dot` the same with ``b = a``;
* :func:`window_aggregate` ``out[y,x] = Σ_d w[y,x,d] · v[y+dy,x+dx]``;
* :func:`window_transpose` ``out[y,x,d] = w[y+dy,x+dx,D−1−d]``, the pair as its other node sees it.

On a window of ``D`` pairs these do ``N·D·C`` multiply-adds against ``N²·C`` for the dense product (49 of about
400 nodes on minivoc's grids). All but the transpose are differentiable (first order, compiled backward: each
gradient is one of the three ops). CPU only: on a GPU the dense or tiled GEMMs of A2GNN's window graph are the
faster form.
"""

from __future__ import annotations

import torch

from kernels._checks import check_int, check_same, check_tensor, compiled_ops

__all__ = ["window_aggregate", "window_dot", "window_self_dot", "window_transpose"]


def _ops(op: str, *tensors: torch.Tensor):
    ops = compiled_ops(op, *tensors)
    if any(t.device.type != "cpu" for t in tensors):
        raise ValueError(f"{op}: CPU tensors only (on a GPU use the dense or tiled window graph)")
    return ops


def _check_pairs(op: str, name: str, pairs: torch.Tensor, rows: torch.Tensor, radius: int) -> None:
    check_tensor(op, name, pairs, 4)
    side = 2 * radius + 1
    if pairs.shape[:3] != rows.shape[:3] or pairs.shape[3] != side * side:
        raise ValueError(f"{op}: {name} must be (B, h, w, {side * side}) for rows {tuple(rows.shape)}, "
                         f"got {tuple(pairs.shape)}")


class _Dot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, radius):
        ctx.save_for_backward(a, b)
        ctx.radius = radius
        return torch.ops.wsss.window_dot(a, b, radius)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ops, radius, grad = torch.ops.wsss, ctx.radius, grad.contiguous()
        grad_a = ops.window_aggregate(grad, b, radius) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:  # b[j] meets a[i] in the pair (i, d) with j = i + offset_d
            grad_b = ops.window_aggregate(ops.window_transpose(grad, radius), a, radius)
        return grad_a, grad_b, None


class _SelfDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, radius):
        ctx.save_for_backward(a)
        ctx.radius = radius
        return torch.ops.wsss.window_dot(a, a, radius)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        ops, radius, grad = torch.ops.wsss, ctx.radius, grad.contiguous()
        # a meets itself on both sides of every pair: one aggregate of the symmetrised gradient
        return ops.window_aggregate(grad + ops.window_transpose(grad, radius), a, radius), None


class _Aggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, values, radius):
        ctx.save_for_backward(weights, values)
        ctx.radius = radius
        return torch.ops.wsss.window_aggregate(weights, values, radius)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        weights, values = ctx.saved_tensors
        ops, radius, grad = torch.ops.wsss, ctx.radius, grad.contiguous()
        grad_weights = ops.window_dot(grad, values, radius) if ctx.needs_input_grad[0] else None
        grad_values = None
        if ctx.needs_input_grad[1]:
            grad_values = ops.window_aggregate(ops.window_transpose(weights, radius), grad, radius)
        return grad_weights, grad_values, None


def _rows(op: str, name: str, rows: torch.Tensor) -> torch.Tensor:
    check_tensor(op, name, rows, 4)
    return rows.contiguous()


def window_dot(a: torch.Tensor, b: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, h, w, D)`` products ``⟨a[y,x], b[y+dy,x+dx]⟩`` of ``a, b (B, h, w, C)`` (0 outside the grid)."""
    op = "window_dot"
    radius = check_int(op, "radius", radius, 0)
    a, b = _rows(op, "a", a), _rows(op, "b", b)
    check_same(op, "a", a, "b", b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: a {tuple(a.shape)} and b {tuple(b.shape)} differ in shape")
    _ops(op, a, b)
    return _Dot.apply(a, b, radius)


def window_self_dot(a: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`window_dot` of ``a`` with itself, whose gradient is one aggregate instead of two."""
    op = "window_self_dot"
    radius = check_int(op, "radius", radius, 0)
    a = _rows(op, "a", a)
    _ops(op, a)
    return _SelfDot.apply(a, radius)


def window_aggregate(weights: torch.Tensor, values: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, h, w, C)`` sums ``Σ_d weights[y,x,d] · values[y+dy,x+dx]`` for ``weights (B, h, w, D)``."""
    op = "window_aggregate"
    radius = check_int(op, "radius", radius, 0)
    values = _rows(op, "values", values)
    _check_pairs(op, "weights", weights, values, radius)
    check_same(op, "values", values, "weights", weights)
    _ops(op, weights, values)
    return _Aggregate.apply(weights.contiguous(), values, radius)


def window_transpose(weights: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, h, w, D)``: ``weights[y+dy, x+dx, D−1−d]`` (0 where that node is outside the grid); not differentiable."""
    op = "window_transpose"
    radius = check_int(op, "radius", radius, 0)
    check_tensor(op, "weights", weights, 4)
    _check_pairs(op, "weights", weights, weights, radius)
    _ops(op, weights)
    return torch.ops.wsss.window_transpose(weights.contiguous(), radius)
