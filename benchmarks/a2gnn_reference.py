"""The straightforward A2GNN (SEEDS_ANATOMY §1.8), kept as the reference the propagation stage is measured against.

One image at a time, as the seed's ``train_infer_A2GNN_others.py``: every quantity over node pairs is a dense
``N×N`` matrix (``N = h·w`` nodes) with the pairs outside the square window masked, the network is a stack of
``nn.Linear`` and dense attention layers, and the epochs run one after the other with ``F.dropout``. The inputs
and the choices that are the project's, not the seed's, are the stage's own (:mod:`wsss.propagation.a2gnn`):
the same node features (AffinityNet features pooled to the node stride, standardised per channel instead of
the seed's L1 normalisation of 5632-d ResNet-38 features), the same seed targets, the box masks instead of the
MIL loss. The seed's Python double loop that fills the adjacency is replaced by one ``cdist`` (the same
numbers), so that the reference is slow only where the seed's algorithm is.

``reference_a2gnn`` returns node probabilities ``(K+1, h, w)`` like :func:`wsss.propagation.a2gnn.train_a2gnn`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.transforms import normalize
from wsss.params import A2GNNParams
from wsss.propagation.a2gnn import initial_parameters, standardise
from wsss.propagation.inputs import PropagationInput, allowed_at_stride, seeds_at_stride


def node_coordinates(height: int, width: int) -> torch.Tensor:
    """``(N, 2)`` float (y, x) of the nodes in raster order."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([ys.reshape(-1), xs.reshape(-1)], 1).float()


def window_matrix(height: int, width: int, radius: int) -> torch.Tensor:
    """``(N, N)`` bool: node ``j`` lies in the ``(2r+1)²`` square window of node ``i`` (``i`` itself included)."""
    coords = node_coordinates(height, width)
    return torch.cdist(coords, coords, p=float("inf")) <= radius


class DenseAttention(nn.Module):
    """``P = softmax_row(β·cos(x_i, x_j) + w·A + M)``, ``M = −∞`` outside the window or where ``cos < 0``."""

    def __init__(self, learn_beta: bool) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.ones(())) if learn_beta else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(x, dim=1)
        cos = unit @ unit.t()
        logits = bias + (self.beta * cos if self.beta is not None else 0.0)
        drop = ~window | ((cos.detach() < 0) & ~torch.eye(len(x), dtype=torch.bool))
        return torch.softmax(logits.masked_fill(drop, float("-inf")), dim=1) @ x


class DenseA2GNN(nn.Module):
    def __init__(self, in_dim: int, classes: int, params: A2GNNParams, generator: torch.Generator) -> None:
        super().__init__()
        self.params = params
        self.embed = nn.Linear(in_dim, params.hidden, bias=False)
        self.layers = nn.ModuleList(DenseAttention(i == 0) for i in range(params.layers))
        self.classify = nn.Linear(params.hidden, classes)
        w_in, w_out, b_out = initial_parameters(in_dim, params.hidden, classes, generator)  # the stage's draw
        with torch.no_grad():
            self.embed.weight.copy_(w_in.t())
            self.classify.weight.copy_(w_out.t())
            self.classify.bias.copy_(b_out)

    def forward(self, features: torch.Tensor, bias: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.embed(features)), self.params.dropout, self.training)
        for layer in self.layers:
            x = layer(x, bias, window)
        return self.classify(F.dropout(x, self.params.dropout, self.training))


def dense_crf_kernel(image: np.ndarray, stride: int, height: int, width: int, params: A2GNNParams) -> torch.Tensor:
    """``(N, N)`` gated-CRF kernel over the radius-``crf_radius`` window of the node grid, 0 on the diagonal."""
    tensor = torch.from_numpy(normalize(image))[None]
    tensor = F.pad(tensor, (0, (-tensor.shape[-1]) % stride, 0, (-tensor.shape[-2]) % stride), mode="replicate")
    colour = (F.avg_pool2d(tensor, stride)[0] if stride > 1 else tensor[0])[:, :height, :width]
    colour = colour.reshape(3, -1).t()
    coords = node_coordinates(height, width)
    kernel = torch.exp(-0.5 * torch.cdist(coords, coords) ** 2 / params.crf_sigma_xy ** 2
                       - 0.5 * torch.cdist(colour, colour) ** 2 / params.crf_sigma_rgb ** 2)
    kernel = kernel * window_matrix(height, width, params.crf_radius)
    return kernel.fill_diagonal_(0.0)


def reference_a2gnn(data: PropagationInput, features: torch.Tensor, stride: int, params: A2GNNParams,
                    seed: int = 0) -> torch.Tensor:
    """Train the dense A2GNN on one image; ``features (F, h, w)`` at ``stride`` → probabilities ``(K+1, h, w)``."""
    channels, (height, width) = data.channels, features.shape[-2:]
    torch.manual_seed(seed)
    targets = torch.from_numpy(seeds_at_stride(data.seed_channels(), data.channels, stride))[:height, :width]
    allowed = allowed_at_stride(data.allowed, stride)
    mask = None if allowed is None else torch.from_numpy(allowed[:, :height, :width]).reshape(channels, -1).t()
    targets = targets.reshape(-1)
    if mask is not None:
        index = targets.clamp(min=0)
        targets = torch.where((targets >= 0) & mask.gather(1, index[:, None])[:, 0], targets, -1)
    raw = features.reshape(features.shape[0], -1).t()
    window = window_matrix(height, width, params.radius)
    adjacency = torch.exp(-torch.cdist(raw, raw, p=1) / raw.shape[1])
    bias = params.adjacency_weight * adjacency
    inputs = standardise(features).reshape(features.shape[0], -1).t()
    model = DenseA2GNN(features.shape[0], channels, params, torch.Generator().manual_seed(seed))
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    kernel = dense_crf_kernel(data.image, stride, height, width, params) if params.crf_weight > 0 else None

    def logits_of() -> torch.Tensor:
        logits = model(inputs, bias, window)
        return logits if mask is None else logits.masked_fill(~mask, -1e4)

    if (targets >= 0).any():
        model.train()
        for epoch in range(2 * params.epochs):
            logits = logits_of()
            loss = logits.new_zeros(())
            for chosen in (targets == 0, targets > 0):
                if chosen.any():
                    loss = loss + F.cross_entropy(logits[chosen], targets[chosen])
            if epoch >= params.epochs and kernel is not None:
                probs = torch.softmax(logits, dim=1)
                agreement = probs @ probs.t()
                loss = loss + params.crf_weight * (kernel * (1.0 - agreement)).sum() / len(probs)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        return torch.softmax(logits_of(), dim=1).t().reshape(channels, height, width)
