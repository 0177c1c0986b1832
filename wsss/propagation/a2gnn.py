"""A2GNN: per-image graph attention network that propagates seeds over affinity features (SEEDS_ANATOMY §1.8).

Transductive and per image: a small network is trained from scratch on the seeds of one image and
then labels every node of that image.

Graph. Nodes are the cells of the AffinityNet feature map average-pooled to ``graph_stride`` (8, A2GNN's
node stride; 0 keeps the AffinityNet's stride), ``h×w`` nodes. Each node
is linked to every node of its ``(2r+1)²`` square window (itself included), as A2GNN's ``unfold``
window; the edge prior is the AffinityNet affinity ``a_ij = exp(−mean_c |f_i − f_j|)``. The window
is never a dense ``N×N`` matrix (A2GNN builds one with a Python double loop): attention and
adjacency run blockwise (:class:`WindowGraph`: blocks of query nodes against their halo, batched
GEMMs, pairs outside the window masked).

Network (A2GNN / AGNN):

* ``x = dropout(ReLU(W_in f))`` with ``W_in`` linear without bias (features ``f`` standardised per
  channel over the image), ``hidden`` = 256;
* ``layers`` (3) attention layers ``x_i ← Σ_j P_ij x_j`` with
  ``P_i· = softmax_j(β·cos(x_i, x_j) + 10·a_ij)`` over the window, ``j`` excluded where ``cos < 0``
  (the node itself is always kept); ``β`` is learned in the first layer and 0 in the others;
* ``logits = W_out dropout(x)`` over the ``K+1`` channels of the image (background + classes present).

Training (Adam, lr 0.03, weight decay 5e-4): ``epochs`` (50) of ``CE(background seeds) + CE(object
seeds)`` (each averaged over its own nodes; seeds are the majority seed of each cell), then
``epochs`` more adding ``crf_weight`` (0.3; box 0.01) times the gated-CRF loss
``Σ_i Σ_{j∈W5(i), j≠i} K_ij (1 − ⟨y_i, y_j⟩) / N`` on the softmax ``y``, with
``K_ij = exp(−½‖(p_i−p_j)/σ_xy‖² − ½‖(c_i−c_j)/σ_rgb‖²)`` (``p`` node coordinates, ``c`` the
ImageNet-normalised image averaged over each cell; σ_xy 6, σ_rgb 0.1).

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

    The grid is cut into ``tile×tile`` blocks; node features live as rows ``(M, C)`` in block order
    (``M = T·tile²`` for ``T`` blocks; slots past the grid's bottom/right edge are padding rows). A
    block's keys are the ``(tile+2r)²`` nodes of the block grown by the radius (its halo, gathered
    with one index), so every window lies inside its query's halo; per-pair quantities are
    ``(T, tile², halo²)`` tensors with the pairs outside the window masked, and attention is two
    ``bmm`` calls: a few large GEMMs, memory O(N·halo²), never an ``N×N`` matrix.
    """

    def __init__(self, height: int, width: int, radius: int, tile: int = 8,
                 device: torch.device | str = "cpu") -> None:
        self.height, self.width, self.radius, self.tile = height, width, radius, tile
        self.rows, self.cols = math.ceil(height / tile), math.ceil(width / tile)
        self.halo = tile + 2 * radius
        t, r = tile, radius
        blocks_y, blocks_x, qy, qx = torch.meshgrid(torch.arange(self.rows), torch.arange(self.cols), torch.arange(t),
                                                    torch.arange(t), indexing="ij")
        #: grid position of every row (block order)
        self.row_y = (blocks_y * t + qy).reshape(-1)
        self.row_x = (blocks_x * t + qx).reshape(-1)
        #: whether a row is a node of the grid (not padding)
        self.inside = (self.row_y < height) & (self.row_x < width)
        order = torch.full((self.rows * t, self.cols * t), self.size, dtype=torch.long)
        order[self.row_y, self.row_x] = torch.arange(self.size)
        #: row index of every grid node ``(h, w)``
        self.row_of = order[:height, :width]
        padded = torch.full((self.rows * t + 2 * r, self.cols * t + 2 * r), self.size, dtype=torch.long)
        padded[r : r + height, r : r + width] = self.row_of
        by, bx, hy, hx = torch.meshgrid(torch.arange(self.rows), torch.arange(self.cols), torch.arange(self.halo),
                                        torch.arange(self.halo), indexing="ij")
        #: ``(T·halo²,)`` row of every halo slot (``size`` = the zero row: outside the grid)
        self.halo_rows = padded[by * t + hy, bx * t + hx].reshape(-1)
        qy, qx = torch.meshgrid(torch.arange(t), torch.arange(t), indexing="ij")
        ky, kx = torch.meshgrid(torch.arange(self.halo), torch.arange(self.halo), indexing="ij")
        dy = ky.reshape(1, -1) - r - qy.reshape(-1, 1)
        dx = kx.reshape(1, -1) - r - qx.reshape(-1, 1)
        #: ``(tile², halo²)``: key slot in the query's window / is the query itself
        self.in_window = (dy.abs() <= r) & (dx.abs() <= r)
        self.is_self = (dy == 0) & (dx == 0)
        for name in ("row_y", "row_x", "inside", "row_of", "halo_rows", "in_window", "is_self"):
            setattr(self, name, getattr(self, name).to(device))

    @property
    def blocks(self) -> int:
        return self.rows * self.cols

    @property
    def size(self) -> int:
        """Number of rows ``M`` (nodes plus padding slots)."""
        return self.blocks * self.tile * self.tile

    def to_rows(self, grid: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """``(C,h,w)`` → ``(M, C)`` rows (padding rows = ``fill``)."""
        rows = grid.new_full((self.size + 1, grid.shape[0]), fill)
        rows[self.row_of.reshape(-1)] = grid.reshape(grid.shape[0], -1).t()
        return rows[: self.size]

    def to_grid(self, rows: torch.Tensor) -> torch.Tensor:
        """``(M, C)`` rows → ``(C,h,w)``."""
        return rows[self.row_of.reshape(-1)].t().reshape(rows.shape[1], self.height, self.width)

    def keys(self, rows: torch.Tensor) -> torch.Tensor:
        """``(M, C)`` → ``(T, halo², C)`` halo rows (zeros outside the grid)."""
        padded = torch.cat([rows, rows.new_zeros(1, rows.shape[1])])
        return torch.index_select(padded, 0, self.halo_rows).reshape(self.blocks, self.halo * self.halo, rows.shape[1])

    def queries(self, rows: torch.Tensor) -> torch.Tensor:
        """``(M, C)`` → ``(T, tile², C)`` (a view)."""
        return rows.reshape(self.blocks, self.tile * self.tile, rows.shape[1])

    def key_valid(self) -> torch.Tensor:
        """``(T, 1, halo²)``: the halo slot is a grid node."""
        return (self.halo_rows < self.size).reshape(self.blocks, 1, -1)


class WindowAttention(nn.Module):
    """One A2GNN attention layer on the window graph: ``x_i ← Σ_j softmax_j(β cos + w·a_ij) x_j``."""

    def __init__(self, learn_beta: bool) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.ones(())) if learn_beta else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor, graph: WindowGraph) -> torch.Tensor:
        """``x (M, C)`` rows; ``bias (T, tile², halo²)``: ``w·a_ij`` in the window, −∞ outside → ``(M, C)``."""
        channels = x.shape[1]
        unit = F.normalize(x, dim=1)
        keys = graph.keys(torch.cat([unit, x], dim=1))  # one gather for both
        unit_keys, values = keys[..., :channels], keys[..., channels:]
        if self.beta is None:
            with torch.no_grad():
                cos = torch.bmm(graph.queries(unit), unit_keys.transpose(1, 2))
            logits = bias
        else:
            cos = torch.bmm(graph.queries(unit), unit_keys.transpose(1, 2))
            logits = self.beta * cos + bias
        drop = (cos.detach() < 0) & ~graph.is_self  # A2GNN: −∞ where cos < 0; a node always keeps itself
        weights = torch.softmax(logits.masked_fill(drop, float("-inf")), dim=-1)
        return torch.bmm(weights, values).reshape(-1, channels)


