"""The ResNet trunk's channels-last max-pool: nn.MaxPool2d's values and gradients, a contiguous result."""

import pytest
import torch
from torch import nn

from wsss.backbone import ChannelsLastMaxPool2d, ResNetTrunk


@pytest.mark.parametrize("shape", [(2, 5, 17, 23), (1, 3, 1, 1), (3, 8, 40, 41)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_channels_last_pool_is_max_pool2d(shape, dtype):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(shape, generator=generator, dtype=dtype)  # distinct values: one max per window
    ours, theirs = features.clone().requires_grad_(), features.clone().requires_grad_()
    pooled = ChannelsLastMaxPool2d(3, 2, 1)(ours)
    expected = nn.MaxPool2d(3, 2, 1)(theirs)
    assert pooled.is_contiguous() and pooled.dtype == dtype
    assert torch.equal(pooled, expected)
    weights = torch.randn(expected.shape, generator=generator, dtype=dtype)
    (grad_ours,) = torch.autograd.grad(pooled, ours, weights)
    (grad_theirs,) = torch.autograd.grad(expected, theirs, weights)
    assert torch.equal(grad_ours, grad_theirs)


def test_trunk_outputs_keep_their_shapes_and_layout():
    trunk = ResNetTrunk("resnet10", 16, width=8).eval()
    with torch.no_grad():
        outputs = trunk(torch.randn(2, 3, 47, 63))
    assert [tuple(o.shape) for o in outputs] == [(2, 8, 12, 16), (2, 16, 6, 8), (2, 32, 3, 4), (2, 64, 3, 4)]
    assert all(o.is_contiguous() for o in outputs)


def test_between_stages_hook_replaces_a_stage_output_and_feeds_the_next():
    trunk = ResNetTrunk("resnet10", 16, width=8).eval()
    image = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        plain = trunk(image)
        unchanged = trunk(image, lambda index, features: features)
        doubled = trunk(image, lambda index, features: 2 * features if index == 2 else features)
    assert all(torch.equal(a, b) for a, b in zip(plain, unchanged))
    assert torch.equal(doubled[2], 2 * plain[2])
    assert torch.equal(doubled[3], trunk.layer4(2 * plain[2]))
