"""Weak-shot (RETAB): fold class sets, the base/novel split, base/novel mIoU, the boundary target and loss, the
two-stage walk against a dense reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kernels import direction_offsets
from kernels.reference.random_walk import random_walk_dense
from wsss.errors import WsssError
from wsss.metrics import SegmentationScorer
from wsss.params import BoundaryWalkParams
from wsss.weakshot.boundary import boundary_loss, boundary_target, target_map
from wsss.weakshot.folds import (check_base_mask, class_sets, fold_scores, fold_scores_of_record, read_split,
                                 split_images, write_split)
from wsss.weakshot.walk import boundary_at_stride, interior_pairs, two_stage_walk


# ------------------------------------------------------------------ folds and split
@pytest.mark.parametrize("fold", [0, 1, 2, 3])
def test_pascal_5i_class_sets(fold):
    sets = class_sets(fold)
    assert sets.novel == tuple(range(5 * fold + 1, 5 * fold + 6))
    assert sets.base[0] == 0 and len(sets.base) == 16
    assert sorted(sets.base + sets.novel) == list(range(21))


def test_coco_20i_class_sets_and_bad_folds():
    sets = class_sets(1, 81)
    assert sets.novel[:3] == (2, 6, 10) and len(sets.novel) == 20 and 0 in sets.base
    for bad in (4, -1, "0", 1.0, True, None):
        with pytest.raises(WsssError, match=r"^supervision.fold: must be a fold 0..3, got"):
            class_sets(bad)
    with pytest.raises(WsssError, match="21 classes"):
        class_sets(0, 11)


def test_split_rule_on_hand_made_tags(tmp_path):
    tags = {"a": [6, 16], "b": [3, 7], "c": [], "d": [5], "e": [20]}
    split = split_images(tags, class_sets(0))
    assert split.base == ("a", "c", "e") and split.novel == ("b", "d")
    assert split.is_base("a") and not split.is_base("b")
    split3 = split_images(tags, class_sets(3))  # novel 16..20
    assert split3.base == ("b", "c", "d") and split3.novel == ("a", "e")
    write_split(tmp_path, split)
    assert (tmp_path / "split" / "base.txt").read_text() == "a\nc\ne\n"
    back = read_split(tmp_path)
    assert back == split and back.sets == class_sets(0)
    (tmp_path / "split" / "novel.txt").unlink()
    with pytest.raises(WsssError, match=r"split/novel.txt: missing"):
        read_split(tmp_path)
    with pytest.raises(WsssError, match=r"split.json: missing: not a weak-shot seeds folder"):
        read_split(tmp_path / "elsewhere")


def test_a_base_mask_holding_a_novel_class_is_an_error():
    sets = class_sets(1)  # novel 6..10
    check_base_mask(np.array([[0, 1, 255], [11, 20, 5]]), sets, "m.png")
    with pytest.raises(WsssError, match=r"^m.png: a base image of fold 1 .* novel class\(es\) 7; fix its tags or its mask$"):
        check_base_mask(np.array([[0, 7, 255]]), sets, "m.png")


# ------------------------------------------------------------------ base / novel mIoU
def test_base_and_novel_miou_on_hand_made_confusion():
    """Three classes present: background (base), 1 (novel of fold 0) and 6 (base of fold 0); IoU by hand."""
    gt = np.array([[0, 0, 0, 1, 1, 6, 6, 6]])
    pred = np.array([[0, 0, 1, 1, 6, 6, 6, 0]])
    scorer = SegmentationScorer()
    scorer.add(pred, gt)
    record = scorer.record({})
    # bg: TP 2, G 3, P 3 -> 2/4; class 1: TP 1, G 2, P 2 -> 1/3; class 6: TP 2, G 3, P 3 -> 2/4
    scores = fold_scores_of_record(record, class_sets(0))
    assert scores["miou_base"] == pytest.approx(50.0)
    assert scores["miou_novel"] == pytest.approx(100 / 3)
    assert scores["miou_all"] == pytest.approx(record["miou"]) == pytest.approx((50 + 100 / 3 + 50) / 3)
    assert scores["fold"] == 0 and scores["novel_classes"] == [1, 2, 3, 4, 5]
    # classes absent from ground truth and prediction are left out; a set with none defined is NaN
    iou = [0.5, math.nan, math.nan, math.nan, math.nan, math.nan, 0.25] + [math.nan] * 14
    assert fold_scores(iou, class_sets(0))["miou_base"] == pytest.approx(0.375)
    assert math.isnan(fold_scores(iou, class_sets(0))["miou_novel"])


# ------------------------------------------------------------------ boundary target and loss
def test_boundary_target_on_a_hand_made_mask():
    mask = np.array([[0, 0, 0, 0, 0, 0],
                     [0, 255, 255, 255, 0, 0],
                     [0, 255, 3, 255, 0, 0],
                     [0, 255, 255, 255, 0, 0],
                     [0, 0, 0, 0, 7, 7],
                     [0, 0, 0, 0, 7, 7]], np.uint8)
    expected = mask == 255
    # the class change between background and 7 (8-neighbourhood, both sides), never across the void band alone
    for y, x in [(3, 4), (3, 5), (4, 3), (5, 3), (4, 4), (4, 5), (5, 4), (3, 3)]:
        expected[y, x] = True
    np.testing.assert_array_equal(boundary_target(mask), expected)
    target = target_map(mask)
    assert target[0, 0] == 0 and target[2, 2] == 1 and target[5, 5] == 1 and target[1, 1] == 2 and target[4, 4] == 2
    # the interior pixel 3 touches only void: not a boundary
    assert not boundary_target(mask)[2, 2]


def test_boundary_loss_known_values():
    target = torch.tensor([[[2, 0, 1, 255]]])
    zero = torch.zeros(1, 1, 4)
    # BCE of logit 0 is log 2 for each group: 1 + 0.5 + 0.5 of it; the ignored pixel adds nothing
    assert float(boundary_loss(zero, target)) == pytest.approx(2 * math.log(2))
    confident = torch.tensor([[[20.0, -20.0, -20.0, 5.0]]])
    assert float(boundary_loss(confident, target)) < 1e-6
    # an empty group adds 0
    assert float(boundary_loss(zero, torch.tensor([[[0, 0, 255, 255]]]))) == pytest.approx(0.5 * math.log(2))


# ------------------------------------------------------------------ the two-stage walk
def test_boundary_at_stride_marks_a_cell_with_any_boundary_pixel():
    boundary = np.zeros((6, 9), bool)
    boundary[5, 8] = True
    cells = boundary_at_stride(boundary, 4)
    assert cells.shape == (2, 3) and cells.tolist() == [[False, False, False], [False, False, True]]


@pytest.mark.parametrize("gate", ["endpoints", "path"])
def test_interior_pairs_against_a_loop(gate):
    rng = torch.Generator().manual_seed(0)
    affinity = torch.rand(1, len(direction_offsets(4)), 7, 9, generator=rng, dtype=torch.float64)
    boundary = torch.rand(1, 7, 9, generator=rng) > 0.7
    kept = interior_pairs(affinity, boundary, 4, gate)
    for d, (dy, dx) in enumerate(direction_offsets(4)):
        steps = max(abs(dy), abs(dx))
        line = [(round(k * dy / steps), round(k * dx / steps)) for k in range(steps + 1)]
        for y in range(7):
            for x in range(9):
                inside = 0 <= y + dy < 7 and 0 <= x + dx < 9
                cells = [(0, 0), (dy, dx)] if gate == "endpoints" else line
                keep = inside and not any(bool(boundary[0, y + py, x + px]) for py, px in cells)
                assert float(kept[0, d, y, x]) == (float(affinity[0, d, y, x]) if keep else 0.0)
    # the path gate keeps a subset of the endpoint gate's pairs
    assert bool((interior_pairs(affinity, boundary, 4, "path") <= interior_pairs(affinity, boundary, 4)).all())


def test_a_thin_boundary_stops_the_path_gate_only():
    """A pair jumps over a one-cell boundary column under RETAB's endpoint rule, not under the path rule."""
    affinity = torch.ones(1, len(direction_offsets(3)), 3, 5, dtype=torch.float64)
    boundary = torch.zeros(1, 3, 5, dtype=torch.bool)
    boundary[:, :, 2] = True
    jump = direction_offsets(3).index((0, 2))  # (y, 1) -> (y, 3) over the column
    assert float(interior_pairs(affinity, boundary, 3)[0, jump, 1, 1]) == 1.0
    assert float(interior_pairs(affinity, boundary, 3, "path")[0, jump, 1, 1]) == 0.0
    with pytest.raises(ValueError, match="propagation.gate: must be one of endpoints, path"):
        interior_pairs(affinity, boundary, 3, "line")