class A2GNN(nn.Module):
    """Linear → ReLU → dropout → attention layers → dropout → linear, on node rows ``(M, F)``."""

    def __init__(self, in_dim: int, classes: int, params: A2GNNParams) -> None:
        super().__init__()
        self.params = params
        self.embed = nn.Linear(in_dim, params.hidden, bias=False)
        self.layers = nn.ModuleList(WindowAttention(i == 0) for i in range(params.layers))
        self.classify = nn.Linear(params.hidden, classes)

    def forward(self, features: torch.Tensor, bias: torch.Tensor, graph: WindowGraph) -> torch.Tensor:
        """``features (M, F)`` rows, ``bias`` (see :class:`WindowAttention`) → logits ``(M, classes)``."""
        p = self.params
        x = F.dropout(F.relu(self.embed(features)), p.dropout, self.training)
        for layer in self.layers:
            x = layer(x, bias, graph)
        return self.classify(F.dropout(x, p.dropout, self.training))


def attention_bias(features: torch.Tensor, params: A2GNNParams, graph: WindowGraph) -> torch.Tensor:
    """``(T, tile², halo²)``: ``adjacency_weight · a_ij`` (``a_ij = exp(−mean_c |f_i − f_j|)`` of the raw
    features ``(F,h,w)``) inside the window and the grid, −∞ elsewhere (the query itself always kept)."""
    rows = graph.to_rows(features)
    queries, keys = graph.queries(rows), graph.keys(rows)
    distance = torch.cdist(queries, keys, p=1) / features.shape[0]
    keep = graph.in_window[None] & graph.key_valid()
    keep = keep | graph.is_self[None]
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


