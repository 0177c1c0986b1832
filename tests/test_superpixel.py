"""MSA's superpixel network (wsss.superpixel): the loss's known answers, the association's invariants, the
superpixel measures against hand-computed values, the stage's files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.config import REPO_ROOT
from wsss.errors import WsssError
from wsss.superpixel.files import load_assoc, load_superpixel_png, save_assoc, save_superpixel_png
from wsss.superpixel.loss import SuperpixelLoss, reconstruct
from wsss.superpixel.metrics import (SuperpixelScorer, boundary_recall_counts, fill_void, grid_labels, hard_labels,
                                     overlaps, slic_labels, undersegmentation_sum, achievable_sum)
from wsss.superpixel.model import SpixelNet, image_assoc, load_superpixel_net, out_of_grid

#: (cell, grid rows, grid columns): odd cells and grids, a single row and a single column
GRIDS = [(3, 5, 7), (5, 1, 3), (7, 3, 1), (1, 4, 4), (4, 2, 5)]


def random_assoc(batch: int, cell: int, rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A float64 association ``(batch, 9, rows·cell, cols·cell)``: softmax of random logits, out-of-grid cells 0."""
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, 9, rows * cell, cols * cell, generator=generator, dtype=torch.float64)
    return torch.softmax(logits.masked_fill(out_of_grid(rows * cell, cols * cell, cell), float("-inf")), dim=1)


def centre_assoc(batch: int, height: int, width: int) -> torch.Tensor:
    """Every pixel wholly in its own cell (channel 4, the centre)."""
    assoc = torch.zeros(batch, 9, height, width, dtype=torch.float64)
    assoc[:, 4] = 1.0
    return assoc


# ------------------------------------------------------------------ loss
@pytest.mark.parametrize("cell,rows,cols", GRIDS)
def test_a_constant_image_reconstructs_exactly_whatever_the_association(kernels_built, cell, rows, cols):
    assoc = random_assoc(2, cell, rows, cols, seed=cell)
    lab = torch.empty(2, 3, rows * cell, cols * cell, dtype=torch.float64)
    lab[:, 0], lab[:, 1], lab[:, 2] = 53.2, -12.5, 40.0
    assert torch.allclose(reconstruct(lab, assoc, cell), lab, rtol=1e-7, atol=0)
    colour, _ = SuperpixelLoss(cell).terms(assoc, lab)
    # zero up to MSA's pooling epsilon: below 1e-7 of the colour's norm at each pixel, summed, over B·cell
    bound = 1e-7 * np.linalg.norm([53.2, -12.5, 40.0]) * lab[:, 0].numel() / (2 * cell)
    assert 0 <= colour.item() < bound


@pytest.mark.parametrize("cell,rows,cols", GRIDS)
def test_the_one_hot_association_is_plain_grid_pooling(kernels_built, cell, rows, cols):
    features = torch.randn(2, 5, rows * cell, cols * cell, dtype=torch.float64)
    assoc = centre_assoc(2, rows * cell, cols * cell)
    means = F.avg_pool2d(features, cell)
    expected = F.interpolate(means, scale_factor=cell, mode="nearest")
    assert torch.allclose(reconstruct(features, assoc, cell), expected, rtol=1e-7, atol=1e-12)


def test_the_position_term_of_the_one_hot_association_is_the_distance_to_the_cell_centre(kernels_built):
    """Cell 2, one cell: every pixel is ½√2 from the centre (0.5, 0.5); 4 pixels, B = 1 → 4·½√2 / (1·2)."""
    assoc = centre_assoc(1, 2, 2)
    _, position = SuperpixelLoss(cell=2).terms(assoc, torch.zeros(1, 3, 2, 2, dtype=torch.float64))
    assert position.item() == pytest.approx(4 * 0.5 * np.sqrt(2) / 2)


# ------------------------------------------------------------------ model
@pytest.mark.parametrize("cell,height,width", [(16, 48, 80), (8, 24, 40), (4, 12, 4)])
def test_assoc_rows_sum_to_one_and_out_of_grid_neighbours_are_zero(cell, height, width):
    torch.manual_seed(0)
    model = SpixelNet(cell, width=0.25).eval()
    assoc = model(torch.randn(2, 3, height, width))
    assert assoc.shape == (2, 9, height, width)
    assert torch.allclose(assoc.sum(dim=1), torch.ones(2, height, width), atol=1e-5)
    outside = out_of_grid(height, width, cell).expand_as(assoc)
    assert outside.any() and (assoc[outside] == 0).all() and (assoc[~outside] > 0).all()


def test_out_of_grid_marks_the_border_cells_neighbours():
    outside = out_of_grid(4, 6, 2)  # 2 x 3 cells
    top_left, bottom_right = outside[:, 0, 0], outside[:, 3, 5]
    assert top_left.tolist() == [True, True, True, True, False, False, True, False, False]
    assert bottom_right.tolist() == [False, False, True, False, False, True, True, True, True]


