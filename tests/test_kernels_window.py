"""The window pair products of A2GNN's attention (:mod:`kernels.window`) against shifted-view references."""

from __future__ import annotations

import pytest
import torch

from kernels.reference.window import window_aggregate_shifted, window_dot_shifted, window_transpose_shifted
from kernels.window import window_aggregate, window_dot, window_self_dot, window_transpose

TOL = {torch.float32: 2e-5, torch.float64: 1e-11}
#: (B, h, w, C, radius): channels off the 16-wide vectors, grids smaller than the window, a 1×1 grid
CASES = [(1, 5, 7, 3, 1), (2, 6, 9, 20, 2), (1, 19, 20, 64, 3), (2, 3, 2, 17, 3), (1, 1, 1, 5, 2), (1, 4, 4, 8, 0)]


def _rand(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_window_ops_match_the_shifted_reference(case, dtype, kernels_built):
    batch, height, width, channels, radius = case
    pairs = (2 * radius + 1) ** 2
    a, b = _rand(batch, height, width, channels, seed=1, dtype=dtype), _rand(batch, height, width, channels, seed=2,
                                                                               dtype=dtype)
    weights = _rand(batch, height, width, pairs, seed=3, dtype=dtype)
    tol = dict(rtol=TOL[dtype], atol=TOL[dtype] * channels)
    torch.testing.assert_close(window_dot(a, b, radius).double(), window_dot_shifted(a, b, radius), **tol)
    torch.testing.assert_close(window_self_dot(a, radius).double(), window_dot_shifted(a, a, radius), **tol)
    torch.testing.assert_close(window_aggregate(weights, b, radius).double(),
                               window_aggregate_shifted(weights, b, radius), **tol)
    torch.testing.assert_close(window_transpose(weights, radius).double(), window_transpose_shifted(weights, radius))


def test_window_transpose_is_the_pair_from_the_other_side(kernels_built):
    """Σ_i Σ_d w[i,d] · u_i · v_{i+d} is the same sum seen from the neighbours: Σ_j Σ_d wᵀ[j,d] · v_j · u_{j+d}."""
    u, v = _rand(1, 5, 6, 1, seed=4), _rand(1, 5, 6, 1, seed=5)
    weights = _rand(1, 5, 6, 25, seed=6)
    forward = (weights * window_dot(u, v, 2)).sum()
    backward = (window_transpose(weights, 2) * window_dot(v, u, 2)).sum()
    torch.testing.assert_close(forward, backward)
    torch.testing.assert_close(window_transpose(window_transpose(weights, 2), 2),
                               weights * window_transpose_shifted(torch.ones_like(weights), 2))


@pytest.mark.parametrize("radius", [1, 2])
def test_window_ops_gradients(radius, kernels_built):
    a = _rand(2, 4, 5, 3, seed=7).requires_grad_()
    b = _rand(2, 4, 5, 3, seed=8).requires_grad_()
    weights = _rand(2, 4, 5, (2 * radius + 1) ** 2, seed=9).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: window_dot(x, y, radius), (a, b))
    assert torch.autograd.gradcheck(lambda x: window_self_dot(x, radius), (a,))
    assert torch.autograd.gradcheck(lambda w, x: window_aggregate(w, x, radius), (weights, b))


@pytest.mark.parametrize("call, message", [
    (lambda: window_dot(torch.zeros(1, 3, 3, 2), torch.zeros(1, 3, 4, 2), 1), r"window_dot: a \(1, 3, 3, 2\) and b"),
    (lambda: window_aggregate(torch.zeros(1, 3, 3, 8), torch.zeros(1, 3, 3, 2), 1),
     r"window_aggregate: weights must be \(B, h, w, 9\)"),
    (lambda: window_dot(torch.zeros(3, 3, 2), torch.zeros(3, 3, 2), 1), "window_dot: a must be 4-D"),
    (lambda: window_self_dot(torch.zeros(1, 3, 3, 2), -1), "window_self_dot: radius must be >= 0"),
    (lambda: window_aggregate(torch.zeros(1, 2, 2, 9, dtype=torch.float64), torch.zeros(1, 2, 2, 2), 1),
     "window_aggregate: weights is torch.float64 but values is torch.float32"),
])
def test_window_ops_reject_bad_input_in_one_line(call, message, kernels_built):
    with pytest.raises(ValueError, match=message):
        call()


def test_window_ops_do_not_depend_on_where_the_rows_lie_in_memory(kernels_built):
    """Bitwise the same results for rows at any address: the sums' order is the code's, not the alignment's (else
    A2GNN's results would change from one run of the stage to the next)."""
    rows, weights = _rand(1, 9, 11, 70, seed=10, dtype=torch.float32), _rand(1, 9, 11, 49, seed=11, dtype=torch.float32)

    def at_offset(tensor: torch.Tensor, offset: int) -> torch.Tensor:
        buffer = torch.empty(tensor.numel() + offset)
        moved = buffer[offset:].view(tensor.shape)
        moved.copy_(tensor)
        return moved

    for offset in (1, 3, 5):
        moved_rows, moved_weights = at_offset(rows, offset), at_offset(weights, offset + 2)
        assert torch.equal(window_dot(moved_rows, moved_rows, 3), window_dot(rows, rows, 3))
        assert torch.equal(window_self_dot(moved_rows, 3), window_self_dot(rows, 3))
        assert torch.equal(window_aggregate(moved_weights, moved_rows, 3), window_aggregate(weights, rows, 3))
