"""Grid propagation kernels (random walk, local propagation, superpixel pool/upsample) vs float64 references."""

from __future__ import annotations

import pytest
import torch

from kernels import (
    direction_offsets,
    local_propagation,
    pair_affinity_from_features,
    random_walk,
    superpixel_pool,
    superpixel_upsample,
)
from kernels.reference.local_propagation import local_propagation_unfold
from kernels.reference.random_walk import random_walk_dense, random_walk_sparse
from kernels.reference.superpixel import superpixel_pool_shifted, superpixel_upsample_shifted

TOL = {torch.float32: 2e-5, torch.float64: 1e-11}
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(*shape, generator=_generator(seed), dtype=torch.float64).to(dtype)


# --------------------------------------------------------------------------- neighbourhood


def test_direction_offsets_radius_5_is_psa_half_disc():
    offsets = direction_offsets(5)
    assert len(offsets) == 34
    assert offsets[:4] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert offsets[4] == (1, -4)
    assert len(set(offsets)) == 34
    assert all(dy * dy + dx * dx < 25 for dy, dx in offsets)
    # Each unordered pair once: the half-disc and its mirror image tile the punctured disc.
    full = set(offsets) | {(-dy, -dx) for dy, dx in offsets}
    disc = {(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if 0 < dy * dy + dx * dx < 25}
    assert full == disc and len(full) == 68


def test_direction_offsets_small_radius_and_errors():
    assert direction_offsets(2) == [(0, 1), (1, -1), (1, 0), (1, 1)]
    for bad in (1, 0, 2.5, True, "5"):
        with pytest.raises(ValueError, match="radius"):
            direction_offsets(bad)


def _pair_affinity_loop(features: torch.Tensor, radius: int) -> torch.Tensor:
    batch, _, height, width = features.shape
    offsets = direction_offsets(radius)
    out = torch.zeros(batch, len(offsets), height, width, dtype=torch.float64)
    for d, (dy, dx) in enumerate(offsets):
        for y in range(height):
            for x in range(width):
                if 0 <= y + dy < height and 0 <= x + dx < width:
                    diff = (features[:, :, y, x] - features[:, :, y + dy, x + dx]).abs().mean(dim=1)
                    out[:, d, y, x] = torch.exp(-diff)
    return out


@pytest.mark.parametrize("shape,radius", [((2, 3, 6, 7), 5), ((1, 1, 1, 1), 5), ((1, 4, 3, 9), 3), ((2, 2, 9, 2), 4)])
def test_pair_affinity_matches_loop_and_is_differentiable(shape, radius):
    features = _rand(*shape, seed=1).requires_grad_()
    affinity = pair_affinity_from_features(features, radius)
    assert affinity.shape == (shape[0], len(direction_offsets(radius)), *shape[2:])
    torch.testing.assert_close(affinity, _pair_affinity_loop(features.detach(), radius), rtol=0, atol=1e-12)
    affinity.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


@pytest.mark.parametrize("shape,radius", [((2, 3, 6, 7), 5), ((1, 1, 1, 1), 5), ((1, 4, 3, 9), 3), ((2, 2, 9, 2), 4),
                                          ((1, 5, 8, 8), 2)])
def test_compiled_pair_affinity_gradient_is_the_plain_forms(shape, radius):
    from kernels.random_walk import _pair_affinity_torch

    features = _rand(*shape, seed=2).requires_grad_()
    compiled = pair_affinity_from_features(features, radius)
    plain = _pair_affinity_torch(features, radius)
    torch.testing.assert_close(compiled, plain, rtol=0, atol=1e-12)
    weights = _rand(*compiled.shape, seed=3) - 0.5
    (grad_compiled,) = torch.autograd.grad(compiled, features, weights)
    (grad_plain,) = torch.autograd.grad(plain, features, weights)
    torch.testing.assert_close(grad_compiled, grad_plain, rtol=0, atol=1e-12)
    # ties (equal neighbours): |.|'s gradient there is 0, as autograd has it
    flat = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    (grad_flat,) = torch.autograd.grad(pair_affinity_from_features(flat, radius), flat, weights)
    assert not grad_flat.any()


def test_compiled_pair_affinity_passes_gradcheck_and_float32_matches_float64():
    features = _rand(2, 3, 5, 6, seed=4).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: pair_affinity_from_features(f, 3), (features,))
    single = pair_affinity_from_features(features.detach().float(), 3)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), pair_affinity_from_features(features.detach(), 3), rtol=0, atol=TOL[torch.float32])