def gated_crf_loss(probs: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``Σ_i Σ_j K_ij (1 − ⟨y_i, y_j⟩) / N`` for ``probs (C,h,w)`` and ``kernel (D, h·w)``."""
    channels, height, width = probs.shape
    size = 2 * radius + 1
    neighbours = F.unfold(probs[None], size, padding=radius)[0].reshape(channels, size * size, height * width)
    agreement = (neighbours * probs.reshape(channels, 1, -1)).sum(0)
    return (kernel * (1.0 - agreement)).sum() / (height * width)


def seed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A2GNN's ``CE(background seeds) + CE(object seeds)``, each averaged over its own nodes.

    ``logits (M, C)``, ``targets (M,)`` channel indices, -1 = no seed.
    """
    loss = logits.new_zeros(())
    for chosen in (targets == 0, targets > 0):
        if chosen.any():
            loss = loss + F.cross_entropy(logits[chosen], targets[chosen])
    return loss


def standardise(features: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit variance over the nodes of ``features (F,h,w)``."""
    mean = features.mean(dim=(1, 2), keepdim=True)
    std = features.std(dim=(1, 2), keepdim=True).clamp(min=1e-6)
    return (features - mean) / std


#: graphs up to this many nodes train on one CPU thread: their operations are too small for intra-op
#: threads to pay (on a busy machine every parallel region waits for a time slice)
SINGLE_THREAD_NODES = 16384


def train_a2gnn(data: PropagationInput, features: torch.Tensor, stride: int, params: A2GNNParams,
                seed: int = 0) -> torch.Tensor:
    """Train A2GNN on one image and return node probabilities ``(K+1, h, w)``.

    ``features``: ``(F, h, w)`` AffinityNet features of the image, ``h = ceil(H/s)``.
    """
    threads = torch.get_num_threads()
    if features.shape[-2] * features.shape[-1] <= SINGLE_THREAD_NODES:
        torch.set_num_threads(1)
    try:
        return _train(data, features, stride, params, seed)
    finally:
        torch.set_num_threads(threads)


def _train(data: PropagationInput, features: torch.Tensor, stride: int, params: A2GNNParams, seed: int) -> torch.Tensor:
    height, width = features.shape[-2:]
    device = features.device  # the graph, the model and every per-image tensor live where the features are
    torch.manual_seed(seed)
    graph = WindowGraph(height, width, params.radius, device=device)
    targets = torch.from_numpy(seeds_at_stride(data.seed_channels(), data.channels, stride))[:height, :width].to(device)
    allowed = allowed_at_stride(data.allowed, stride)
    mask = None if allowed is None else torch.from_numpy(allowed[:, :height, :width]).to(device)
    if mask is not None:  # a seed can only teach a channel allowed at its node
        index = targets.clamp(min=0)
        targets = torch.where((targets >= 0) & mask.gather(0, index[None])[0], targets, torch.full_like(targets, -1))
    target_rows = graph.to_rows(targets[None].float(), fill=-1).long()[:, 0]
    mask_rows = None if mask is None else graph.to_rows(mask.float(), fill=1.0) > 0
    bias = attention_bias(features, params, graph)
    inputs = graph.to_rows(standardise(features))
    model = A2GNN(features.shape[0], data.channels, params).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    kernel = None
    if params.crf_weight > 0:
        kernel = gated_crf_kernel(data.image, stride, height, width, params.crf_radius, params.crf_sigma_xy,
                                  params.crf_sigma_rgb).to(device)

    def masked_logits() -> torch.Tensor:
        logits = model(inputs, bias, graph)
        return logits if mask_rows is None else logits.masked_fill(~mask_rows, -1e4)

    if (target_rows >= 0).any():
        model.train()
        for epoch in range(2 * params.epochs):
            logits = masked_logits()
            loss = seed_loss(logits, target_rows)
            if epoch >= params.epochs and kernel is not None:
                probs = graph.to_grid(torch.softmax(logits, dim=1))
                loss = loss + params.crf_weight * gated_crf_loss(probs, kernel, params.crf_radius)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        return graph.to_grid(torch.softmax(masked_logits(), dim=1))


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
    height, width = data.size
    features, node_stride = pool_features(features, stride, params.graph_stride)
    probs = train_a2gnn(data, features, node_stride, params, seed)
    scores = upsample_scores(probs, node_stride, height, width)
    if params.rw_weight > 0 and affinity is not None:
        walked = cam_walk(data, affinity, stride, params)
        if walked is not None:
            scores = scores + params.rw_weight * walked
    return apply_allowed(scores, data.allowed)