def test_a_size_that_is_no_multiple_of_the_cell_is_refused():
    with pytest.raises(ValueError, match="not a multiple of the cell 16"):
        SpixelNet(16, width=0.25)(torch.randn(1, 3, 40, 48))


@pytest.mark.parametrize("cell,size,padded", [(16, (50, 33), (64, 48)), (8, (17, 9), (24, 16)), (16, (32, 16), (32, 16))])
def test_image_assoc_pads_odd_sizes_to_the_cell(cell, size, padded):
    model = SpixelNet(cell, width=0.25).eval()
    assoc = image_assoc(model, torch.randn(1, 3, *size))
    assert assoc.shape == (1, 9, *padded)
    assert torch.allclose(assoc.sum(dim=1), torch.ones(1, *padded), atol=1e-5)


def test_a_missing_model_is_a_one_line_error_naming_the_file(tmp_path):
    with pytest.raises(WsssError) as info:
        load_superpixel_net(tmp_path)
    assert str(info.value) == f"{tmp_path / 'model.pt'}: superpixel network not found"


# ------------------------------------------------------------------ superpixel maps
def test_hard_labels_of_the_centre_association_are_the_grid():
    assoc = centre_assoc(1, 12, 20)[0]
    assert (hard_labels(assoc, 4) == grid_labels(12, 20, 4)).all()


def test_hard_labels_follow_the_largest_neighbour():
    assoc = centre_assoc(1, 4, 4)[0].numpy().copy()  # 2 x 2 cells of 2 px
    assoc[4, 0, 0], assoc[5, 0, 0] = 0.3, 0.7  # pixel (0, 0) of cell 0: mostly its right neighbour, cell 1
    assoc[4, 3, 3], assoc[0, 3, 3] = 0.4, 0.6  # pixel (3, 3) of cell 3: mostly its top-left neighbour, cell 0
    assoc[4, 0, 3], assoc[2, 0, 3] = 0.1, 0.9  # out of grid (top-right of the top-right cell): ignored
    labels = hard_labels(assoc, 2)
    expected = grid_labels(4, 4, 2)
    expected[0, 0], expected[3, 3] = 1, 0
    assert (labels == expected).all() and labels.dtype == np.int32


def test_grid_labels_cut_the_last_cells_at_the_border():
    assert grid_labels(3, 5, 2).tolist() == [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]]


def test_slic_gives_about_the_asked_number_of_superpixels():
    rng = np.random.default_rng(0)
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 200
    image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
    labels = slic_labels(image, 16)
    assert labels.shape == (64, 64) and labels.dtype == np.int32 and 8 <= np.unique(labels).size <= 32


# ------------------------------------------------------------------ measures, hand-computed
GT = np.array([[0, 0, 1, 1]] * 4)
SP = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [2, 2, 2, 3], [2, 2, 2, 3]])


def test_undersegmentation_and_asa_by_hand():
    # |S∩G|: S0 = {G0: 4, G1: 2}, S1 = {G1: 2}, S2 = {G0: 4, G1: 2}, S3 = {G1: 2}
    table = overlaps(SP, GT)
    assert table.tolist() == [[4, 2], [0, 2], [4, 2], [0, 2]]
    # UE: S0 min(4, 2) + min(2, 4) = 4, S1 0, S2 4, S3 0 → 8 of 16 pixels
    assert undersegmentation_sum(table) == 8
    # ASA: 4 + 2 + 4 + 2 = 12 of 16
    assert achievable_sum(table) == 12


def test_boundary_recall_by_hand():
    # ground-truth boundary pixels (right neighbour differs): column 1, 4 pixels. Superpixel boundary pixels:
    # column 2 (right neighbour differs) and row 1 (bottom neighbour differs). Within 0 px: only (1, 1);
    # within 1 px: all four.
    assert boundary_recall_counts(SP, GT, tolerance=0) == (1, 4)
    assert boundary_recall_counts(SP, GT, tolerance=1) == (4, 4)
    # one row: the ground truth's boundary at x = 0, the superpixels' at x = 3 (3 px away) or x = 2 (2 px away)
    gt = np.array([[0, 1, 1, 1, 1, 1, 1, 1]])
    assert boundary_recall_counts(np.array([[0, 0, 0, 0, 1, 1, 1, 1]]), gt, tolerance=2) == (0, 1)
    assert boundary_recall_counts(np.array([[0, 0, 0, 1, 1, 1, 1, 1]]), gt, tolerance=2) == (1, 1)


def test_void_is_excluded_and_its_band_splits_at_its_middle():
    gt = np.array([[0, 0, 255, 255, 1, 1]])
    assert fill_void(gt).tolist() == [[0, 0, 0, 1, 1, 1]]  # the boundary pixel: x = 2
    inside = np.array([[0, 0, 0, 0, 1, 1]])  # superpixel boundary at x = 3, 1 px away; its leak is all void
    assert boundary_recall_counts(inside, gt, tolerance=0) == (0, 1)
    assert boundary_recall_counts(inside, gt, tolerance=1) == (1, 1)
    table = overlaps(inside, gt)
    assert table.tolist() == [[2, 0], [0, 2]] and undersegmentation_sum(table) == 0 and achievable_sum(table) == 4
    leaking = np.array([[0, 0, 0, 0, 0, 1]])  # S0 = {G0: 2, G1: 1}: min(2, 1) + min(1, 2) = 2; ASA 2 + 1
    table = overlaps(leaking, gt)
    assert undersegmentation_sum(table) == 2 and achievable_sum(table) == 3