@needs_gpu
def test_cuda_pair_affinity_and_gradient_match_the_cpu_op():
    features = _rand(2, 6, 11, 13, seed=6).requires_grad_()
    weights = _rand(2, len(direction_offsets(5)), 11, 13, seed=7)
    on_gpu = features.detach().cuda().requires_grad_()
    cpu = pair_affinity_from_features(features, 5)
    gpu = pair_affinity_from_features(on_gpu, 5)
    torch.testing.assert_close(gpu.cpu(), cpu.detach(), rtol=0, atol=1e-12)
    (grad_cpu,) = torch.autograd.grad(cpu, features, weights)
    (grad_gpu,) = torch.autograd.grad(gpu, on_gpu, weights.cuda())
    torch.testing.assert_close(grad_gpu.cpu(), grad_cpu, rtol=0, atol=1e-12)


def test_bf16_features_take_the_plain_form():
    features = _rand(1, 2, 4, 5, seed=5).to(torch.bfloat16).requires_grad_()
    affinity = pair_affinity_from_features(features, 3)
    assert affinity.dtype == torch.bfloat16 and affinity.grad_fn is not None
    torch.testing.assert_close(affinity.double(), _pair_affinity_loop(features.detach().double(), 3), rtol=0, atol=2e-2)


def test_pair_affinity_errors():
    with pytest.raises(ValueError, match="4-D"):
        pair_affinity_from_features(torch.rand(3, 4, 5), 5)
    with pytest.raises(ValueError, match="radius"):
        pair_affinity_from_features(torch.rand(1, 3, 4, 5), 1)


# --------------------------------------------------------------------------- random walk


