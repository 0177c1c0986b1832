"""Plain float64 references of the tree ops (grid MST, minimax propagation, tree filter).

Written for clarity, not speed: the minimax and tree-filter references compute every pairwise
path quantity explicitly (O(N^2) memory), so keep them to small images. The compiled ops in
:mod:`kernels.tree` are tested against these.
"""

from __future__ import annotations

import numpy as np
import torch


def grid_edges(height: int, width: int) -> np.ndarray:
    """(E, 2) int64 endpoints of the 4-connected grid edges, node index ``y*W + x``.

    Order (APro/TreeFilter's): the ``(H-1)*W`` vertical pairs row-major by the upper pixel, then the
    ``H*(W-1)`` horizontal pairs row-major by the left pixel.
    """
    idx = np.arange(height * width, dtype=np.int64).reshape(height, width)
    vertical = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    horizontal = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    return np.concatenate([vertical, horizontal], axis=0).reshape(-1, 2)


def squared_distances(feature: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``sum_c (f_c[u] - f_c[v])^2`` per edge for a (C, N) array, summed in channel order (float64)."""
    feature = np.asarray(feature, dtype=np.float64)
    total = np.zeros(len(edges), dtype=np.float64)
    for channel in feature:
        diff = channel[edges[:, 0]] - channel[edges[:, 1]]
        total = total + diff * diff
    return total


def grid_edge_weights(guide: torch.Tensor) -> np.ndarray:
    """(B, E) float64 grid MST edge weights ``sum_c (g_u - g_v)^2 + 1`` in :func:`grid_edges` order."""
    b, c, h, w = guide.shape
    edges = grid_edges(h, w)
    flat = guide.detach().cpu().double().numpy().reshape(b, c, h * w)
    return np.stack([squared_distances(flat[i], edges) + 1.0 for i in range(b)]) if b else np.zeros((0, len(edges)))


class _Sets:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x


def grid_mst_kruskal(guide: torch.Tensor) -> torch.Tensor:
    """Straightforward Kruskal: edges sorted by (weight, edge index), union-find.

    Returns (B, H*W-1, 2) int64, rows in ascending edge index order, each row (u, v) with u < v,
    which is exactly the documented output of :func:`kernels.tree.grid_mst`.
    """
    b, _, h, w = guide.shape
    n = h * w
    edges = grid_edges(h, w)
    weights = grid_edge_weights(guide)
    out = np.zeros((b, n - 1, 2), dtype=np.int64)
    for i in range(b):
        order = np.lexsort((np.arange(len(edges)), weights[i]))
        sets = _Sets(n)
        chosen = []
        for e in order:
            ru, rv = sets.find(int(edges[e, 0])), sets.find(int(edges[e, 1]))
            if ru != rv:
                sets.parent[ru] = rv
                chosen.append(e)
                if len(chosen) == n - 1:
                    break
        out[i] = edges[np.sort(np.asarray(chosen, dtype=np.int64))] if chosen else np.zeros((0, 2), np.int64)
    return torch.from_numpy(out)


def scipy_mst_total_weight(guide: torch.Tensor) -> list[float]:
    """Total MST weight per image by :func:`scipy.sparse.csgraph.minimum_spanning_tree` (weights >= 1)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    b, _, h, w = guide.shape
    edges = grid_edges(h, w)
    totals = []
    for weights in grid_edge_weights(guide):
        graph = coo_matrix((weights, (edges[:, 0], edges[:, 1])), shape=(h * w, h * w)).tocsr()
        totals.append(float(minimum_spanning_tree(graph).sum()))
    return totals


def tree_edge_weights(tree: torch.Tensor, embed: torch.Tensor) -> np.ndarray:
    """(B, N-1) float64 ``sum_e (embed_u - embed_v)^2`` on the tree edges (APro's GP weights)."""
    b, e = embed.shape[:2]
    flat = embed.detach().cpu().double().numpy().reshape(b, e, -1)
    edges = tree.detach().cpu().numpy().astype(np.int64)
    return np.stack([squared_distances(flat[i], edges[i]) for i in range(b)]) if b else np.zeros((0, 0))


def _adjacency(edges: np.ndarray, n: int) -> list[list[tuple[int, int]]]:
    adjacent: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k, (u, v) in enumerate(edges):
        adjacent[int(u)].append((int(v), k))
        adjacent[int(v)].append((int(u), k))
    return adjacent


def path_edge_sets(edges: np.ndarray, n: int) -> list[list[list[int]]]:
    """``paths[i][j]`` = indices of the tree edges on the path i -> j (by a walk from every node)."""
    adjacent = _adjacency(edges, n)
    paths = []
    for source in range(n):
        row: list[list[int] | None] = [None] * n
        row[source] = []
        stack = [source]
        while stack:
            x = stack.pop()
            for y, k in adjacent[x]:
                if row[y] is None:
                    row[y] = row[x] + [k]
                    stack.append(y)
        if any(r is None for r in row):
            raise ValueError("tree does not connect all nodes")
        paths.append(row)
    return paths


def pairwise_path_max(edges: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """(N, N) largest edge weight on the tree path between every pair (0 on the diagonal)."""
    paths = path_edge_sets(edges, n)
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(n):
            if paths[i][j]:
                out[i, j] = weights[paths[i][j]].max()
    return out


def minimax_propagation(values: torch.Tensor, tree: torch.Tensor, embed: torch.Tensor, zeta: float) -> torch.Tensor:
    """Brute-force APro global propagation (float64, all pairs).

    ``out_i = (p_i + sum_{j!=i} p_j exp(-W_ij/zeta^2)) / (1 + sum_{j!=i} exp(-W_ij/zeta^2))`` with
    ``W_ij`` the largest ``sum_e (embed_u - embed_v)^2`` on the tree path i -> j.
    """
    b, c, h, w = values.shape
    n = h * w
    p = values.detach().cpu().double().numpy().reshape(b, c, n)
    weights = tree_edge_weights(tree, embed)
    edges = tree.detach().cpu().numpy().astype(np.int64)
    out = np.zeros_like(p)
    for i in range(b):
        kernel = np.exp(-pairwise_path_max(edges[i], weights[i], n) / (zeta * zeta))  # diagonal: exp(0) = 1
        out[i] = (p[i] @ kernel.T) / kernel.sum(axis=1)
    return torch.from_numpy(out).reshape(b, c, h, w)


def path_incidence(edges: np.ndarray, n: int) -> np.ndarray:
    """(N, N, N-1) float64: 1 where tree edge k lies on the path i -> j."""
    paths = path_edge_sets(edges, n)
    incidence = np.zeros((n, n, max(n - 1, 0)), dtype=np.float64)
    for i in range(n):
        for j in range(n):
            incidence[i, j, paths[i][j]] = 1.0
    return incidence


def tree_filter(features: torch.Tensor, embed: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """Brute-force TreeFilter in float64, differentiable w.r.t. ``features`` and ``embed``.

    Edge weight ``w = exp(-sum_e (embed_u - embed_v)^2)``; similarity ``S_ij`` = product of the
    weights on the path i -> j (``exp`` of minus the summed distances); ``out = S x / S 1``.
    """
    b, c, h, w = features.shape
    n = h * w
    x = features.double().reshape(b, c, n)
    emb = embed.double().reshape(b, embed.shape[1], n)
    edges = tree.detach().cpu().numpy().astype(np.int64)
    outs = []
    for i in range(b):
        incidence = torch.from_numpy(path_incidence(edges[i], n))
        u, v = torch.from_numpy(edges[i][:, 0]), torch.from_numpy(edges[i][:, 1])
        dist = ((emb[i][:, u] - emb[i][:, v]) ** 2).sum(0)  # (N-1,)
        similarity = torch.exp(-(incidence @ dist)) if n > 1 else torch.ones(1, 1, dtype=torch.float64)
        outs.append((x[i] @ similarity.T) / similarity.sum(1))
    return torch.stack(outs).reshape(b, c, h, w) if outs else x.reshape(b, c, h, w)


def tree_filter_bfs(features: torch.Tensor, embed: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """TreeFilter's own algorithm written plainly in NumPy (float64, forward only; benchmark baseline).

    BFS from pixel 0 (``scipy.sparse.csgraph.breadth_first_order``), then a Python loop over the BFS
    order leaf -> root (``U_p += w U_k``) and root -> leaf (``A_k = U_k (1 - w^2) + w A_p``) with the
    normaliser carried as one more channel; same result as :func:`tree_filter`.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order

    b, c, h, w = features.shape
    n = h * w
    x = features.detach().cpu().double().numpy().reshape(b, c, n)
    emb = embed.detach().cpu().double().numpy().reshape(b, embed.shape[1], n)
    edges = tree.detach().cpu().numpy().astype(np.int64)
    out = np.empty_like(x)
    for i in range(b):
        graph = coo_matrix((np.ones(n - 1), (edges[i][:, 0], edges[i][:, 1])), shape=(n, n))
        order, predecessor = breadth_first_order(graph, 0, directed=False, return_predecessors=True)
        child, parent = order[1:], predecessor[order[1:]]
        weight = np.exp(-((emb[i][:, child] - emb[i][:, parent]) ** 2).sum(0))
        up = np.concatenate([x[i], np.ones((1, n))]).T.copy()  # (N, C+1): rows are nodes
        for k in range(n - 2, -1, -1):
            up[parent[k]] += weight[k] * up[child[k]]
        full = up.copy()
        for k in range(n - 1):
            full[child[k]] = up[child[k]] * (1.0 - weight[k] ** 2) + weight[k] * full[parent[k]]
        out[i] = (full[:, :c] / full[:, c:]).T
    return torch.from_numpy(out).reshape(b, c, h, w)