def test_the_scorer_sums_over_images():
    scorer = SuperpixelScorer()
    scorer.add(SP, GT)  # UE 8/16, ASA 12/16, BR 4/4, 4 superpixels
    scorer.add(np.array([[0, 0, 0, 0, 0, 1]]), np.array([[0, 0, 255, 255, 1, 1]]))  # UE 2/4, ASA 3/4, BR 1/1, 2
    record = scorer.record()
    assert record["undersegmentation_error"] == pytest.approx(100 * 10 / 20)
    assert record["asa"] == pytest.approx(100 * 15 / 20)
    assert record["boundary_recall"] == pytest.approx(100.0)
    assert record["superpixels_per_image"] == 3.0 and record["n_images"] == 2
    # superpixel boundary pixels: 7 of SP's 16 (column 2 and row 1), 1 of the row's 6
    assert record["boundary_pixels"] == pytest.approx(100 * 8 / 22)


# ------------------------------------------------------------------ files
def test_the_assoc_file_round_trip(tmp_path):
    assoc = random_assoc(1, 4, 3, 5)[0].float().numpy()
    save_assoc(tmp_path, "a", assoc)
    stored = np.load(tmp_path / "assoc" / "a.npy")
    assert stored.dtype == np.uint8 and stored.shape == (9, 12, 20)
    loaded = load_assoc(tmp_path, "a")
    assert loaded.dtype == np.float32 and np.allclose(loaded.sum(axis=0), 1.0, atol=1e-6)
    # quantised to 1/255 and renormalised: each value moves by at most (1/510 + 9/510) / (1 − 9/510) < 0.02
    assert np.abs(loaded - assoc).max() < 0.02
    outside = out_of_grid(12, 20, 4).numpy()
    assert (loaded[outside] == 0).all()
    with pytest.raises(WsssError, match=r"assoc/b\.npy: superpixel association not found"):
        load_assoc(tmp_path, "b")


def test_the_superpixel_png_keeps_16_bit_ids(tmp_path):
    labels = np.array([[0, 300], [65535, 7]], dtype=np.int32)
    save_superpixel_png(tmp_path, "x", labels)
    assert (load_superpixel_png(tmp_path, "x") == labels).all()


# ------------------------------------------------------------------ the stage
def _run_stage(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.train_superpixel", *overrides, "num_threads=1"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_superpixel_stage_end_to_end(kernels_built, tmp_path):
    from tests.voc_fixture import make_tiny_voc

    root = make_tiny_voc(tmp_path / "VOC", n_train=3, n_val=1, size=(42, 50))
    out, work = tmp_path / "superpixel", tmp_path / "work"
    common = ("dataset=folder", f"dataset.root={root}", "dataset.name=tiny", "superpixel=minivoc", "model.cell=8",
              "model.width=0.25", "train.epochs=2", "train.batch_size=2", "train.crop=32", "train.resize_long=[40,56]",
              f"out_dir={out}", f"work_dir={work}")
    run = _run_stage(*common)
    assert run.returncode == 0, run.stderr[-3000:]
    ids = ["2000_000000", "2000_000001", "2000_000002"]
    assert sorted(p.stem for p in (out / "assoc").glob("*.npy")) == ids
    assert sorted(p.stem for p in (out / "labels").glob("*.png")) == ids
    assoc = load_assoc(out, ids[0])
    assert assoc.shape == (9, 48, 56)  # 42 x 50 padded to the 8-px cell
    labels = load_superpixel_png(out, ids[0])
    assert labels.shape == (42, 50) and (labels == hard_labels(assoc, 8)[:42, :50]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"learned", "grid", "slic"}
    for record in metrics["methods"].values():
        assert 0 <= record["boundary_recall"] <= 100 and 0 <= record["undersegmentation_error"] <= 100
        assert 0 < record["asa"] <= 100 and record["superpixels_per_image"] > 0 and record["n_images"] == 3
    assert metrics["methods"]["grid"]["superpixels_per_image"] == 6 * 7  # ceil(42/8) x ceil(50/8)
    assert metrics["n_images"] == 3 and metrics["protocol"]["cell"] == 8
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2]
    assert (out / "curves.png").is_file() and not (work / "checkpoint.pt").exists()
    model = load_superpixel_net(out)
    assert model.cell == 8 and not model.training
    # a crop that is no multiple of the cell: one line naming the key
    bad = _run_stage(*common, "train.crop=30")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].endswith(
        "train.crop: must be a multiple of the cell (model.cell = 8), got 30")