def _rw_inputs(shape, radius, seed, dtype):
    batch, channels, height, width = shape
    values = _rand(batch, channels, height, width, seed=seed, dtype=dtype)
    affinity = _rand(batch, len(direction_offsets(radius)), height, width, seed=seed + 1, dtype=dtype)
    return values, affinity


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape,radius,beta,steps",
    [((2, 3, 7, 9), 5, 3.0, 5), ((1, 1, 1, 1), 5, 10.0, 3), ((1, 21, 12, 17), 5, 10.0, 16),
     ((3, 2, 5, 4), 3, 1.5, 1), ((1, 1, 2, 40), 4, 8.0, 9), ((1, 5, 33, 3), 2, 2.0, 7)],
)
def test_random_walk_matches_sparse_reference(kernels_built, shape, radius, beta, steps, dtype):
    values, affinity = _rw_inputs(shape, radius, seed=sum(shape) + steps, dtype=dtype)
    result = random_walk(values, affinity, radius, beta, steps)
    assert result.shape == values.shape and result.dtype == dtype
    expected = random_walk_sparse(values, affinity, radius, beta, steps)
    torch.testing.assert_close(result.double(), expected, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_walk_matches_dense_power_on_tiny_graph(kernels_built, dtype):
    values, affinity = _rw_inputs((2, 4, 6, 7), 5, seed=7, dtype=dtype)
    result = random_walk(values, affinity, 5, 10.0, 16)  # 4 squarings of the dense T, as PSA/IRN
    expected = random_walk_dense(values, affinity, 5, 10.0, 16)
    torch.testing.assert_close(result.double(), expected, rtol=0, atol=TOL[dtype])
    # the two references agree with each other (not only with the kernel)
    torch.testing.assert_close(random_walk_sparse(values, affinity, 5, 10.0, 16), expected, rtol=0, atol=1e-12)
    # any step count, not only powers of two
    torch.testing.assert_close(random_walk(values, affinity, 5, 10.0, 5).double(),
                               random_walk_dense(values, affinity, 5, 10.0, 5), rtol=0, atol=TOL[dtype])


def test_random_walk_keeps_constants_and_ignores_pairs_leaving_the_image(kernels_built):
    values, affinity = _rw_inputs((1, 2, 8, 9), 5, seed=3, dtype=torch.float64)
    constant = torch.full_like(values, 0.7)
    torch.testing.assert_close(random_walk(constant, affinity, 5, 8.0, 32), constant, rtol=0, atol=1e-12)
    garbage = affinity.clone()
    for d, (dy, dx) in enumerate(direction_offsets(5)):
        for y in range(8):
            for x in range(9):
                if not (0 <= y + dy < 8 and 0 <= x + dx < 9):
                    garbage[0, d, y, x] = 1e3
    torch.testing.assert_close(random_walk(values, garbage, 5, 8.0, 4), random_walk(values, affinity, 5, 8.0, 4),
                               rtol=0, atol=0)


def test_random_walk_accepts_non_contiguous_and_leaves_inputs_alone(kernels_built):
    values, affinity = _rw_inputs((1, 3, 9, 7), 5, seed=11, dtype=torch.float32)
    values_t = values.transpose(2, 3).contiguous().transpose(2, 3)
    assert not values_t.is_contiguous()
    before = values.clone()
    torch.testing.assert_close(random_walk(values_t, affinity, 5, 10.0, 8), random_walk(values, affinity, 5, 10.0, 8))
    assert torch.equal(values, before)
    out = random_walk(values.requires_grad_(), affinity, 5, 10.0, 2)
    assert not out.requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,radius", [((2, 3, 6, 7), 5), ((1, 2, 5, 9), 3), ((1, 1, 1, 1), 2)])
def test_frozen_walk_matches_dense_reference(kernels_built, shape, radius, dtype):
    """RETAB's second walk: frozen columns of T are the identity; the kernel against the dense T^t."""
    values, affinity = _rw_inputs(shape, radius, seed=sum(shape), dtype=dtype)
    frozen = _rand(shape[0], *shape[2:], seed=5) > 0.6
    result = random_walk(values, affinity, radius, 8.0, 16, frozen=frozen)
    expected = random_walk_dense(values, affinity, radius, 8.0, 16, frozen=frozen)
    torch.testing.assert_close(result.double(), expected, rtol=0, atol=TOL[dtype])
    # frozen pixels keep their values exactly; the others still change
    keep = frozen[:, None].expand_as(values)
    assert torch.equal(result[keep], values[keep])
    if (~frozen).any() and shape[2] * shape[3] > 1:
        assert not torch.allclose(result[~keep], values[~keep])
    # all frozen = nothing moves; none frozen = the plain walk
    assert torch.equal(random_walk(values, affinity, radius, 8.0, 4, frozen=torch.ones_like(frozen)), values)
    torch.testing.assert_close(random_walk(values, affinity, radius, 8.0, 4, frozen=torch.zeros_like(frozen)),
                               random_walk(values, affinity, radius, 8.0, 4), rtol=0, atol=0)


def test_frozen_walk_fills_a_band_from_its_sides_only(kernels_built):
    """A free column between two frozen halves takes a mix of its two sides and sends nothing back."""
    values = torch.zeros(1, 2, 5, 9, dtype=torch.float64)
    values[0, 0, :, :4] = 1.0  # left half: class 0
    values[0, 1, :, 5:] = 1.0  # right half: class 1
    frozen = torch.ones(1, 5, 9, dtype=torch.bool)
    frozen[0, :, 4] = False
    affinity = torch.ones(1, len(direction_offsets(3)), 5, 9, dtype=torch.float64)
    result = random_walk(values, affinity, 3, 1.0, 50)
    walked = random_walk(values, affinity, 3, 1.0, 50, frozen=frozen)
    assert torch.equal(walked[..., :4], values[..., :4]) and torch.equal(walked[..., 5:], values[..., 5:])
    torch.testing.assert_close(walked[0, 0, :, 4], walked[0, 1, :, 4])  # symmetric: equal shares
    assert float(walked[0, :, :, 4].sum(0).min()) > 0.99  # all its mass came from the sides
    assert not torch.equal(result[..., :4], values[..., :4])  # the plain walk moves the sides too


def test_random_walk_errors(kernels_built):
    values, affinity = _rw_inputs((1, 2, 4, 5), 5, seed=0, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"affinity must be \(1, 34, 4, 5\)"):
        random_walk(values, affinity[:, :10], 5, 10.0, 4)
    with pytest.raises(ValueError, match="affinity must be"):
        random_walk(values, affinity, 4, 10.0, 4)
    with pytest.raises(ValueError, match="values must be 4-D"):
        random_walk(values[0], affinity, 5, 10.0, 4)
    with pytest.raises(ValueError, match="float32 or float64"):
        random_walk(values.half(), affinity, 5, 10.0, 4)
    with pytest.raises(ValueError, match="affinity is torch.float64 but values is torch.float32"):
        random_walk(values, affinity.double(), 5, 10.0, 4)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        random_walk(values, affinity, 5, 10.0, 0)
    with pytest.raises(ValueError, match="steps must be an integer"):
        random_walk(values, affinity, 5, 10.0, 2.5)
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        random_walk(values, affinity, 5, 0.0, 4)
    with pytest.raises(ValueError, match="finite and >= 0"):
        random_walk(values, affinity - 2, 5, 10.0, 4)
    with pytest.raises(ValueError, match="frozen must be bool"):
        random_walk(values, affinity, 5, 10.0, 4, frozen=torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match=r"frozen must be \(B, H, W\)"):
        random_walk(values, affinity, 5, 10.0, 4, frozen=torch.zeros(1, 5, 4, dtype=torch.bool))


# --------------------------------------------------------------------------- local propagation


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape,channels_image,kernel_size,zeta,iterations,mask_kind",
    [((2, 3, 13, 10), 3, 5, 0.3, 6, "one"), ((1, 1, 1, 1), 3, 5, 0.15, 20, None), ((3, 4, 7, 19), 1, 3, 0.5, 3, "per_channel"),
     ((1, 2, 16, 17), 3, 5, 0.15, 20, "bool"), ((2, 1, 5, 6), 2, 1, 0.2, 4, "one"), ((1, 2, 6, 5), 3, 7, 0.4, 0, "one")],
)
def test_local_propagation_matches_unfold_reference(kernels_built, shape, channels_image, kernel_size, zeta, iterations,
                                                    mask_kind, dtype):
    batch, channels, height, width = shape
    values = _rand(*shape, seed=height, dtype=dtype)
    image = _rand(batch, channels_image, height, width, seed=width, dtype=dtype)
    mask = None
    if mask_kind == "one":
        mask = (_rand(batch, 1, height, width, seed=5) > 0.3).to(dtype)
    elif mask_kind == "per_channel":
        mask = _rand(batch, channels, height, width, seed=6, dtype=dtype)
    elif mask_kind == "bool":
        mask = _rand(batch, 1, height, width, seed=7) > 0.2
    result = local_propagation(values, image, kernel_size, zeta, iterations, mask)
    assert result.shape == values.shape and result.dtype == dtype
    expected = local_propagation_unfold(values, image, kernel_size, zeta, iterations, mask)
    torch.testing.assert_close(result.double(), expected, rtol=0, atol=TOL[dtype])


