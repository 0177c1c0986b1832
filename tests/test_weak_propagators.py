"""Seed propagators (random walk from seeds, A2GNN, APro) on small known cases, and their building blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wsss.errors import WsssError
from wsss.propagation import a2gnn as A
from wsss.propagation.apro import AProParams, apro_propagate, initial_evidence
from wsss.propagation.inputs import PropagationInput, apply_allowed, seeds_at_stride
from wsss.propagation.run import Propagator
from wsss.propagation.seeded_walk import SeededWalkParams, initial_values, seeded_walk

IGNORE = 255


def two_regions(height: int = 24, width: int = 32, noise: int = 3) -> np.ndarray:
    """Left half dark red, right half light blue, with a little noise: ``(H,W,3)`` uint8."""
    rng = np.random.default_rng(1)
    image = np.zeros((height, width, 3), np.int64)
    image[:, : width // 2] = (150, 40, 40)
    image[:, width // 2 :] = (60, 90, 210)
    image += rng.integers(-noise, noise + 1, size=image.shape)
    return image.clip(0, 255).astype(np.uint8)


def one_seed_each(height: int = 24, width: int = 32, left: int = 0, right: int = 12) -> np.ndarray:
    seeds = np.full((height, width), IGNORE, np.uint8)
    seeds[10:13, 4:7] = left
    seeds[10:13, width - 7 : width - 4] = right
    return seeds


def region_labels(label: np.ndarray) -> tuple[set, set]:
    width = label.shape[1]
    return set(np.unique(label[:, : width // 2]).tolist()), set(np.unique(label[:, width // 2 :]).tolist())


# ------------------------------------------------------------------ inputs
def test_propagation_input_channels_and_prior():
    seeds = np.array([[0, 12, 255], [7, 3, 255]], np.uint8)
    data = PropagationInput(np.zeros((2, 3, 3), np.uint8), np.array([3, 12]), seeds,
                            cam=np.array([[[0.5] * 3] * 2, [[1.0, 0.0, 0.0]] * 2], np.float32))
    assert data.seed_channels().tolist() == [[0, 2, -1], [-1, 1, -1]]  # class 7 is not present: unknown
    onehot = data.seed_onehot()
    assert onehot[2, 0, 1] == 1 and onehot[:, 0, 2].sum() == 0
    prior = data.cam_prior(alpha=1.0)
    np.testing.assert_allclose(prior.sum(0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(prior[:, 0, 0], [0.0, 1 / 3, 2 / 3], rtol=1e-6)
    assert data.label(prior).tolist() == [[12, 0, 0], [12, 0, 0]]  # 0.5 vs (1 - 0.5)^1: tie, background first


def test_apply_allowed_renormalises_and_defaults_to_background():
    scores = np.array([[[0.2, 0.0]], [[0.8, 1.0]]], np.float32)
    allowed = np.array([[[True, True]], [[True, False]]])
    out = apply_allowed(scores, allowed)
    np.testing.assert_allclose(out[:, 0, 0], [0.2, 0.8])
    np.testing.assert_allclose(out[:, 0, 1], [1.0, 0.0])


def test_seeds_at_stride_takes_the_cell_majority():
    channels = np.full((4, 6), -1, np.int64)
    channels[0, 0] = 2                       # one pixel in cell (0,0) marks it
    channels[2:4, 2:4] = 1
    channels[2, 3] = 0                       # cell (1,1): three 1s, one 0
    cells = seeds_at_stride(channels, 3, 2)
    assert cells.tolist() == [[2, -1, -1], [-1, 1, -1]]


# --------------------------------------------------------------------- APro
def test_apro_two_flat_regions_take_their_seeds_class(kernels_built):
    data = PropagationInput(two_regions(), np.array([12]), one_seed_each())
    scores = apro_propagate(data)
    assert scores.shape == (2, 24, 32)
    np.testing.assert_allclose(scores.sum(0), 1.0, rtol=1e-5)
    assert region_labels(data.label(scores)) == ({0}, {12})


def test_apro_cam_free_point_leaves_unclaimed_region_to_background(kernels_built):
    seeds = np.full((24, 32), IGNORE, np.uint8)
    seeds[10:13, 24:27] = 12                 # one click on the right object, no background click
    data = PropagationInput(two_regions(), np.array([12]), seeds)
    assert region_labels(data.label(apro_propagate(data))) == ({0}, {12})


def test_apro_box_mask_keeps_a_class_inside_its_boxes(kernels_built):
    seeds = one_seed_each()
    allowed = np.ones((2, 24, 32), bool)
    allowed[1, :, :20] = False               # the class may only appear from column 20 on
    data = PropagationInput(two_regions(), np.array([12]), seeds, allowed=allowed)
    label = data.label(apro_propagate(data))
    # LP averages a box's border pixels with the zeros outside it (APro's masking): a box edge that cuts
    # a flat region leaves its first columns ambiguous
    assert (label[:, :20] == 0).all() and (label[:, 22:] == 12).all()


def test_apro_initial_evidence_weights():
    seeds = one_seed_each()
    data = PropagationInput(two_regions(), np.array([12]), seeds)
    q, w = initial_evidence(data, AProParams(background_prior=0.01))
    assert w[11, 5] == 1.0 and w[0, 0] == 0.0 and q[1, 11, 26] == 1.0  # background seeds: no prior
    clicks = np.where(seeds == 12, 12, IGNORE).astype(np.uint8)
    q, w = initial_evidence(PropagationInput(two_regions(), np.array([12]), clicks), AProParams(background_prior=0.01))
    assert w[11, 5] == 0.01 and q[0, 11, 5] == 1.0 and w[11, 26] == 1.0  # no background seed: weak prior
    cam = np.zeros((1, 24, 32), np.float32)
    q, w = initial_evidence(PropagationInput(two_regions(), np.array([12]), seeds, cam=cam),
                            AProParams(prior_weight=0.2))
    assert w[0, 0] == 0.2 and q[0, 0, 0] == 1.0


def test_apro_two_classes_and_label_pass(kernels_built):
    image = two_regions(width=48)            # red columns 0..23, blue 24..31,
    image[:, 32:] = (30, 200, 30)            # green 32..47
    seeds = np.full((24, 48), IGNORE, np.uint8)
    seeds[4:7, 4:7], seeds[4:7, 27:30], seeds[4:7, 39:42] = 0, 3, 9   # a 3×3 click each
    data = PropagationInput(image, np.array([3, 9]), seeds)
    label = data.label(apro_propagate(data, AProParams(zeta_label=0.05)))
    assert set(np.unique(label[:, :22])) == {0} and set(np.unique(label[:, 26:30])) == {3}  # region interiors
    assert set(np.unique(label[:, 34:])) == {9}


# -------------------------------------------------------------- random walk
def test_seeded_walk_two_flat_regions(kernels_built):
    from kernels import pair_affinity_from_features

    image = two_regions()
    features = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 20.0)[None]
    affinity = pair_affinity_from_features(features, 3)
    data = PropagationInput(image, np.array([12]), one_seed_each())
    scores = seeded_walk(data, affinity, 1, SeededWalkParams(radius=3, beta=8.0, steps=64))
    assert region_labels(data.label(scores)) == ({0}, {12})


def test_seeded_walk_clamping_keeps_the_seeds(kernels_built):
    from kernels import pair_affinity_from_features

    image = np.full((16, 16, 3), 100, np.uint8)   # one flat region: only the seeds decide
    seeds = np.full((16, 16), IGNORE, np.uint8)
    seeds[0:2, 0:2], seeds[14:16, 14:16] = 0, 5
    affinity = pair_affinity_from_features(torch.zeros(1, 2, 16, 16), 3)
    data = PropagationInput(image, np.array([5]), seeds)
    clamped = seeded_walk(data, affinity, 1, SeededWalkParams(radius=3, steps=64, clamp_every=8))
    assert clamped[0, 0, 0] == pytest.approx(1.0) and clamped[1, 15, 15] == pytest.approx(1.0)
    label = data.label(clamped)
    assert label[3, 4] == label[4, 3] == 0 and label[11, 12] == label[12, 11] == 5  # each side of the diagonal
    free = seeded_walk(data, affinity, 1, SeededWalkParams(radius=3, steps=64, clamp_every=0))
    assert free[1, 15, 15] < 0.9  # PSA's free walk diffuses the seeds' mass


def test_seeded_walk_initial_values_seeds_override_cam_and_boxes_mask():
    seeds = np.full((8, 8), IGNORE, np.uint8)
    seeds[0:2, 0:2] = 5
    cam = np.full((1, 8, 8), 0.5, np.float32)
    allowed = np.ones((2, 8, 8), bool)
    allowed[1, 4:, 4:] = False
    data = PropagationInput(np.zeros((8, 8, 3), np.uint8), np.array([5]), seeds, cam=cam, allowed=allowed)
    values = initial_values(data, 2, alpha=1.0)
    assert values.shape == (2, 4, 4)
    assert values[:, 0, 0].tolist() == [0.0, 1.0]
    assert values[1, 3, 3] == 0 and values[1, 1, 1] == pytest.approx(0.5)


# -------------------------------------------------------------------- A2GNN
def brute_attention(x, features, radius, beta, adjacency_weight):
    """Windowed attention by explicit loops over nodes and neighbours (the definition A2GNN's layer implements)."""
    channels, height, width = x.shape
    unit = torch.nn.functional.normalize(x, dim=0)
    out = torch.zeros_like(x)
    for y in range(height):
        for xx in range(width):
            logits, values = [], []
            for ny in range(max(0, y - radius), min(height, y + radius + 1)):
                for nx in range(max(0, xx - radius), min(width, xx + radius + 1)):
                    cos = float(unit[:, y, xx] @ unit[:, ny, nx])
                    if cos < 0 and (ny, nx) != (y, xx):
                        continue
                    affinity = float(torch.exp(-(features[:, y, xx] - features[:, ny, nx]).abs().mean()))
                    logits.append(beta * cos + adjacency_weight * affinity)
                    values.append(x[:, ny, nx])
            weights = torch.softmax(torch.tensor(logits), 0)
            out[:, y, xx] = (weights[:, None] * torch.stack(values)).sum(0)
    return out


@pytest.mark.parametrize("tile", [A.WINDOW, 0, 2, 4, 8])
def test_window_attention_matches_the_definition(tile, kernels_built):
    torch.manual_seed(0)
    height, width, radius = 7, 10, 2
    x = torch.randn(5, height, width)
    features = torch.randn(3, height, width)
    params = A.A2GNNParams(radius=radius)
    graph = A.WindowGraph(height, width, radius, tile)
    bias = A.attention_bias(features, params, graph)
    for learn_beta in (True, False):
        layer = A.WindowAttention(learn_beta)
        got = graph.to_grid(layer(graph.to_rows(x), bias, graph))
        expected = brute_attention(x, features, radius, 1.0 if learn_beta else 0.0, params.adjacency_weight)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("tile", [A.WINDOW, 0, 4])
def test_fixed_layers_are_the_attention_layers_without_beta_on_non_negative_input(tile, kernels_built):
    """Past the first layer β is 0 and the cos < 0 mask never applies to ReLU outputs: the layers are a fixed
    matrix, precomputed once (as its power on a dense block)."""
    torch.manual_seed(1)
    height, width, radius = 7, 9, 2
    x = torch.relu(torch.randn(6, height, width))
    params = A.A2GNNParams(radius=radius)
    graph = A.WindowGraph(height, width, radius, tile)
    bias = A.attention_bias(torch.randn(3, height, width), params, graph)
    rows, layer = graph.to_rows(x)[None], A.WindowAttention(False)
    expected = layer(layer(rows, bias, graph), bias, graph)
    fixed = A.FixedPropagation(bias, graph, 2)
    assert fixed.dense == (tile == 0)
    torch.testing.assert_close(fixed(rows), expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(A.FixedPropagation(bias, graph, 0)(rows), rows)


def test_window_graph_layout_round_trip_and_halo():
    graph = A.WindowGraph(5, 7, 1, tile=4)
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(2, 5, 7)
    rows = graph.to_rows(x, fill=-1)
    assert rows.shape == (graph.size, 2) == (4 * 16, 2) and (rows == -1).sum() == 2 * (64 - 35)
    torch.testing.assert_close(graph.to_grid(rows), x)
    keys = graph.keys(rows)
    assert keys.shape == (4, 36, 2)
    # the halo of block (0, 0) starts one node above/left of the grid: no key there, node (0, 0) at (1, 1)
    valid = graph.key_valid()
    assert valid.shape == (4, 1, 36) and not valid[0, 0, 0] and valid[0, 0, 7] and valid[0, 0, 8]
    assert keys[0, 7, 0] == x[0, 0, 0] and keys[0, 8, 0] == x[0, 0, 1]
    assert not valid[0, 0, 5 * 6] and valid[0, 0, 5 * 6 + 1]  # halo row 5 = grid row 4: left of the grid, then in


def test_gated_crf_loss_zero_when_labels_agree():
    image = two_regions()
    kernel = A.gated_crf_kernel(image, 4, 6, 8, 2, 6.0, 0.1)
    same = torch.zeros(2, 6, 8)
    same[0] = 1.0
    assert A.gated_crf_loss(same, kernel, 2).item() == pytest.approx(0.0, abs=1e-7)
    mixed = same.clone()
    mixed[:, :, 4:] = torch.tensor([0.0, 1.0])[:, None, None]   # the split follows the colour edge: cheap
    across = same.clone()
    across[:, :3] = torch.tensor([0.0, 1.0])[:, None, None]     # a split inside flat colour: costly
    assert A.gated_crf_loss(mixed, kernel, 2).item() < 0.01 * A.gated_crf_loss(across, kernel, 2).item()


def test_a2gnn_two_flat_regions_take_their_seeds_class():
    image = two_regions()
    torch.manual_seed(0)
    features = torch.zeros(4, 6, 8)
    features[0, :, :4], features[1, :, 4:] = 1.0, 1.0
    features += 0.05 * torch.randn_like(features)
    data = PropagationInput(image, np.array([12]), one_seed_each())
    params = A.A2GNNParams(hidden=16, epochs=15, radius=2)
    scores = A.a2gnn_propagate(data, features, 4, params, seed=0)
    assert scores.shape == (2, 24, 32)
    assert region_labels(data.label(scores)) == ({0}, {12})
    again = A.a2gnn_propagate(data, features, 4, params, seed=0)
    np.testing.assert_array_equal(scores, again)        # same seed, same result


def test_a2gnn_box_mask_applies_in_training_and_output():
    image = two_regions()
    features = torch.zeros(4, 6, 8)
    features[0, :, :4], features[1, :, 4:] = 1.0, 1.0
    allowed = np.ones((2, 24, 32), bool)
    allowed[1, :, :24] = False
    data = PropagationInput(image, np.array([12]), one_seed_each(), allowed=allowed)
    label = data.label(A.a2gnn_propagate(data, features, 4, A.A2GNNParams(hidden=16, epochs=10, radius=2)))
    assert (label[:, :24] == 0).all()


def _a2gnn_inputs(seed: int = 0) -> tuple[list[PropagationInput], list[torch.Tensor]]:
    """Three images of different sizes and classes (one without objects), random node features at stride 8."""
    rng = np.random.default_rng(seed)
    datas, features = [], []
    for (height, width), keys in (((60, 75), [5, 9]), ((48, 56), [5]), ((70, 64), [])):
        seeds = np.full((height, width), IGNORE, np.uint8)
        seeds[4:20, 4:20] = 0
        if keys:
            seeds[30:44, 30:50] = keys[-1]
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        datas.append(PropagationInput(image, np.array(keys, np.int64), seeds))
        features.append(torch.from_numpy(rng.standard_normal((6, -(-height // 8), -(-width // 8)), dtype=np.float32)))
    return datas, features


def test_a2gnn_matches_the_dense_reference():
    """The windowed, batched network is the seed's dense N×N procedure (no dropout: the same steps exactly)."""
    from benchmarks.a2gnn_reference import reference_a2gnn

    datas, features = _a2gnn_inputs()
    params = A.A2GNNParams(hidden=16, epochs=4, radius=2, dropout=0.0, crf_radius=3)
    for data, feature, got in zip(datas, features, A.train_a2gnn_batch(datas, features, 8, params)):
        torch.testing.assert_close(got, reference_a2gnn(data, feature, 8, params), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("patience", [0, 2])
def test_a2gnn_batch_gives_each_image_its_result_alone(patience):
    """Own weights, dropout masks, losses and (early-stopped) schedule per image: batched or not, the same scores."""
    datas, features = _a2gnn_inputs(1)
    params = A.A2GNNParams(hidden=16, epochs=3 if patience == 0 else 12, radius=2, crf_radius=3,
                           stop_patience=patience, stop_tolerance=0.05)
    epochs: list[int] = []
    batched = A.train_a2gnn_batch(datas, features, 8, params, seed=3, epochs=epochs)
    if patience:
        assert len(set(epochs)) > 1 and max(epochs) < 2 * params.epochs  # they stopped early, not together
    else:
        assert epochs == [6, 6, 6]
    for index, (data, feature) in enumerate(zip(datas, features)):
        torch.testing.assert_close(batched[index], A.train_a2gnn(data, feature, 8, params, seed=3), rtol=1e-4, atol=1e-5)
    reordered = A.train_a2gnn_batch(datas[::-1], features[::-1], 8, params, seed=3)
    torch.testing.assert_close(reordered[0], batched[-1], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], A.train_a2gnn(datas[0], features[0], 8, params, seed=4))  # the seed counts


def test_phase_schedule_fixed_and_early_stopped():
    fixed = A.PhaseSchedule(2, A.A2GNNParams(epochs=3, stop_patience=0))
    phases = []
    while fixed.training.any():
        phases.append(fixed.phase.tolist())
        fixed.step(torch.tensor([1.0, 0.5]))
    assert phases == [[0, 0]] * 3 + [[1, 1]] * 3 and fixed.epochs.tolist() == [6, 6]
    # image 0's loss keeps falling, image 1's stays flat: 1 stops each phase after 1 + patience epochs
    early = A.PhaseSchedule(2, A.A2GNNParams(epochs=10, stop_patience=2, stop_tolerance=0.01))
    loss, finished_at = 1.0, {}
    while early.training.any():
        loss *= 0.9
        for b in torch.nonzero(early.step(torch.tensor([loss, 1.0])))[:, 0].tolist():
            finished_at[b] = early.epochs[b].item()
    assert finished_at == {1: 6, 0: 20}


def test_propagator_rejects_a_batch_of_no_images():
    with pytest.raises(WsssError, match="propagation.batch_images: must be a positive number of images, got 0"):
        Propagator({"name": "a2gnn", "batch_images": 0}, "point", cam=True, affinity_dir=None)


# --------------------------------------------------------------- dispatcher
def test_propagator_refuses_cam_free_runs_that_need_affinitynet():
    with pytest.raises(WsssError, match="cam=none: propagator 'a2gnn' needs the classifier"):
        Propagator({"name": "a2gnn"}, "point", cam=False, affinity_dir=None)
    with pytest.raises(WsssError, match="unknown propagator 'magic'"):
        Propagator({"name": "magic"}, "point", cam=True, affinity_dir=None)
    with pytest.raises(WsssError, match="AffinityNet not found"):
        Propagator({"name": "random_walk"}, "point", cam=True, affinity_dir="/nonexistent")


def test_propagator_apro_by_config_node(kernels_built):
    propagator = Propagator({"name": "apro", "zeta_global": 0.045, "iterations": 5}, "scribble", cam=False,
                            affinity_dir=None)
    assert propagator.apro.zeta_global == 0.045 and propagator.apro.iterations == 5
    data = PropagationInput(two_regions(), np.array([12]), one_seed_each())
    assert region_labels(data.label(propagator(data))) == ({0}, {12})


def test_every_propagator_handles_an_image_without_objects(kernels_built):
    from kernels import pair_affinity_from_features

    image = two_regions()
    seeds = np.full((24, 32), IGNORE, np.uint8)
    seeds[0, 0] = 0
    data = PropagationInput(image, np.zeros(0, np.int64), seeds)
    assert (data.label(apro_propagate(data)) == 0).all()
    affinity = pair_affinity_from_features(torch.zeros(1, 2, 24, 32), 3)
    assert (data.label(seeded_walk(data, affinity, 1, SeededWalkParams(radius=3, steps=8))) == 0).all()
    scores = A.a2gnn_propagate(data, torch.randn(4, 6, 8), 4, A.A2GNNParams(hidden=8, epochs=2, radius=1))
    assert scores.shape == (1, 24, 32) and (data.label(scores) == 0).all()


class _Reached(Exception):
    """Raised by a spy once it has seen where its inputs live."""


def test_apro_runs_its_kernels_on_the_propagators_device(monkeypatch):
    """``device`` reaches the compiled ops: the MST is built from a guide on the requested device (``meta``:
    a device that holds no data, so nothing can silently stay on the CPU)."""
    import kernels

    seen = {}

    def spy(guide, *args, **kwargs):
        seen["device"] = guide.device
        raise _Reached

    monkeypatch.setattr(kernels, "grid_mst", spy)
    propagator = Propagator({"name": "apro"}, "point", cam=False, affinity_dir=None, device="meta")
    data = PropagationInput(two_regions(), np.array([12]), one_seed_each())
    with pytest.raises(_Reached):
        propagator(data)
    assert seen["device"].type == "meta"


def test_a2gnn_trains_where_its_features_are(monkeypatch):
    seen = {}

    def spy(features, params, graph):
        seen.update(features=features.device, graph=graph.halo_rows.device, window=graph.in_window.device)
        raise _Reached

    monkeypatch.setattr(A, "attention_bias", spy)
    data = PropagationInput(two_regions(), np.array([12]), one_seed_each())
    with pytest.raises(_Reached):
        A.a2gnn_propagate(data, torch.zeros(4, 6, 8, device="meta"), 4, A.A2GNNParams(hidden=8, epochs=1, radius=1))
    assert {device.type for device in seen.values()} == {"meta"}


def test_a2gnn_benchmark_quick_run_writes_every_row(tmp_path):
    """The benchmark's speed table (a smoke run: 2+2 epochs) has the reference, fixed-schedule and stage rows."""
    from benchmarks import a2gnn as bench

    out = tmp_path / "a2gnn.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [case["case"] for case in report["speed"]] == ["minivoc", "voc 500x375"]
    for case in report["speed"]:
        assert case["reference_epochs"] == 4 and 0 < case["stage_mean_epochs"] <= 4
        assert case["speedup"] > 0 and case["speedup_fixed_schedule"] > 0 and 0.5 < case["agreement"] <= 1.0
