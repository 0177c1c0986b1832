"""Pair extraction and PSA's affinity loss on hand-made cases."""

import math

import numpy as np
import torch

from kernels import direction_offsets
from wsss.affinity.training import affinity_loss, downsample_labels, pair_labels


def test_radius_5_has_34_directions_each_pair_once():
    offsets = direction_offsets(5)
    assert len(offsets) == 34
    assert len(set(offsets)) == 34
    # half-disc: no offset together with its opposite, none is zero
    assert all((-dy, -dx) not in offsets for dy, dx in offsets)
    assert all(dy * dy + dx * dx < 25 for dy, dx in offsets)


def test_pair_counts_on_uniform_map_match_the_number_of_in_image_pairs():
    height, width, radius = 7, 9, 5
    label = torch.zeros((1, height, width), dtype=torch.long)
    bg_pos, fg_pos, neg = pair_labels(label, radius)
    expected = sum(max(0, height - dy) * max(0, width - abs(dx)) for dy, dx in direction_offsets(radius))
    assert bg_pos.sum().item() == expected
    assert fg_pos.sum().item() == 0 and neg.sum().item() == 0


def test_pair_kinds_on_a_two_region_map_with_unknown_band():
    # columns: 0 0 | 255 | 3 3  (one row); radius 3 → offsets (0,1),(0,2) horizontally within the row
    label = torch.tensor([[[0, 0, 255, 3, 3]]])
    bg_pos, fg_pos, neg = pair_labels(label, 3)
    offsets = direction_offsets(3)
    horizontal = {d: i for i, d in enumerate(offsets) if d[0] == 0}
    one, two = horizontal[(0, 1)], horizontal[(0, 2)]
    assert bg_pos[0, one, 0].tolist() == [True, False, False, False, False]   # (0,1) bg-bg
    assert fg_pos[0, one, 0].tolist() == [False, False, False, True, False]   # (3,4) fg-fg
    assert neg[0, two, 0].tolist() == [False, True, False, False, False]      # (1,3): 0 vs 3
    assert not neg[0, one].any()                                              # every (i,i+1) pair touches 255 or agrees


def test_loss_on_hand_computed_case():
    affinity = torch.tensor([0.5, 0.25, 0.8, 0.1]).view(1, 4, 1, 1)
    bg = torch.tensor([True, False, False, False]).view(1, 4, 1, 1)
    fg = torch.tensor([False, True, False, False]).view(1, 4, 1, 1)
    neg = torch.tensor([False, False, True, True]).view(1, 4, 1, 1)
    expected = (0.25 * -math.log(0.5 + 1e-5) + 0.25 * -math.log(0.25 + 1e-5)
                + 0.5 * 0.5 * (-math.log(1 + 1e-5 - 0.8) - math.log(1 + 1e-5 - 0.1)))
    assert abs(affinity_loss(affinity, bg, fg, neg).item() - expected) < 1e-6


def test_loss_ignores_empty_sets():
    affinity = torch.full((1, 2, 1, 1), 0.5)
    none = torch.zeros((1, 2, 1, 1), dtype=torch.bool)
    assert affinity_loss(affinity, none, none, none).item() == 0.0


def test_downsample_labels_samples_cell_centres():
    label = np.arange(36, dtype=np.uint8).reshape(6, 6)
    low = downsample_labels(label, 4)
    assert low.shape == (2, 2)
    assert low[0, 0] == label[2, 2] and low[1, 1] == label[5, 5]