def test_local_propagation_smooths_within_uniform_regions(kernels_built):
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 1.0  # two flat halves, far apart in colour
    values = torch.zeros(1, 1, 8, 8)
    values[0, 0, 3, 1] = 1.0
    out = local_propagation(values, image, 5, 0.15, 20)
    assert out[..., :4].sum() > 0.99 * out.sum()  # mass stays on its side of the edge
    assert out[..., 4:].max() < 1e-6


def test_local_propagation_errors(kernels_built):
    values, image = torch.rand(1, 2, 5, 6), torch.rand(1, 3, 5, 6)
    with pytest.raises(ValueError, match="image must be"):
        local_propagation(values, image[..., :5])
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        local_propagation(values, image, kernel_size=4)
    with pytest.raises(ValueError, match="zeta must be finite and > 0"):
        local_propagation(values, image, zeta=0)
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        local_propagation(values, image, iterations=-1)
    with pytest.raises(ValueError, match=r"mask must be \(1, 1 or 2, 5, 6\)"):
        local_propagation(values, image, mask=torch.ones(1, 3, 5, 6))
    with pytest.raises(ValueError, match="image is torch.float64 but values is torch.float32"):
        local_propagation(values, image.double())


# --------------------------------------------------------------------------- superpixels


def _assoc(batch, height, width, seed, dtype=torch.float64):
    return (4 * _rand(batch, 9, height, width, seed=seed)).softmax(dim=1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape,cell",
    [((2, 3, 32, 48), (16, 16)), ((1, 1, 16, 16), (16, 16)), ((3, 4, 12, 20), (4, 5)), ((1, 2, 5, 7), (1, 1)),
     ((1, 21, 8, 24), (8, 4)), ((2, 1, 3, 2), (3, 1))],
)
def test_superpixel_pool_and_upsample_match_shifted_reference(kernels_built, shape, cell, dtype):
    batch, channels, height, width = shape
    features = _rand(*shape, seed=height * width, dtype=dtype)
    assoc = _assoc(batch, height, width, seed=channels, dtype=dtype)
    pooled = superpixel_pool(features, assoc, cell)
    assert pooled.shape == (batch, channels, height // cell[0], width // cell[1]) and pooled.dtype == dtype
    torch.testing.assert_close(pooled.double(), superpixel_pool_shifted(features, assoc, cell), rtol=0, atol=TOL[dtype])
    upsampled = superpixel_upsample(pooled, assoc, cell)
    assert upsampled.shape == shape and upsampled.dtype == dtype
    torch.testing.assert_close(upsampled.double(), superpixel_upsample_shifted(pooled, assoc, cell), rtol=0,
                               atol=TOL[dtype])


def test_superpixel_int_cell_and_uniform_association(kernels_built):
    features = _rand(1, 2, 8, 8, seed=2)
    centre = torch.zeros(1, 9, 8, 8, dtype=torch.float64)
    centre[:, 4] = 1.0  # hard assignment to the own cell: plain average pooling / nearest upsampling
    pooled = superpixel_pool(features, centre, 4)
    torch.testing.assert_close(pooled, torch.nn.functional.avg_pool2d(features, 4), rtol=1e-7, atol=0)
    torch.testing.assert_close(superpixel_upsample(pooled, centre, 4),
                               torch.nn.functional.interpolate(pooled, scale_factor=4, mode="nearest"), rtol=0, atol=0)


@pytest.mark.parametrize("cell", [(2, 3), (1, 1)])
def test_superpixel_gradients(kernels_built, cell):
    batch, channels, height, width = 2, 2, 2 * cell[0], 3 * cell[1]
    features = _rand(batch, channels, height, width, seed=1).requires_grad_()
    assoc = _assoc(batch, height, width, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, q: superpixel_pool(f, q, cell), (features, assoc))
    cells = _rand(batch, channels, height // cell[0], width // cell[1], seed=3).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, q: superpixel_upsample(s, q, cell), (cells, assoc))
    # and the same gradients as autograd through the shifted-pooling reference
    weights = _rand(batch, channels, height, width, seed=4)
    for fn, ref, first in ((superpixel_pool, superpixel_pool_shifted, features),
                           (superpixel_upsample, superpixel_upsample_shifted, cells)):
        grads = torch.autograd.grad((fn(first, assoc, cell) * (weights if fn is superpixel_upsample else 1)).sum(),
                                    (first, assoc))
        grads_ref = torch.autograd.grad((ref(first, assoc, cell) * (weights if fn is superpixel_upsample else 1)).sum(),
                                        (first, assoc))
        for got, want in zip(grads, grads_ref):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_superpixel_errors(kernels_built):
    features, assoc = torch.rand(1, 3, 32, 32), torch.rand(1, 9, 32, 32)
    with pytest.raises(ValueError, match="not a multiple of the cell 16x16"):
        superpixel_pool(features[..., :30], assoc[..., :30], 16)
    with pytest.raises(ValueError, match=r"assoc must be \(B, 9, H, W\)"):
        superpixel_pool(features, assoc[:, :8], 16)
    with pytest.raises(ValueError, match="differ in size"):
        superpixel_pool(features[..., :16], assoc, 16)
    with pytest.raises(ValueError, match=r"sp_features must be \(B, C, 2, 2\)"):
        superpixel_upsample(torch.rand(1, 3, 2, 3), assoc, 16)
    with pytest.raises(ValueError, match="cell must be an int or"):
        superpixel_upsample(torch.rand(1, 3, 2, 2), assoc, (16, 16, 1))
    with pytest.raises(ValueError, match="cell must be >= 1"):
        superpixel_pool(features, assoc, 0)
    with pytest.raises(ValueError, match="assoc is torch.float64 but features is torch.float32"):
        superpixel_pool(features, assoc.double(), 16)


# --------------------------------------------------------------------------- CUDA parity (skipped without a GPU)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(kernels_built, dtype):
    from kernels._loader import load_library

    if load_library() != "cuda":
        pytest.skip("cuda kernel variant not built (python -m kernels.build --variant cuda)")
    tol = dict(rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-10)
    values, affinity = _rw_inputs((2, 5, 23, 31), 5, seed=9, dtype=dtype)
    torch.testing.assert_close(random_walk(values.cuda(), affinity.cuda(), 5, 10.0, 64).cpu(),
                               random_walk(values, affinity, 5, 10.0, 64), **tol)
    frozen = _rand(2, 23, 31, seed=8) > 0.5
    torch.testing.assert_close(random_walk(values.cuda(), affinity.cuda(), 5, 10.0, 64, frozen=frozen.cuda()).cpu(),
                               random_walk(values, affinity, 5, 10.0, 64, frozen=frozen), **tol)
    image = _rand(2, 3, 23, 31, seed=4, dtype=dtype)
    mask = (_rand(2, 1, 23, 31, seed=5) > 0.3).to(dtype)
    torch.testing.assert_close(local_propagation(values.cuda(), image.cuda(), 5, 0.15, 20, mask.cuda()).cpu(),
                               local_propagation(values, image, 5, 0.15, 20, mask), **tol)
    features = _rand(2, 4, 32, 48, seed=6, dtype=dtype).requires_grad_()
    assoc = _assoc(2, 32, 48, seed=7, dtype=dtype).requires_grad_()
    outputs = {}
    for device in ("cpu", "cuda"):
        f, q = features.detach().to(device).requires_grad_(), assoc.detach().to(device).requires_grad_()
        up = superpixel_upsample(superpixel_pool(f, q, 16), q, 16)
        up.square().sum().backward()
        outputs[device] = [t.detach().cpu() for t in (up, f.grad, q.grad)]
    for got, want in zip(outputs["cuda"], outputs["cpu"]):
        torch.testing.assert_close(got, want, rtol=1e-4 if dtype == torch.float32 else 1e-9, atol=tol["atol"])


# --------------------------------------------------------------------------- benchmark registry


def test_bench_records_and_table(kernels_built, tmp_path):
    from kernels import bench

    records = bench.collect(quick=True, device="cpu", only="local_propagation")
    assert [r["op"] for r in records] == ["local_propagation"]
    assert set(records[0]) == set(bench.KEYS)
    assert records[0]["max_abs_diff"] < 1e-5 and records[0]["ms"] > 0
    table = bench.format_table(records)
    assert "local_propagation" in table.splitlines()[2]