def test_two_stage_walk_against_dense_reference(kernels_built):
    """Stage 1 = the dense walk on the interior pairs (boundary cells isolated); stage 2 = the dense walk whose
    interior columns are the identity: interior rows unchanged, boundary cells only receive."""
    rng = torch.Generator().manual_seed(3)
    params = BoundaryWalkParams(radius=3, beta=2.0, steps=8)
    values = torch.rand(3, 6, 8, generator=rng, dtype=torch.float64)
    affinity = torch.rand(1, len(direction_offsets(3)), 6, 8, generator=rng, dtype=torch.float64)
    boundary = torch.zeros(6, 8, dtype=torch.bool)
    boundary[:, 2:5] = True  # a vertical boundary three cells wide (pairs reach two cells) splits the image
    boundary[0, 0] = True
    stage1, stage2 = two_stage_walk(values, affinity, boundary, params)
    expected1 = random_walk_dense(values[None], interior_pairs(affinity, boundary[None], 3), 3, 2.0, 8)[0]
    torch.testing.assert_close(stage1, expected1, rtol=0, atol=1e-11)
    # nothing crossed the boundary in stage 1, and the boundary cells kept their values
    assert torch.equal(stage1[:, boundary], values[:, boundary])
    # the left part walks as if the image ended at the boundary: its values never mix with the right part's
    left = random_walk_dense(values[None, :, :, :3], interior_pairs(affinity[..., :3], boundary[None, :, :3], 3),
                             3, 2.0, 8)[0]
    torch.testing.assert_close(stage1[:, :, :3], left, rtol=0, atol=1e-11)
    expected2 = random_walk_dense(stage1[None], affinity, 3, 2.0, 8, frozen=~boundary[None])[0]
    torch.testing.assert_close(stage2, expected2, rtol=0, atol=1e-11)
    assert torch.equal(stage2[:, ~boundary], stage1[:, ~boundary])  # interior rows unchanged
    assert not torch.allclose(stage2[:, boundary], stage1[:, boundary])  # boundary cells filled
    first_only = two_stage_walk(values, affinity, boundary, BoundaryWalkParams(radius=3, beta=2.0, steps=8,
                                                                              second_stage=False))
    assert torch.equal(first_only[0], first_only[1]) and torch.equal(first_only[0], stage1)


