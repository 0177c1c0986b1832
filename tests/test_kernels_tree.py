"""Tree kernels (grid MST, APro minimax propagation, TreeFilter) vs float64 brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels import grid_mst, minimax_propagation, minimax_propagation_apro_reference, tree_filter
from kernels.reference import tree as ref

TOL = {torch.float32: 2e-6, torch.float64: 1e-11}
SHAPES = [(1, 1, 1, 1), (1, 2, 1, 9), (1, 1, 8, 1), (2, 3, 5, 7), (3, 1, 6, 6), (1, 4, 9, 11)]


def _rand(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _random_tree(batch: int, n: int, seed: int) -> torch.Tensor:
    """Random spanning trees on n nodes (arbitrary pairs, not grid neighbours), random edge order."""
    rng = np.random.default_rng(seed)
    trees = []
    for _ in range(batch):
        labels = rng.permutation(n)
        edges = [(labels[i], labels[rng.integers(0, i)]) for i in range(1, n)]
        edges = [edges[k] for k in rng.permutation(n - 1)]
        trees.append(np.asarray(edges, dtype=np.int64).reshape(n - 1, 2))
    return torch.from_numpy(np.stack(trees))


def _connected(edges: np.ndarray, n: int) -> bool:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(int(u)), find(int(v))
        if ru == rv:
            return False
        parent[ru] = rv
    return len({find(i) for i in range(n)}) == 1


# --------------------------------------------------------------------------- grid MST


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_grid_mst_matches_kruskal_reference(kernels_built, shape, dtype):
    guide = _rand(*shape, seed=sum(shape), dtype=dtype)
    tree = grid_mst(guide)
    b, _, h, w = shape
    assert tree.dtype == torch.int64 and tree.shape == (b, h * w - 1, 2)
    assert torch.equal(tree, ref.grid_mst_kruskal(guide))
    assert torch.equal(torch.ops.wsss.grid_mst_boruvka(guide), tree)  # the CUDA algorithm, run on CPU


def test_grid_mst_is_a_spanning_tree_of_minimum_weight(kernels_built):
    guide = _rand(3, 3, 21, 17, seed=1, dtype=torch.float32)
    tree = grid_mst(guide).numpy()
    weights = ref.grid_edge_weights(guide)
    edges = ref.grid_edges(21, 17)
    index = {(int(u), int(v)): k for k, (u, v) in enumerate(edges)}
    for b in range(3):
        assert tree[b].shape == (21 * 17 - 1, 2)
        assert _connected(tree[b], 21 * 17)
        assert all((int(u), int(v)) in index for u, v in tree[b])  # grid neighbours, u < v
        total = sum(weights[b][index[(int(u), int(v))]] for u, v in tree[b])
        assert total == pytest.approx(ref.scipy_mst_total_weight(guide)[b], rel=1e-12)


def test_grid_mst_breaks_ties_by_edge_index(kernels_built):
    # All weights equal: Kruskal by edge index takes every vertical edge, then row 0's horizontal ones.
    tree = grid_mst(torch.zeros(2, 1, 4, 5))
    vertical = [(i, i + 5) for i in range(15)]
    horizontal = [(i, i + 1) for i in range(4)]
    assert tree[0].tolist() == [list(e) for e in vertical + horizontal]
    assert torch.equal(tree[0], tree[1])
    # Heavy ties everywhere: quantised guide; Borůvka, Kruskal and the reference agree exactly.
    guide = torch.floor(_rand(2, 2, 13, 10, seed=3) * 3)
    tree = grid_mst(guide)
    assert torch.equal(tree, ref.grid_mst_kruskal(guide))
    assert torch.equal(torch.ops.wsss.grid_mst_boruvka(guide), tree)
    assert torch.equal(grid_mst(guide), tree)


def test_grid_mst_parallel_over_batch_equals_single_images(kernels_built):
    guide = _rand(4, 3, 40, 33, seed=4, dtype=torch.float32)
    batched = grid_mst(guide)
    for b in range(4):
        assert torch.equal(batched[b], grid_mst(guide[b:b + 1])[0])


def test_grid_mst_large_image_matches_scipy_weight(kernels_built):
    guide = _rand(1, 3, 200, 150, seed=5, dtype=torch.float32)  # big enough for the parallel sort
    tree = grid_mst(guide)[0].numpy()
    n = 200 * 150
    assert _connected(tree, n)
    weights = ref.grid_edge_weights(guide)[0]
    edges = ref.grid_edges(200, 150)
    key = edges[:, 0] * n + edges[:, 1]
    position = np.searchsorted(key, tree[:, 0] * n + tree[:, 1], sorter=np.argsort(key))
    picked = np.argsort(key)[position]
    assert np.array_equal(edges[picked], tree)
    assert weights[picked].sum() == pytest.approx(ref.scipy_mst_total_weight(guide)[0], rel=1e-12)


# --------------------------------------------------------------------------- minimax propagation


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_minimax_matches_brute_force(kernels_built, shape, dtype):
    b, c, h, w = shape
    embed = _rand(b, 3, h, w, seed=10 + sum(shape), dtype=dtype)
    values = _rand(*shape, seed=20 + sum(shape), dtype=dtype)
    tree = grid_mst(embed)
    for zeta in (0.2, 0.7):
        want = ref.minimax_propagation(values, tree, embed, zeta)
        got = minimax_propagation(values, tree, embed, zeta)
        assert got.dtype == dtype and got.shape == shape
        torch.testing.assert_close(got.double(), want, rtol=0, atol=TOL[dtype])
        apro = minimax_propagation_apro_reference(values, tree, embed, zeta)
        torch.testing.assert_close(apro.double(), want, rtol=0, atol=TOL[dtype])
        ranges = torch.ops.wsss.minimax_propagation_ranges(values, tree, embed, zeta)  # the CUDA formulation
        torch.testing.assert_close(ranges.double(), want, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("seed", [0, 1])
def test_minimax_on_arbitrary_spanning_trees(kernels_built, seed):
    b, c, h, w = 3, 2, 7, 9
    tree = _random_tree(b, h * w, seed)
    embed = _rand(b, 2, h, w, seed=seed)
    values = _rand(b, c, h, w, seed=seed + 7)
    want = ref.minimax_propagation(values, tree, embed, 0.3)
    torch.testing.assert_close(minimax_propagation(values, tree, embed, 0.3), want, rtol=0, atol=1e-11)
    torch.testing.assert_close(minimax_propagation(values, tree.int(), embed, 0.3), want, rtol=0, atol=1e-11)
    torch.testing.assert_close(minimax_propagation_apro_reference(values, tree, embed, 0.3), want, rtol=0, atol=1e-11)
    torch.testing.assert_close(torch.ops.wsss.minimax_propagation_ranges(values, tree, embed, 0.3), want,
                               rtol=0, atol=1e-11)


def test_minimax_ties_and_tiny_zeta(kernels_built):
    # Repeated weights (a quantised embedding) and affinities that underflow to 0.
    embed = torch.floor(_rand(2, 1, 8, 8, seed=30) * 2)
    values = _rand(2, 3, 8, 8, seed=31)
    tree = grid_mst(embed)
    for zeta in (1e-3, 0.5, 50.0):
        want = ref.minimax_propagation(values, tree, embed, zeta)
        torch.testing.assert_close(minimax_propagation(values, tree, embed, zeta), want, rtol=0, atol=1e-11)
        torch.testing.assert_close(minimax_propagation_apro_reference(values, tree, embed, zeta), want,
                                   rtol=0, atol=1e-11)


def test_minimax_channels_are_independent_and_deterministic(kernels_built):
    embed = _rand(2, 3, 30, 41, seed=40, dtype=torch.float32)
    values = _rand(2, 21, 30, 41, seed=41, dtype=torch.float32)
    tree = grid_mst(embed)
    full = minimax_propagation(values, tree, embed, 0.1)
    assert torch.equal(full, minimax_propagation(values, tree, embed, 0.1))
    single = torch.cat([minimax_propagation(values[:, c:c + 1], tree, embed, 0.1) for c in range(21)], 1)
    torch.testing.assert_close(full, single, rtol=0, atol=1e-6)
    apro = minimax_propagation_apro_reference(values, tree, embed, 0.1)
    torch.testing.assert_close(full, apro, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- tree filter


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_tree_filter_matches_brute_force(kernels_built, shape, dtype):
    b, c, h, w = shape
    embed = _rand(b, 2, h, w, seed=50 + sum(shape), dtype=dtype)
    features = _rand(*shape, seed=60 + sum(shape), dtype=dtype)
    tree = grid_mst(embed)
    got = tree_filter(features, embed, tree)
    assert got.dtype == dtype and got.shape == shape
    torch.testing.assert_close(got.double(), ref.tree_filter(features, embed, tree), rtol=0, atol=TOL[dtype])


def test_tree_filter_on_arbitrary_spanning_trees(kernels_built):
    tree = _random_tree(2, 6 * 5, 3)
    embed = _rand(2, 3, 6, 5, seed=70) * 0.5
    features = _rand(2, 4, 6, 5, seed=71)
    torch.testing.assert_close(tree_filter(features, embed, tree), ref.tree_filter(features, embed, tree),
                               rtol=0, atol=1e-12)


def test_tree_filter_gradcheck(kernels_built):
    tree = grid_mst(_rand(2, 3, 3, 4, seed=80))
    features = _rand(2, 2, 3, 4, seed=81).requires_grad_()
    embed = (_rand(2, 3, 3, 4, seed=82) * 0.7).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, e: tree_filter(x, e, tree), (features, embed))
    # Only one input requiring grad, and an arbitrary (non-grid) tree.
    other = _random_tree(2, 12, 4)
    assert torch.autograd.gradcheck(lambda x: tree_filter(x, embed.detach(), other), (features,))
    assert torch.autograd.gradcheck(lambda e: tree_filter(features.detach(), e, other), (embed,))


def test_tree_filter_gradients_match_reference_autograd(kernels_built):
    tree = grid_mst(_rand(2, 3, 6, 7, seed=90))
    features = _rand(2, 3, 6, 7, seed=91).requires_grad_()
    embed = _rand(2, 3, 6, 7, seed=92).requires_grad_()
    weight = _rand(2, 3, 6, 7, seed=93)
    (tree_filter(features, embed, tree) * weight).sum().backward()
    got = features.grad.clone(), embed.grad.clone()
    features.grad = embed.grad = None
    (ref.tree_filter(features, embed, tree) * weight).sum().backward()
    torch.testing.assert_close(got[0], features.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(got[1], embed.grad, rtol=0, atol=1e-12)


def test_tree_filter_float32_backward_and_no_grad(kernels_built):
    tree = grid_mst(_rand(1, 3, 5, 5, seed=95))
    features = _rand(1, 2, 5, 5, seed=96, dtype=torch.float32).requires_grad_()
    embed = _rand(1, 3, 5, 5, seed=97, dtype=torch.float32).requires_grad_()
    out = tree_filter(features, embed, tree)
    out.sum().backward()
    assert features.grad.dtype == torch.float32 and embed.grad.dtype == torch.float32
    # Rows of the (normalised) filter sum to one: d(sum out)/dx sums to the pixel count per channel.
    assert features.grad.sum().item() == pytest.approx(2 * 25, rel=1e-5)
    with torch.no_grad():
        assert not tree_filter(features, embed, tree).requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tree_filter_cuda_formulation_matches_cpu_kernels(kernels_built, dtype):
    # The CUDA path (ATen ops around tree_filter_passes), run on CPU, against the fused CPU kernels.
    b, c, h, w = 2, 3, 9, 8
    tree = torch.cat([grid_mst(_rand(1, 3, h, w, seed=100)), _random_tree(1, h * w, 5)])
    features = _rand(b, c, h, w, seed=101, dtype=dtype)
    embed = _rand(b, 2, h, w, seed=102, dtype=dtype)
    grad = _rand(b, c, h, w, seed=103, dtype=dtype) - 0.5
    topology = torch.ops.wsss.tree_filter_topology(tree, h * w)
    tol = dict(rtol=0, atol=TOL[dtype])
    torch.testing.assert_close(torch.ops.wsss.tree_filter_forward_composite(features, embed, topology),
                               torch.ops.wsss.tree_filter_forward(features, embed, topology), **tol)
    composite = torch.ops.wsss.tree_filter_backward_composite(grad, features, embed, topology)
    fused = torch.ops.wsss.tree_filter_backward(grad, features, embed, topology)
    for got, want in zip(composite, fused):
        torch.testing.assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=TOL[dtype])


def test_tree_filter_bfs_reference_matches_brute_force():
    tree = _random_tree(2, 20, 6)
    features, embed = _rand(2, 3, 4, 5, seed=104), _rand(2, 2, 4, 5, seed=105)
    torch.testing.assert_close(ref.tree_filter_bfs(features, embed, tree), ref.tree_filter(features, embed, tree),
                               rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- errors


def test_errors_name_the_problem(kernels_built):
    image = torch.rand(1, 2, 4, 4)
    tree = grid_mst(image)
    with pytest.raises(ValueError, match="guide must be 4-D"):
        grid_mst(torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="guide must be float32 or float64"):
        grid_mst(torch.zeros(1, 1, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="H, W >= 1"):
        grid_mst(torch.rand(1, 1, 0, 3))
    with pytest.raises(ValueError, match="torch.Tensor"):
        grid_mst(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"tree must have shape \(B, H\*W-1, 2\) = \(1, 15, 2\)"):
        minimax_propagation(image, tree[:, :-1], image, 0.1)
    with pytest.raises(ValueError, match="tree must be int64"):
        minimax_propagation(image, tree.float(), image, 0.1)
    with pytest.raises(ValueError, match="embed dtype torch.float64 differs from values dtype torch.float32"):
        minimax_propagation(image, tree, image.double(), 0.1)
    with pytest.raises(ValueError, match="differ in batch or spatial size"):
        minimax_propagation(image, tree, torch.rand(1, 2, 4, 5), 0.1)
    for zeta in (0, -1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="zeta must be a finite number > 0"):
            minimax_propagation(image, tree, image, zeta)
    with pytest.raises(ValueError, match="features must be 4-D"):
        tree_filter(image[0], image, tree)
    with pytest.raises(ValueError, match="embed must be on a CPU or CUDA device"):
        tree_filter(image, image.to("meta"), tree)
    bad = tree.clone()
    bad[0, 0, 1] = 16
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\), got \[0, 16\]"):
        minimax_propagation(image, bad, image, 0.1)
    with pytest.raises(ValueError, match="outside|lie in"):
        tree_filter(image, image, bad)
    cycle = tree.clone()
    cycle[0, -1] = cycle[0, 0].flip(0)  # repeat an edge: a cycle, and one node left unconnected
    for fn in (minimax_propagation, minimax_propagation_apro_reference):
        with pytest.raises(ValueError, match="is not a spanning tree"):
            fn(image, cycle, image, 0.1)
    with pytest.raises(ValueError, match="is not a spanning tree"):
        tree_filter(image, image, cycle)


# --------------------------------------------------------------------------- CUDA parity


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(kernels_built, dtype):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if kernels_built != "cuda":
        pytest.skip("cuda kernel variant not built (python -m kernels.build --variant cuda)")
    for shape in [(1, 3, 1, 1), (2, 3, 1, 17), (2, 3, 33, 29), (1, 3, 128, 96)]:
        guide = _rand(*shape, seed=sum(shape), dtype=dtype)
        tree = grid_mst(guide)
        assert torch.equal(grid_mst(guide.cuda()).cpu(), tree)
        values = _rand(shape[0], 5, *shape[2:], seed=7, dtype=dtype)
        torch.testing.assert_close(minimax_propagation(values.cuda(), tree.cuda(), guide.cuda(), 0.2).cpu(),
                                   minimax_propagation(values, tree, guide, 0.2), rtol=0, atol=TOL[dtype] * 10)
        outputs = {}
        for device in ("cpu", "cuda"):
            x = values.to(device).requires_grad_()
            e = guide.to(device).requires_grad_()
            out = tree_filter(x, e, tree.to(device))
            (out * torch.arange(out.numel(), device=device).reshape(out.shape).sin()).sum().backward()
            outputs[device] = (out.detach().cpu(), x.grad.cpu(), e.grad.cpu())
        for got, want in zip(outputs["cuda"], outputs["cpu"]):
            torch.testing.assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-10,
                                       atol=TOL[dtype] * 10)
