"""Random-walk propagation of CAMs (wsss.propagation.random_walk) against a dense T^t reference."""

import numpy as np
import torch

from kernels.reference.random_walk import random_walk_dense
from wsss.propagation.random_walk import RandomWalkParams, cam_at_stride, propagate, upsample_scores


def _inputs(seed=0, height=5, width=6, radius=3):
    from kernels import direction_offsets

    generator = torch.Generator().manual_seed(seed)
    cam = torch.rand((2, height, width), generator=generator)
    affinity = torch.rand((1, len(direction_offsets(radius)), height, width), generator=generator)
    return cam, affinity


def test_power_background_walk_equals_dense_reference(kernels_built):
    cam, affinity = _inputs()
    params = RandomWalkParams(radius=3, beta=2.0, steps=8, background="power", alpha=4.0)
    scores = propagate(cam, affinity, params)
    background = (1 - cam.amax(0, keepdim=True)) ** 4.0
    values = torch.cat([background, cam])[None].double()
    expected = random_walk_dense(values, affinity.double(), 3, 2.0, 8)[0]
    assert scores.shape == (3, 5, 6)
    torch.testing.assert_close(scores.double(), expected, atol=1e-5, rtol=1e-5)


def test_constant_background_is_max_normalised_with_threshold(kernels_built):
    cam, affinity = _inputs(seed=1)
    params = RandomWalkParams(radius=3, beta=2.0, steps=4, background="constant", bg_threshold=0.3)
    scores = propagate(cam, affinity, params)
    assert torch.all(scores[0] == 0.3)
    assert abs(scores[1:].max().item() - 1.0) < 1e-6


def test_no_class_present_gives_background_only(kernels_built):
    _, affinity = _inputs()
    empty = torch.zeros((0, 5, 6))
    for background in ("power", "constant"):
        scores = propagate(empty, affinity, RandomWalkParams(radius=3, steps=2, background=background))
        assert scores.shape == (1, 5, 6) and torch.all(scores > 0)


def test_cam_at_stride_pads_and_averages():
    cam = np.ones((1, 5, 6), np.float32)
    low = cam_at_stride(cam, 4)
    assert low.shape == (1, 2, 2)
    assert low[0, 0, 0] == 1.0 and abs(low[0, 1, 1].item() - 2 / 16) < 1e-6  # 1 row x 2 cols real in the last cell


def test_upsample_scores_crops_and_normalises():
    scores = torch.rand((3, 2, 2)) + 0.1
    full = upsample_scores(scores, 4, 7, 6)
    assert full.shape == (3, 7, 6)
    np.testing.assert_allclose(full.sum(axis=0), 1.0, atol=1e-6)