# ------------------------------------------------------------------ the weak-shot table
def test_weakshot_table_from_hand_made_run(tmp_path):
    from benchmarks.weakshot import fold_table, main, markdown
    from wsss.data.classes import VOC_CLASSES
    from wsss.io import save_json

    root = tmp_path / "minivoc"
    write_split(root / "weakshot" / "seeds" / "default", split_images({"a": [6], "b": [7, 17]}, class_sets(3)))
    per_class = {name: None for name in VOC_CLASSES}
    per_class.update({"background": 80.0, "sheep": 40.0, "sofa": 10.0, "aeroplane": 60.0})  # 17 sheep, 18 sofa novel
    save_json(root / "cam" / "labels" / "metrics.json", {"miou": 47.5, "per_class_iou": per_class})
    table = fold_table(tmp_path, "minivoc")
    assert table["fold"] == 3 and table["n_base_images"] == 1 and table["n_novel_images"] == 1
    cam = table["rows"][0]
    assert (cam["miou_all"], cam["miou_base"], cam["miou_novel"]) == (47.5, 70.0, 25.0)
    assert all(row["miou_novel"] is None for row in table["rows"][1:])
    assert "| CAM | 47.50 | 70.00 | 25.00 |" in markdown([table])
    main([str(tmp_path), "--out", str(tmp_path / "table.json")])
    assert (tmp_path / "table.json").is_file()
