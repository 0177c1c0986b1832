"""Tree propagation ops: the grid minimum spanning tree, APro's minimax propagation, TreeFilter.

All three work on a spanning tree of the 4-connected pixel grid, node index ``y*W + x``:

* :func:`grid_mst` builds it from a guide image (APro / TreeFilter edge weights).
* :func:`minimax_propagation` is APro's global propagation: affinity ``exp(-W_ij/zeta^2)`` with
  ``W_ij`` the largest edge weight on the tree path (exact over all pixel pairs).
* :func:`tree_filter` is TreeFilter: affinity = product of the edge weights on the path,
  differentiable with respect to the features and the embedding.

Device rules: every tensor argument must be on the same device, CPU or CUDA (CUDA needs the CUDA
variant of the library, built by ``python -m kernels.build`` on a machine with a GPU). Floating
inputs are float32 or float64 (one dtype per call); internal sums are float64 and results come back
in the input dtype. Trees are int64 ``(B, H*W-1, 2)``; int32 trees (as APro writes them) are
accepted and widened. Bad shapes, dtypes or devices raise :class:`ValueError`; a tree that is not a
spanning tree of the ``H*W`` pixels raises :class:`ValueError` from the kernel.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from kernels._loader import load_library

_FLOATS = (torch.float32, torch.float64)


def _ops(*tensors: torch.Tensor):
    """``torch.ops.wsss`` after loading the library; refuses CUDA tensors without the CUDA variant."""
    variant = load_library()
    if variant != "cuda" and any(t.is_cuda for t in tensors):
        raise ValueError("kernels: CUDA tensors need the CUDA build of the kernels (run `python -m kernels.build` "
                         "on a machine with a GPU and a CUDA toolkit)")
    return torch.ops.wsss


def _check_image(op: str, name: str, tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 4:
        raise ValueError(f"{op}: {name} must be 4-D (B, C, H, W), got shape {tuple(tensor.shape)}")
    if tensor.dtype not in _FLOATS:
        raise ValueError(f"{op}: {name} must be float32 or float64, got {tensor.dtype}")
    if tensor.shape[2] < 1 or tensor.shape[3] < 1:
        raise ValueError(f"{op}: {name} must have H, W >= 1, got shape {tuple(tensor.shape)}")
    if tensor.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{op}: {name} must be on a CPU or CUDA device, got {tensor.device}")
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{op}: {name} holds NaN or inf values")
    return tensor


def _check_embed(op: str, values_name: str, values: torch.Tensor, embed: object) -> torch.Tensor:
    embed = _check_image(op, "embed", embed)
    if embed.device != values.device:
        raise ValueError(f"{op}: embed is on {embed.device} but {values_name} is on {values.device}")
    if embed.dtype != values.dtype:
        raise ValueError(f"{op}: embed dtype {embed.dtype} differs from {values_name} dtype {values.dtype}")
    if embed.shape[0] != values.shape[0] or embed.shape[2:] != values.shape[2:]:
        raise ValueError(f"{op}: embed shape {tuple(embed.shape)} and {values_name} shape {tuple(values.shape)} "
                         "differ in batch or spatial size")
    return embed


def _check_tree(op: str, tree: object, like: torch.Tensor) -> torch.Tensor:
    b, _, h, w = like.shape
    expected = (b, h * w - 1, 2)
    if not isinstance(tree, torch.Tensor):
        raise ValueError(f"{op}: tree must be a torch.Tensor, got {type(tree).__name__}")
    if tuple(tree.shape) != expected:
        raise ValueError(f"{op}: tree must have shape (B, H*W-1, 2) = {expected}, got {tuple(tree.shape)}")
    if tree.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{op}: tree must be int64 (or int32), got {tree.dtype}")
    if tree.device != like.device:
        raise ValueError(f"{op}: tree is on {tree.device} but the images are on {like.device}")
    return tree.to(torch.int64).contiguous()


def grid_mst(guide: torch.Tensor) -> torch.Tensor:
    """Minimum spanning tree of each image's 4-connected pixel grid.

    Args:
        guide: (B, C, H, W) float32/float64, CPU or CUDA. Edge weight between neighbours u, v:
            ``sum_c (guide_c[u] - guide_c[v])^2 + 1`` (APro / TreeFilter), computed in float64.

    Returns:
        (B, H*W-1, 2) int64 on guide's device: the tree edges ``(u, v)``, node index ``y*W + x``,
        ``u < v``; rows sorted by grid edge index (all vertical edges ``(y*W+x, (y+1)*W+x)`` row-major,
        then all horizontal ``(y*W+x, y*W+x+1)`` row-major). A 1x1 image gives (B, 0, 2).

    Ties are broken by that edge index (ordering edges by (weight, index) makes the tree unique), so
    the result is deterministic and the same on CPU (Kruskal) and CUDA (Borůvka).
    """
    guide = _check_image("grid_mst", "guide", guide)
    with torch.no_grad():
        return _ops(guide).grid_mst(guide.contiguous())


def minimax_propagation(values: torch.Tensor, tree: torch.Tensor, embed: torch.Tensor, zeta: float) -> torch.Tensor:
    """APro's global propagation of ``values`` over ``tree`` (exact over all pixel pairs).

    ``out_i = (p_i + sum_{j!=i} p_j exp(-W_ij/zeta^2)) / (1 + sum_{j!=i} exp(-W_ij/zeta^2))`` where
    ``W_ij`` is the largest tree edge weight on the path i -> j and an edge's weight is
    ``sum_e (embed_e[u] - embed_e[v])^2`` (no +1).

    Args:
        values: (B, C, H, W) float32/float64, any number of channels, each propagated independently.
        tree: (B, H*W-1, 2) int64/int32 spanning tree per image (e.g. :func:`grid_mst`).
        embed: (B, E, H, W), same dtype and device as values.
        zeta: > 0 (APro: 0.01 - 0.07 for ImageNet-normalised images or soft masks).

    Returns:
        (B, C, H, W) in values' dtype and device. Not differentiable (APro uses it for targets).

    The Kruskal merge order depends only on ``embed``, so it is built once per image and shared by
    the channels: O(N log N + N*C) per image. CPU: multithreaded; CUDA: see ``csrc/minimax.h``
    (the union-find merge runs on the host, the per-channel work on the GPU).
    """
    op = "minimax_propagation"
    values = _check_image(op, "values", values)
    embed = _check_embed(op, "values", values, embed)
    tree = _check_tree(op, tree, values)
    zeta = _check_zeta(op, zeta)
    with torch.no_grad():
        return _ops(values).minimax_propagation(values.contiguous(), tree, embed.contiguous(), zeta)


def minimax_propagation_apro_reference(values: torch.Tensor, tree: torch.Tensor, embed: torch.Tensor,
                                       zeta: float) -> torch.Tensor:
    """APro's own algorithm for :func:`minimax_propagation`, for benchmarks only (CPU).

    Written the way APro's ``gp_cuda`` runs it: single-threaded, one channel at a time, each channel
    recomputing the edge weights, sorting the tree edges and merging them with a union-find that
    carries lazy additive tags, then pushing the tags down. Same arguments and result (float64
    accumulation, so it agrees with :func:`minimax_propagation` to rounding).
    """
    op = "minimax_propagation_apro_reference"
    values = _check_image(op, "values", values)
    embed = _check_embed(op, "values", values, embed)
    tree = _check_tree(op, tree, values)
    zeta = _check_zeta(op, zeta)
    if values.device.type != "cpu":
        raise ValueError(f"{op}: CPU only (it is the single-threaded baseline), got {values.device}")
    with torch.no_grad():
        return _ops(values).minimax_propagation_apro_reference(values.contiguous(), tree, embed.contiguous(), zeta)


def _check_zeta(op: str, zeta: object) -> float:
    if isinstance(zeta, bool) or not isinstance(zeta, (int, float)) or not math.isfinite(zeta) or zeta <= 0:
        raise ValueError(f"{op}: zeta must be a finite number > 0, got {zeta!r}")
    return float(zeta)


class _TreeFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: torch.Tensor, embed: torch.Tensor, topology: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(features, embed, topology)
        return torch.ops.wsss.tree_filter_forward(features, embed, topology)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        features, embed, topology = ctx.saved_tensors
        grad_features, grad_embed = torch.ops.wsss.tree_filter_backward(grad.contiguous(), features, embed, topology)
        return (grad_features if ctx.needs_input_grad[0] else None,
                grad_embed if ctx.needs_input_grad[1] else None, None)


def tree_filter(features: torch.Tensor, embed: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """TreeFilter: filter ``features`` over ``tree`` with product-of-weights affinities.

    Edge weight ``w = exp(-sum_e (embed_e[u] - embed_e[v])^2)``; the affinity of pixels i, j is the
    product of the weights on their tree path; ``out = A(x) / A(1)`` with ``A_i(x) = sum_j S_ij x_j``
    (every pixel, itself included with ``S_ii = 1``).

    Args:
        features: (B, C, H, W) float32/float64.
        embed: (B, E, H, W), same dtype and device.
        tree: (B, H*W-1, 2) int64/int32 spanning tree per image.

    Returns:
        (B, C, H, W) in features' dtype and device. Differentiable with respect to ``features`` and
        ``embed`` (compiled backward; not twice differentiable).

    Computed TreeFilter's way: a BFS from pixel 0 (on the host), then a leaf->root and a root->leaf
    pass (CPU: rows in parallel; CUDA: one block per image and channel walking the BFS levels).
    """
    op = "tree_filter"
    features = _check_image(op, "features", features)
    embed = _check_embed(op, "features", features, embed)
    tree = _check_tree(op, tree, features)
    ops = _ops(features)
    n = features.shape[2] * features.shape[3]
    topology = ops.tree_filter_topology(tree, n)
    return _TreeFilter.apply(features.contiguous(), embed.contiguous(), topology)
