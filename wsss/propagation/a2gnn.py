"""A2GNN: per-image graph attention network that propagates seeds over affinity features (SEEDS_ANATOMY §1.8).

Transductive and per image: a small network is trained from scratch on the seeds of one image and
then labels every node of that image.

Graph. Nodes are the cells of the AffinityNet feature map average-pooled to ``graph_stride`` (8, A2GNN's
node stride; 0 keeps the AffinityNet's stride), ``h×w`` nodes. Each node
is linked to every node of its ``(2r+1)²`` square window (itself included), as A2GNN's ``unfold``
window; the edge prior is the AffinityNet affinity ``a_ij = exp(−mean_c |f_i − f_j|)``. The window
is never a dense ``N×N`` matrix (A2GNN builds one with a Python double loop): on the CPU attention and
adjacency are per-pair tensors over the window's offsets with compiled products (:mod:`kernels.window`), on a GPU
blocks of query nodes against their halo, batched GEMMs, pairs outside the window masked (:class:`WindowGraph`).

Network (A2GNN / AGNN):

* ``x = dropout(ReLU(W_in f))`` with ``W_in`` linear without bias (features ``f`` standardised per
  channel over the image), ``hidden`` = 256;
* ``layers`` (3) attention layers ``x_i ← Σ_j P_ij x_j`` with
  ``P_i· = softmax_j(β·cos(x_i, x_j) + 10·a_ij)`` over the window, ``j`` excluded where ``cos < 0``
  (the node itself is always kept); ``β`` is learned in the first layer and 0 in the others, whose weights
  are therefore fixed by the affinities (the ``cos < 0`` mask never applies to non-negative ReLU outputs) and
  computed once (:class:`FixedPropagation`);
* ``logits = W_out dropout(x)`` over the ``K+1`` channels of the image (background + classes present).

Training (Adam, lr 0.03, weight decay 5e-4): ``epochs`` (50) of ``CE(background seeds) + CE(object
seeds)`` (each averaged over its own nodes; seeds are the majority seed of each cell), then
``epochs`` more adding ``crf_weight`` (0.3; box 0.01) times the gated-CRF loss
``Σ_i Σ_{j∈W5(i), j≠i} K_ij (1 − ⟨y_i, y_j⟩) / N`` on the softmax ``y``, with
``K_ij = exp(−½‖(p_i−p_j)/σ_xy‖² − ½‖(c_i−c_j)/σ_rgb‖²)`` (``p`` node coordinates, ``c`` the
ImageNet-normalised image averaged over each cell; σ_xy 6, σ_rgb 0.1). ``stop_patience > 0`` ends a phase early
once its loss stops improving (:class:`PhaseSchedule`, per image).

Box supervision: a class channel's logits are −∞ outside the boxes of that class (training and
inference), which replaces A2GNN's MIL loss and consistency check (not implemented).

Inference: softmax of the logits (no dropout), bilinearly upsampled to the image; for image tags and
points A2GNN blends a random walk of the CAMs: ``p ← (p + w·rw) / Σ`` (``rw_weight`` 3; β 8, 64
steps, background power α 6).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.transforms import normalize
from wsss.params import A2GNNParams
from wsss.propagation.inputs import (PropagationInput, allowed_at_stride, apply_allowed, seeds_at_stride,
                                     upsample_scores)


def window_offsets(radius: int) -> list[tuple[int, int]]:
    """The ``(2r+1)²`` offsets ``(dy, dx)`` of the square window, row-major; ``(0, 0)`` (index ``D // 2``) included."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def shifted(padded: torch.Tensor, radius: int, dy: int, dx: int, height: int, width: int) -> torch.Tensor:
    """View of ``padded (C, h+2r, w+2r)`` holding, at ``(y, x)``, the value of node ``(y+dy, x+dx)``."""
    return padded[:, radius + dy : radius + dy + height, radius + dx : radius + dx + width]


def window_valid(height: int, width: int, radius: int) -> torch.Tensor:
    """``(D, h, w)`` bool: whether neighbour ``d`` of node ``(y, x)`` lies inside the grid."""
    ones = F.pad(torch.ones(1, height, width), (radius,) * 4)
    return torch.stack([shifted(ones, radius, dy, dx, height, width)[0] > 0 for dy, dx in window_offsets(radius)])


class WindowGraph:
    """The square-window graph of an ``h×w`` node grid, laid out for batched matrix products.

    The grid is cut into ``tile×tile`` blocks; node features live as rows ``(..., M, C)`` in block order
    (``M = T·tile²`` for ``T`` blocks; slots past the grid's bottom/right edge are padding rows). A
    block's keys are the ``(tile+2r)²`` nodes of the block grown by the radius (its halo, gathered
    with one index), so every window lies inside its query's halo; per-pair quantities are
    ``(B·T, tile², halo²)`` tensors with the pairs outside the window masked, and attention is two
    ``bmm`` calls: a few large GEMMs, memory O(N·halo²), never an ``N×N`` matrix.

    ``tile=0``: one block, the whole grid, whose keys are its own nodes (no gather at all): per-pair tensors
    are ``(B, N, N)``, the dense form, for grids where it is less work (:func:`choose_tile`, which ``layers`` informs).
    ``tile=WINDOW`` (the CPU's layout): rows in raster order, per-pair tensors ``(B, N, D)`` over the window's ``D``
    offsets only, the products compiled loops (:mod:`kernels.window`). :meth:`products` and :meth:`aggregate` are
    the two pair operations in every layout.

    Several images share one graph (a batch, leading dimension ``B`` of the rows): the grid is the
    largest of them and each image's nodes are the top-left ``h_i×w_i`` corner (``sizes``); nodes
    outside an image are never keys of its nodes, so every image sees exactly its own graph.
    """

    def __init__(self, height: int, width: int, radius: int, tile: int | None = None,
                 device: torch.device | str = "cpu", sizes: list[tuple[int, int]] | None = None,
                 layers: int = 3) -> None:
        tile = choose_tile(height, width, radius, layers, device) if tile is None else tile
        self.height, self.width, self.radius, self.tile = height, width, radius, tile
        r = radius
        if tile == WINDOW:
            self._init_window(device, sizes)
            return
        if tile == 0:  # one block of the whole grid, rows in raster order, keys = the rows
            self.rows = self.cols = 1
            block_h, block_w, margin = height, width, 0
        else:
            self.rows, self.cols = math.ceil(height / tile), math.ceil(width / tile)
            block_h = block_w = tile
            margin = r
        halo_h, halo_w = block_h + 2 * margin, block_w + 2 * margin
        #: query rows and key slots of one block
        self.block_size, self.block_keys = block_h * block_w, halo_h * halo_w
        blocks_y, blocks_x, qy, qx = torch.meshgrid(torch.arange(self.rows), torch.arange(self.cols),
                                                    torch.arange(block_h), torch.arange(block_w), indexing="ij")
        #: grid position of every row (block order)
        self.row_y = (blocks_y * block_h + qy).reshape(-1)
        self.row_x = (blocks_x * block_w + qx).reshape(-1)
        #: ``(B, M)`` whether a row is a node of image ``b`` (padding rows and nodes past its size: False)
        sizes = sizes or [(height, width)]
        self.sizes = [(int(h), int(w)) for h, w in sizes]
        self.inside = torch.stack([(self.row_y < h) & (self.row_x < w) for h, w in self.sizes])
        order = torch.full((self.rows * block_h, self.cols * block_w), self.size, dtype=torch.long)
        order[self.row_y, self.row_x] = torch.arange(self.size)
        #: row index of every grid node ``(h, w)``
        self.row_of = order[:height, :width]
        padded = torch.full((self.rows * block_h + 2 * margin, self.cols * block_w + 2 * margin), -1, dtype=torch.long)
        padded[margin : margin + height, margin : margin + width] = self.row_of
        by, bx, hy, hx = torch.meshgrid(torch.arange(self.rows), torch.arange(self.cols), torch.arange(halo_h),
                                        torch.arange(halo_w), indexing="ij")
        halo = padded[by * block_h + hy, bx * block_w + hx].reshape(-1)
        #: ``(T·halo²,)`` whether a halo slot is a grid node
        self.halo_inside = halo >= 0
        #: ``(T·halo²,)`` row of every halo slot; a slot outside the grid reads row 0, and every use of it is
        #: masked (−∞ logit, weight exactly 0): no zero row to append, no copy of the rows per gather
        self.halo_rows = halo.clamp(min=0)
        qy, qx = torch.meshgrid(torch.arange(block_h), torch.arange(block_w), indexing="ij")
        ky, kx = torch.meshgrid(torch.arange(halo_h), torch.arange(halo_w), indexing="ij")
        dy = ky.reshape(1, -1) - margin - qy.reshape(-1, 1)
        dx = kx.reshape(1, -1) - margin - qx.reshape(-1, 1)
        #: ``(tile², halo²)``: key slot in the query's window / is the query itself
        self.in_window = (dy.abs() <= r) & (dx.abs() <= r)
        self.is_self = (dy == 0) & (dx == 0)
        for name in ("row_y", "row_x", "inside", "row_of", "halo_rows", "halo_inside", "in_window", "is_self"):
            setattr(self, name, getattr(self, name).to(device))

    def _init_window(self, device: torch.device | str, sizes: list[tuple[int, int]] | None) -> None:
        """``tile = WINDOW``: rows in raster order (one block), per-pair tensors ``(B, N, D)`` over the window's
        ``D = (2r+1)²`` offsets (:func:`window_offsets`), the products through :mod:`kernels.window`."""
        height, width, r = self.height, self.width, self.radius
        self.rows = self.cols = 1
        self.block_size, self.block_keys = height * width, (2 * r + 1) ** 2
        ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        self.row_y, self.row_x = ys.reshape(-1), xs.reshape(-1)
        self.sizes = [(int(h), int(w)) for h, w in (sizes or [(height, width)])]
        self.inside = torch.stack([(self.row_y < h) & (self.row_x < w) for h, w in self.sizes])
        self.row_of = torch.arange(height * width).reshape(height, width)
        offsets = torch.tensor(window_offsets(r))
        #: ``(1, D)``: every pair is in the window; pair ``D // 2`` is the node itself
        self.in_window = torch.ones(1, len(offsets), dtype=torch.bool)
        self.is_self = (offsets == 0).all(dim=1)[None]
        #: ``(B, N, D)``: the neighbour is a node of the image (inside the grid and the image's own size)
        self._pair_valid = torch.stack([_pad(window_valid(h, w, r).float(), height, width).reshape(len(offsets), -1) > 0
                                        for h, w in self.sizes]).transpose(1, 2)
        for name in ("row_y", "row_x", "inside", "row_of", "in_window", "is_self", "_pair_valid"):
            setattr(self, name, getattr(self, name).to(device))

    @property
    def windowed(self) -> bool:
        """Per-pair tensors over the window's offsets (``tile = WINDOW``), not blocks of GEMMs."""
        return self.tile == WINDOW

    @property
    def batch(self) -> int:
        return len(self.sizes)

    @property
    def blocks(self) -> int:
        return self.rows * self.cols

    @property
    def size(self) -> int:
        """Number of rows ``M`` (nodes plus padding slots)."""
        return self.blocks * self.block_size

    def to_rows(self, grid: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """``(..., C, h, w)`` → ``(..., M, C)`` rows (padding rows = ``fill``)."""
        lead, channels = grid.shape[:-3], grid.shape[-3]
        flat = grid.reshape(-1, channels, self.height * self.width).transpose(1, 2)
        rows = grid.new_full((flat.shape[0], self.size + 1, channels), fill)
        rows[:, self.row_of.reshape(-1)] = flat
        return rows[:, : self.size].reshape(*lead, self.size, channels)

    def to_grid(self, rows: torch.Tensor) -> torch.Tensor:
        """``(..., M, C)`` rows → ``(..., C, h, w)``."""
        picked = rows[..., self.row_of.reshape(-1), :]
        return picked.transpose(-1, -2).reshape(*rows.shape[:-2], rows.shape[-1], self.height, self.width)

    def keys(self, rows: torch.Tensor) -> torch.Tensor:
        """``(M, C)`` → ``(T, halo², C)``, ``(B, M, C)`` → ``(B·T, halo², C)`` halo rows (slots outside the grid
        hold row 0: mask them, :meth:`key_valid`). Not in the window layout (its keys are never gathered)."""
        if self.windowed:
            raise ValueError("WindowGraph.keys: the window layout has no key blocks (use products / aggregate)")
        batched = rows.reshape(-1, self.size, rows.shape[-1])
        if self.tile == 0:  # the block's keys are its rows
            return batched
        halo = torch.index_select(batched, 1, self.halo_rows)
        return halo.reshape(-1, self.block_keys, rows.shape[-1])

    def queries(self, rows: torch.Tensor) -> torch.Tensor:
        """``(..., M, C)`` → ``(B·T, tile², C)`` (a view)."""
        return rows.reshape(-1, self.block_size, rows.shape[-1])

    def key_valid(self) -> torch.Tensor:
        """``(B·T, 1, halo²)``: the halo slot is a node of the block's image (window layout: ``(B, N, D)``, the
        neighbour is)."""
        if self.windowed:
            return self._pair_valid
        inside = self.inside[:, self.halo_rows] & self.halo_inside
        return inside.reshape(self.batch * self.blocks, 1, -1)

    def _grid_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` raster rows → the ``(B, h, w, C)`` view :mod:`kernels.window` takes."""
        return rows.reshape(-1, self.height, self.width, rows.shape[-1])

    def products(self, queries: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pair ``bias + scale_b · ⟨q_i, k_j⟩`` (``(B·T, tile², halo²)``, window layout ``(B, N, D)``) of the
        rows ``queries, keys (B, M, C)``; ``scale (B,)`` per image (default 1), ``bias`` per pair (default 0).
        ``keys is queries`` (a cosine of a row with itself) takes the window's symmetric form."""
        if self.windowed:
            from kernels.window import window_dot, window_self_dot

            grid = self._grid_rows(queries)
            dots = (window_self_dot(grid, self.radius) if keys is queries
                    else window_dot(grid, self._grid_rows(keys), self.radius)).reshape(grid.shape[0], self.size, -1)
            if scale is not None:
                dots = dots * scale.reshape(-1, 1, 1)
            return dots if bias is None else dots + bias
        scaled = self.queries(queries) if scale is None else self.queries(queries) * self.per_block(scale)
        key_rows = self.keys(keys).transpose(1, 2)
        return torch.bmm(scaled, key_rows) if bias is None else torch.baddbmm(bias, scaled, key_rows)

    def aggregate(self, weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``x_i ← Σ_j weights_ij x_j`` for per-pair ``weights`` (as :meth:`products` returns) and rows ``(B, M, C)``."""
        if self.windowed:
            from kernels.window import window_aggregate

            grid = self._grid_rows(rows)
            pairs = weights.reshape(*grid.shape[:3], -1)
            return window_aggregate(pairs, grid, self.radius).reshape(rows.shape)
        return torch.bmm(weights, self.keys(rows)).reshape(rows.shape)

    def pair_l1(self, rows: torch.Tensor) -> torch.Tensor:
        """Per-pair ``Σ_c |r_i − r_j|`` of rows ``(B, M, C)`` (pairs outside the grid: any value, mask them)."""
        if not self.windowed:
            return torch.cdist(self.queries(rows), self.keys(rows), p=1)
        r = self.radius
        grid = F.pad(self._grid_rows(rows).permute(0, 3, 1, 2), (r,) * 4)  # (B, C, h+2r, w+2r)
        centre = grid[..., r : r + self.height, r : r + self.width]
        distance = torch.stack([(shifted(grid[b], r, dy, dx, self.height, self.width) - centre[b]).abs().sum(0)
                                for b in range(grid.shape[0]) for dy, dx in window_offsets(r)])
        return distance.reshape(grid.shape[0], -1, self.size).transpose(1, 2)

    def per_block(self, values: torch.Tensor) -> torch.Tensor:
        """``(B,)`` per-image values → ``(B·T, 1, 1)``, one per block."""
        return values.repeat_interleave(self.blocks).reshape(-1, 1, 1)


class WindowAttention(nn.Module):
    """One A2GNN attention layer on the window graph: ``x_i ← Σ_j softmax_j(β cos + w·a_ij) x_j``.

    ``β`` is learnt (one per image of the batch, initialised to 1) in the first layer, 0 in the others.
    """

    def __init__(self, learn_beta: bool, batch: int = 1) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.ones(batch)) if learn_beta else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor, graph: WindowGraph,
                non_negative: bool = False) -> torch.Tensor:
        """``x (..., M, C)`` rows; ``bias (B·T, tile², halo²)``: ``w·a_ij`` in the window, −∞ outside → like ``x``.

        ``non_negative``: the caller knows ``x ≥ 0`` (a ReLU output), so no cosine is negative and the
        ``cos < 0`` mask is skipped (it would drop nothing).
        """
        norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-12)
        unit = x / norms
        # β·cos + bias as one product: the queries scaled by β/‖x_i‖, the keys by 1/‖x_j‖
        logits = bias if self.beta is None else graph.products(unit, unit, self.beta, bias)
        if not non_negative:  # A2GNN: −∞ where cos < 0; a node always keeps itself
            with torch.no_grad():
                cos = graph.products(unit, unit)
            logits = logits.masked_fill((cos < 0) & ~graph.is_self, float("-inf"))
        return graph.aggregate(torch.softmax(logits, dim=-1), x)


def initial_parameters(in_dim: int, hidden: int, classes: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's initial weights, drawn as ``nn.Linear`` draws them (uniform in ±1/√fan_in), in this order:
    ``W_in (F, hidden)``, ``W_out (hidden, classes)``, ``b_out (classes,)``."""
    def uniform(*shape: int, fan_in: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * 2 - 1) / math.sqrt(fan_in)

    w_in = uniform(hidden, in_dim, fan_in=in_dim).t().contiguous()
    w_out = uniform(classes, hidden, fan_in=hidden).t().contiguous()
    return w_in, w_out, uniform(classes, fan_in=hidden)


class FixedPropagation:
    """The attention layers past the first, ``x ← P x`` with ``P_i· = softmax_j(w·a_ij)`` over the window.

    Their ``β`` is 0 and their only other dependence on ``x`` is the seed's mask where ``cos(x_i, x_j) < 0``, which
    never applies: ``x`` is a ReLU output, and each layer makes non-negative combinations of it, so every ``x_i``
    is non-negative and every cosine ``≥ 0``. ``P`` is therefore fixed by the image's affinities: its weights are
    computed once (not per epoch), and on a dense block (``tile 0``) the ``steps`` layers are one precomputed
    matrix ``P^steps``, one product forward and one backward.
    """

    def __init__(self, bias: torch.Tensor, graph: WindowGraph, steps: int) -> None:
        self.graph, self.steps = graph, steps
        #: ``(B·T, tile², halo²)`` window weights (0 outside the window and the image)
        weights = torch.softmax(bias, dim=-1)
        self.dense = graph.tile == 0 and steps > 1
        self.weights = torch.linalg.matrix_power(weights, steps) if self.dense else weights

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, M, C)`` rows → the rows after ``steps`` layers."""
        if self.steps == 0:
            return x
        if self.dense:
            return torch.bmm(self.weights, x)
        for _ in range(self.steps):
            x = self.graph.aggregate(self.weights, x)
        return x


class A2GNN(nn.Module):
    """Linear → ReLU → dropout → attention layers → dropout → linear, for a batch of ``B`` images at once.

    Every image has its own weights (a slice of each batched parameter, drawn from its own generator, as if it
    were alone) and its own dropout masks (drawn over its own nodes from its generator), so an image's result
    does not depend on the images it is batched with. ``classes[b]`` is image ``b``'s ``K+1``; its logits past
    that are padding (the caller masks them). The first attention layer learns ``β``
    (:class:`WindowAttention`); the others are fixed by the affinities (:class:`FixedPropagation`).
    """

    def __init__(self, in_dim: int, classes: list[int], params: A2GNNParams, generators: list[torch.Generator],
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.params = params
        self.generators = generators
        width = max(classes)
        drawn = [initial_parameters(in_dim, params.hidden, count, g) for count, g in zip(classes, generators)]
        w_out = torch.zeros(len(classes), params.hidden, width)
        b_out = torch.zeros(len(classes), 1, width)
        for b, (_, weight, bias) in enumerate(drawn):
            w_out[b, :, : classes[b]], b_out[b, 0, : classes[b]] = weight, bias
        #: ``(B, F, hidden)``, ``(B, hidden, C)``, ``(B, 1, C)``
        self.embed = nn.Parameter(torch.stack([w for w, _, _ in drawn]).to(device))
        self.classify_weight = nn.Parameter(w_out.to(device))
        self.classify_bias = nn.Parameter(b_out.to(device))
        self.attention = WindowAttention(True, len(classes)).to(device) if params.layers > 0 else None

    def dropout(self, x: torch.Tensor, graph: WindowGraph) -> torch.Tensor:
        """Inverted dropout of ``x (B, M, C)``, each image's mask drawn over its own ``h_i·w_i`` nodes.

        A value is kept when a 16-bit uniform draw is below ``round(65536·(1 − p))`` (:func:`keep_masks`)."""
        if not self.training or self.params.dropout <= 0:
            return x
        keep = 1.0 - self.params.dropout
        masks = keep_masks(graph, x.shape[-1], keep, self.generators)
        if len(masks) == 1 and masks[0].shape[0] == x.shape[1]:  # one image over the whole grid: no scatter
            scale = masks[0].to(x.device, x.dtype)[None]
        else:
            scale = x.new_zeros(x.shape)
            for b, ((height, width), kept) in enumerate(zip(graph.sizes, masks)):
                scale[b, graph.row_of[:height, :width].reshape(-1)] = kept.to(x.device, x.dtype)
        return x * scale.mul_(1.0 / keep)

    def forward(self, features: torch.Tensor, bias: torch.Tensor, graph: WindowGraph,
                fixed: FixedPropagation) -> torch.Tensor:
        """``features (B, M, F)`` rows, ``bias`` (see :class:`WindowAttention`), ``fixed`` the layers past the
        first (``FixedPropagation(bias, graph, layers − 1)``) → logits ``(B, M, C)``."""
        x = self.dropout(F.relu(torch.bmm(features, self.embed)), graph)
        if self.attention is not None:
            x = fixed(self.attention(x, bias, graph, non_negative=True))
        return torch.baddbmm(self.classify_bias, self.dropout(x, graph), self.classify_weight)


def keep_masks(graph: WindowGraph, channels: int, keep: float, generators: list[torch.Generator]) -> list[torch.Tensor]:
    """Per image ``(h_i·w_i, channels)`` bool dropout masks in the image's raster order, kept with probability
    ``round(65536·keep) / 65536`` (exactly ``keep`` at A2GNN's 0.5): four 16-bit draws from each 64-bit word of
    the image's generator, a third of the cost of one float draw per value."""
    threshold = round(keep * 65536) - 32768  # signed 16-bit draws: P(draw < threshold) = (threshold + 32768) / 65536
    masks = []
    for (height, width), generator in zip(graph.sizes, generators):
        count = height * width * channels
        words = torch.empty(-(-count // 4), dtype=torch.int64).random_(-2 ** 63, None, generator=generator)
        masks.append((words.view(torch.int16)[:count] < threshold).reshape(height * width, channels))
    return masks


def attention_bias(features: torch.Tensor, params: A2GNNParams, graph: WindowGraph) -> torch.Tensor:
    """``(B·T, tile², halo²)``: ``adjacency_weight · a_ij`` (``a_ij = exp(−mean_c |f_i − f_j|)`` of the raw
    features ``(..., F, h, w)``) inside the window and the image, −∞ elsewhere (the query itself always kept)."""
    distance = graph.pair_l1(graph.to_rows(features)) / features.shape[-3]
    keep = (graph.in_window[None] & graph.key_valid()) | graph.is_self[None]
    return (params.adjacency_weight * torch.exp(-distance)).masked_fill(~keep, float("-inf"))


def gated_crf_kernel(image: np.ndarray, stride: int, height: int, width: int, radius: int, sigma_xy: float,
                     sigma_rgb: float) -> torch.Tensor:
    """``(D, h·w)`` gated-CRF kernel ``K_ij`` over the radius-``radius`` window (centre and outside the grid: 0)."""
    tensor = torch.from_numpy(normalize(image))[None]
    tensor = F.pad(tensor, (0, (-tensor.shape[-1]) % stride, 0, (-tensor.shape[-2]) % stride), mode="replicate")
    colour = F.avg_pool2d(tensor, stride)[0] if stride > 1 else tensor[0]
    colour = colour[:, :height, :width]
    size = 2 * radius + 1
    neighbours = F.unfold(colour[None], size, padding=radius)[0].reshape(3, size * size, height * width)
    difference = ((neighbours - colour.reshape(3, 1, -1)) ** 2).sum(0)
    offsets = torch.tensor(window_offsets(radius), dtype=torch.float32)
    spatial = (offsets ** 2).sum(1, keepdim=True)
    kernel = torch.exp(-0.5 * spatial / sigma_xy ** 2 - 0.5 * difference / sigma_rgb ** 2)
    kernel = kernel * window_valid(height, width, radius).reshape(size * size, -1)
    kernel[len(offsets) // 2] = 0.0
    return kernel


def gated_crf_loss(probs: torch.Tensor, kernel: torch.Tensor, radius: int,
                   nodes: torch.Tensor | None = None, per_image: bool = False) -> torch.Tensor:
    """``Σ_i Σ_j K_ij (1 − ⟨y_i, y_j⟩) / N`` for ``probs (C,h,w)`` and ``kernel (D, h·w)``; batched, ``probs
    (B,C,h,w)`` and ``kernel (B,D,h·w)`` give the sum over images, each divided by its ``nodes[b]`` (default ``h·w``),
    or with ``per_image`` the ``(B,)`` terms."""
    batched = probs.dim() == 4
    probs, kernel = (probs, kernel) if batched else (probs[None], kernel[None])
    batch, channels, height, width = probs.shape
    size = 2 * radius + 1
    neighbours = F.unfold(probs, size, padding=radius).reshape(batch, channels, size * size, height * width)
    agreement = (neighbours * probs.reshape(batch, channels, 1, -1)).sum(1)
    per_image_sum = (kernel * (1.0 - agreement)).sum(dim=(1, 2))
    nodes = per_image_sum.new_full((batch,), height * width) if nodes is None else nodes
    terms = per_image_sum / nodes
    return terms if per_image else terms.sum()


def seed_loss(logits: torch.Tensor, targets: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """A2GNN's ``CE(background seeds) + CE(object seeds)``, each averaged over its own nodes, summed over images
    (``per_image``: the ``(B,)`` terms).

    ``logits (..., M, C)``, ``targets (..., M)`` channel indices, -1 = no seed.
    """
    logits = logits.reshape(-1, logits.shape[-2], logits.shape[-1])
    targets = targets.reshape(-1, targets.shape[-1])
    per_node = F.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")  # (B, M)
    terms = logits.new_zeros(logits.shape[0])
    for chosen in (targets == 0, targets > 0):
        count = chosen.sum(dim=1, keepdim=True)
        weight = chosen / count.clamp(min=1)
        terms = terms + (per_node * weight).sum(dim=1)
    return terms if per_image else terms.sum()


def standardise(features: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit variance over the nodes of ``features (F,h,w)``."""
    mean = features.mean(dim=(1, 2), keepdim=True)
    std = features.std(dim=(1, 2), keepdim=True).clamp(min=1e-6)
    return (features - mean) / std


#: block side of :class:`WindowGraph` on large grids (radius 3: halo 14, 196 key slots per query, 49 in its window)
TILE = 8
#: ``tile`` of :class:`WindowGraph` for the window layout: per-pair tensors over the window's offsets, products
#: through the compiled :mod:`kernels.window` ops (CPU)
WINDOW = -1
#: matrix products per epoch of the first attention layer (forward: cosines, aggregation; backward: the weights'
#: gradient, the values', the cosines' to queries and keys) and of each fixed layer (forward, backward)
FIRST_LAYER_PRODUCTS, FIXED_LAYER_PRODUCTS = 5, 2


def choose_tile(height: int, width: int, radius: int, layers: int = 3, device: torch.device | str = "cpu") -> int:
    """The layout of :class:`WindowGraph`: :data:`WINDOW` on the CPU, else 0 (one dense block) or :data:`TILE`,
    whichever does fewer multiply-adds per epoch.

    Window: ``N·D`` products of ``D = (2r+1)²`` pairs per node, compiled loops (on minivoc's ~400-node grids a
    fraction of the dense GEMMs' time, ``python -m benchmarks.a2gnn``). On a GPU the GEMMs are the faster form.
    Dense: every product is ``N×N`` (``N = h·w``) and the fixed layers are one precomputed matrix
    (:class:`FixedPropagation`); tiled: ``rows × halo²`` per product (``rows`` = the grid padded to whole
    tiles), each fixed layer its own. (On a 500×375 photo's ~3000 nodes, 8×8 tiles beat 4, 12 and 16.)
    """
    if torch.device(device).type == "cpu":
        return WINDOW
    nodes = height * width
    rows = math.ceil(height / TILE) * math.ceil(width / TILE) * TILE * TILE
    fixed = FIXED_LAYER_PRODUCTS if layers > 1 else 0
    dense = (FIRST_LAYER_PRODUCTS + fixed) * nodes * nodes
    tiled = (FIRST_LAYER_PRODUCTS + FIXED_LAYER_PRODUCTS * max(layers - 1, 0)) * rows * (TILE + 2 * radius) ** 2
    return 0 if dense <= tiled else TILE


#: batches up to this many graph rows train on one CPU thread: their operations are too small for intra-op
#: threads to pay (on a busy machine every parallel region waits for a time slice)
SINGLE_THREAD_NODES = 16384


def train_a2gnn(data: PropagationInput, features: torch.Tensor, stride: int, params: A2GNNParams,
                seed: int = 0) -> torch.Tensor:
    """Train A2GNN on one image and return node probabilities ``(K+1, h, w)``.

    ``features``: ``(F, h, w)`` AffinityNet features of the image, ``h = ceil(H/s)``.
    """
    return train_a2gnn_batch([data], [features], stride, params, seed)[0]


def train_a2gnn_batch(datas: list[PropagationInput], features: list[torch.Tensor], stride: int,
                      params: A2GNNParams, seed: int = 0, epochs: list[int] | None = None) -> list[torch.Tensor]:
    """Train A2GNN on each image of a batch, all in the same steps; per image ``(K+1, h_i, w_i)`` probabilities.

    ``features[b]``: ``(F, h_i, w_i)`` for ``datas[b]``. An image's result is the one it gets alone (its own
    weights, generator seeded with ``seed``, dropout masks and losses; the batch only shares the operations,
    up to float rounding). Images without any seed are not trained (their network stays as initialised).
    ``epochs``, when given, receives the epochs each trained image trained for (:class:`PhaseSchedule`).
    """
    results: list[torch.Tensor | None] = [None] * len(datas)
    for trained in (True, False):
        chosen = [b for b, data in enumerate(datas) if _has_seeds(data, stride, features[b]) == trained]
        if not chosen:
            continue
        rows = sum(_rows(features[b], params.radius, params.layers) for b in chosen)
        threads = torch.get_num_threads()
        if rows <= SINGLE_THREAD_NODES:
            torch.set_num_threads(1)
        try:
            out = _train([datas[b] for b in chosen], [features[b] for b in chosen], stride, params, seed, trained,
                         epochs)
        finally:
            torch.set_num_threads(threads)
        for b, probs in zip(chosen, out):
            results[b] = probs
    return results  # type: ignore[return-value]


def _rows(features: torch.Tensor, radius: int, layers: int) -> int:
    height, width = features.shape[-2:]
    tile = choose_tile(height, width, radius, layers, features.device)
    return height * width if tile in (0, WINDOW) else math.ceil(height / tile) * math.ceil(width / tile) * tile * tile


def _targets(data: PropagationInput, stride: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(h, w)`` seed channel per node (-1 none, seeds outside their allowed channel dropped) and the
    ``(K+1, h, w)`` allowed mask (``None``: everywhere)."""
    targets = torch.from_numpy(seeds_at_stride(data.seed_channels(), data.channels, stride))[:height, :width]
    allowed = allowed_at_stride(data.allowed, stride)
    mask = None if allowed is None else torch.from_numpy(allowed[:, :height, :width])
    if mask is not None:  # a seed can only teach a channel allowed at its node
        index = targets.clamp(min=0)
        targets = torch.where((targets >= 0) & mask.gather(0, index[None])[0], targets, torch.full_like(targets, -1))
    return targets, mask


def _has_seeds(data: PropagationInput, stride: int, features: torch.Tensor) -> bool:
    return bool((_targets(data, stride, *features.shape[-2:])[0] >= 0).any())


def _pad(grid: torch.Tensor, height: int, width: int, fill: float = 0.0) -> torch.Tensor:
    """``(C, h, w)`` → ``(C, height, width)``, new cells ``fill``."""
    return F.pad(grid, (0, width - grid.shape[-1], 0, height - grid.shape[-2]), value=fill)


class PhaseSchedule:
    """Each image's two training phases: seed loss alone, then seed loss + gated CRF; then it is finished.

    A phase lasts ``epochs`` epochs; with ``stop_patience > 0`` it ends earlier, once the image's loss of the
    phase has not gone below ``(1 − stop_tolerance)`` times its best of the phase for ``stop_patience`` epochs
    in a row (early stopping on the loss being trained; the seed's schedule is the fixed one). Images move
    through their phases on their own, so an image's schedule does not depend on the images it is batched with.
    """

    def __init__(self, batch: int, params: A2GNNParams, device: torch.device | str = "cpu") -> None:
        self.params = params
        #: ``(B,)`` 0 seed phase, 1 CRF phase, 2 finished
        self.phase = torch.zeros(batch, dtype=torch.long, device=device)
        #: ``(B,)`` epochs trained so far (both phases)
        self.epochs = torch.zeros(batch, dtype=torch.long, device=device)
        self.in_phase = torch.zeros(batch, dtype=torch.long, device=device)
        self.best = torch.full((batch,), float("inf"), device=device)
        self.stale = torch.zeros(batch, dtype=torch.long, device=device)

    @property
    def training(self) -> torch.Tensor:
        """``(B,)`` bool: the image is still training."""
        return self.phase < 2

    def step(self, losses: torch.Tensor) -> torch.Tensor:
        """Record one epoch's ``(B,)`` losses (of the images' own phases); returns ``(B,)`` bool: finished now."""
        training = self.training
        self.epochs += training
        self.in_phase += training
        improved = losses < (1.0 - self.params.stop_tolerance) * self.best
        self.best = torch.where(training & (losses < self.best), losses, self.best)
        self.stale = torch.where(improved, torch.zeros_like(self.stale), self.stale + 1)
        ended = training & (self.in_phase >= self.params.epochs)
        if self.params.stop_patience > 0:
            ended |= training & (self.stale >= self.params.stop_patience)
        self.phase = self.phase + ended
        self.in_phase = torch.where(ended, torch.zeros_like(self.in_phase), self.in_phase)
        self.best = torch.where(ended, torch.full_like(self.best, float("inf")), self.best)
        self.stale = torch.where(ended, torch.zeros_like(self.stale), self.stale)
        return ended & (self.phase == 2)


def _train(datas: list[PropagationInput], features: list[torch.Tensor], stride: int, params: A2GNNParams,
           seed: int, trained: bool, epochs: list[int] | None = None) -> list[torch.Tensor]:
    device = features[0].device  # the graph, the model and every per-image tensor live where the features are
    sizes = [tuple(f.shape[-2:]) for f in features]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    classes = [data.channels for data in datas]
    graph = WindowGraph(height, width, params.radius, device=device, sizes=sizes, layers=params.layers)
    targets, allowed, inputs, raw, kernels = [], [], [], [], []
    for data, feature, (h, w) in zip(datas, features, sizes):
        target, mask = _targets(data, stride, h, w)
        targets.append(_pad(target[None].float(), height, width, -1.0))
        channel_mask = torch.zeros(max(classes), h, w, dtype=torch.bool)  # padding channels: never
        channel_mask[: data.channels] = True if mask is None else mask
        allowed.append(_pad(channel_mask.float(), height, width, 1.0))
        inputs.append(_pad(standardise(feature), height, width))
        raw.append(_pad(feature, height, width))
        if trained and params.crf_weight > 0:
            kernel = gated_crf_kernel(data.image, stride, h, w, params.crf_radius, params.crf_sigma_xy,
                                      params.crf_sigma_rgb)
            kernels.append(_pad(kernel.reshape(-1, h, w), height, width).reshape(kernel.shape[0], -1))
    target_rows = graph.to_rows(torch.stack(targets).to(device), fill=-1).long()[..., 0]
    allowed_rows = graph.to_rows(torch.stack(allowed).to(device), fill=1.0) > 0
    bias = attention_bias(torch.stack(raw).to(device), params, graph)
    input_rows = graph.to_rows(torch.stack(inputs).to(device))
    generators = [torch.Generator().manual_seed(seed) for _ in datas]
    model = A2GNN(input_rows.shape[-1], classes, params, generators, device)
    fixed = FixedPropagation(bias, graph, max(params.layers - 1, 0))
    kernel = torch.stack(kernels).to(device) if kernels else None
    nodes = torch.tensor([float(h * w) for h, w in sizes], device=device)

    def masked_logits() -> torch.Tensor:
        return model(input_rows, bias, graph, fixed).masked_fill(~allowed_rows, -1e4)

    if trained:
        optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay, fused=True)
        schedule = PhaseSchedule(len(datas), params, device)
        frozen = [p.detach().clone() for p in model.parameters()]  # every parameter is batched on dim 0
        restore: torch.Tensor | None = None  # (B,) the finished images, once there is one
        model.train()
        while schedule.training.any():
            logits = masked_logits()
            terms = seed_loss(logits, target_rows, per_image=True)
            with_crf = schedule.phase == 1
            if kernel is not None and bool(with_crf.any()):
                probs = graph.to_grid(torch.softmax(logits, dim=-1))
                crf = gated_crf_loss(probs, kernel, params.crf_radius, nodes, per_image=True)
                terms = terms + params.crf_weight * crf * with_crf
            optimiser.zero_grad()
            (terms * schedule.training).sum().backward()
            optimiser.step()
            finished = schedule.step(terms.detach())
            if bool(finished.any()):
                with torch.no_grad():  # a finished image keeps its last weights while the others train on
                    for parameter, kept in zip(model.parameters(), frozen):
                        kept[finished] = parameter[finished]
                restore = ~schedule.training
            if restore is not None:
                with torch.no_grad():
                    for parameter, kept in zip(model.parameters(), frozen):
                        parameter[restore] = kept[restore]
        if epochs is not None:
            epochs.extend(schedule.epochs.tolist())
    model.eval()
    with torch.no_grad():
        probs = graph.to_grid(torch.softmax(masked_logits(), dim=-1))
    return [probs[b, : classes[b], :h, :w] for b, (h, w) in enumerate(sizes)]


def cam_walk(data: PropagationInput, affinity: torch.Tensor, stride: int, params: A2GNNParams) -> np.ndarray | None:
    """A2GNN's random-walk term: the CAMs with background ``(1 − max)^α`` walked on the affinities, ``(K+1,H,W)``."""
    from kernels import random_walk

    prior = data.cam_prior(params.rw_alpha)
    if prior is None:
        return None
    height, width = data.size
    tensor = torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32))[None]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    values = (F.avg_pool2d(tensor, stride) if stride > 1 else tensor).to(affinity.device, affinity.dtype)
    walked = random_walk(values, affinity, params.rw_radius, params.rw_beta, params.rw_steps)[0]
    return upsample_scores(walked, stride, height, width)


def pool_features(features: torch.Tensor, stride: int, graph_stride: int) -> tuple[torch.Tensor, int]:
    """``(F,h,w)`` features at ``stride`` → ``(F, ceil(h/k), ceil(w/k))`` at ``graph_stride = k·stride`` (mean over
    each k×k block, edge cells replicated). Returns the pooled features and their stride."""
    if graph_stride <= 0 or graph_stride == stride:
        return features, stride
    if graph_stride % stride:
        raise ValueError(f"A2GNN graph_stride {graph_stride} must be a multiple of the feature stride {stride}")
    factor = graph_stride // stride
    height, width = features.shape[-2:]
    padded = F.pad(features[None], (0, (-width) % factor, 0, (-height) % factor), mode="replicate")
    return F.avg_pool2d(padded, factor)[0], graph_stride


def a2gnn_propagate(data: PropagationInput, features: torch.Tensor, stride: int, params: A2GNNParams,
                    affinity: torch.Tensor | None = None, seed: int = 0) -> np.ndarray:
    """A2GNN scores ``(K+1,H,W)`` float32 for one image (module docstring).

    ``features (F,h,w)``: AffinityNet features (the network trains on their device, CPU or CUDA);
    ``affinity (1,D,h,w)``: its PSA pair affinities at radius ``rw_radius``, used for the random-walk
    blend when ``rw_weight > 0`` and CAMs exist.
    """
    return a2gnn_propagate_batch([data], [features], stride, params, [affinity], seed)[0]


def a2gnn_propagate_batch(datas: list[PropagationInput], features: list[torch.Tensor], stride: int,
                          params: A2GNNParams, affinities: list[torch.Tensor | None] | None = None,
                          seed: int = 0) -> list[np.ndarray]:
    """:func:`a2gnn_propagate` for several images trained together (:func:`train_a2gnn_batch`), same results."""
    pooled = [pool_features(f, stride, params.graph_stride) for f in features]
    node_stride = pooled[0][1] if pooled else stride
    probs = train_a2gnn_batch(datas, [f for f, _ in pooled], node_stride, params, seed)
    affinities = affinities or [None] * len(datas)
    out = []
    for data, node_probs, affinity in zip(datas, probs, affinities):
        scores = upsample_scores(node_probs, node_stride, *data.size)
        if params.rw_weight > 0 and affinity is not None:
            walked = cam_walk(data, affinity, stride, params)
            if walked is not None:
                scores = scores + params.rw_weight * walked
        out.append(apply_allowed(scores, data.allowed))
    return out
