"""P2Seg (wsss.p2seg): S2I targets, grouping by offset, affinity labels, the network's shapes and one training
step, the export round trip (masks → RLE → masks, one instance per point, VOC ids 1..20)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wsss.data.annotations import PointAnnotation as Point
from wsss.instances.coco import CocoBuilder, decode_mask
from wsss.instances.cues import point_owners
from wsss.p2seg.targets import (
    affinity_labels,
    centre_heatmap,
    group_by_offset,
    offset_targets,
    owner_labels,
    point_instances,
    pool_labels,
)


# ------------------------------------------------------------------ S2I offset targets
def test_offsets_one_point_in_a_region():
    sem = np.zeros((6, 8), np.uint8)
    sem[1:5, 1:7] = 3
    points = [Point(2, 3, 3)]
    owner = point_owners(sem, points)
    offsets, weight = offset_targets(owner, points)
    assert (owner[1:5, 1:7] == 0).all() and (owner[sem == 0] == -1).all()
    assert weight.sum() == 24 and (weight[sem == 0] == 0).all()
    # every pixel of the region points at (x 2, y 3): (dy, dx) = (3 - y, 2 - x)
    assert offsets[:, 1, 6].tolist() == [2.0, -4.0]
    assert offsets[:, 4, 1].tolist() == [-1.0, 1.0]
    assert offsets[:, 3, 2].tolist() == [0.0, 0.0]
    assert (offsets[:, sem == 0] == 0).all()


def test_offsets_two_points_in_one_region_go_to_the_nearest():
    sem = np.zeros((3, 10), np.uint8)
    sem[:, :] = 7
    points = [Point(1, 1, 7), Point(8, 1, 7)]
    owner = point_owners(sem, points)
    assert owner[1].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]  # x 4 is 3 from x 1 and 4 from x 8
    offsets, _ = offset_targets(owner, points)
    assert offsets[:, 0, 4].tolist() == [1.0, -3.0]
    assert offsets[:, 2, 5].tolist() == [-1.0, 3.0]


def test_offsets_region_without_a_point_is_ignored():
    sem = np.zeros((6, 12), np.uint8)
    sem[0:6, 0:4] = 5    # holds the point
    sem[0:6, 8:12] = 5   # same class, no point: ignored
    sem[0:2, 5:7] = 9    # another class without a point: ignored
    owner = point_owners(sem, [Point(1, 1, 5)])
    offsets, weight = offset_targets(owner, [Point(1, 1, 5)])
    assert (owner[:, 0:4] == 0).all()
    assert (owner[:, 8:12] == -1).all() and (owner[0:2, 5:7] == -1).all()
    assert weight[:, 8:12].sum() == 0 and (offsets[:, :, 8:12] == 0).all()


def test_centre_heatmap_gaussian_per_class():
    heat = centre_heatmap([Point(5, 4, 2), Point(20, 20, 2), Point(0, 0, 20)], (30, 30), 21, sigma=2.0)
    assert heat.shape == (20, 30, 30)
    assert heat[1, 4, 5] == 1.0 and heat[19, 0, 0] == 1.0 and heat[1, 20, 20] == 1.0
    assert heat[1, 4, 7] == pytest.approx(np.exp(-4 / 8))
    assert heat[0].sum() == 0 and heat[1, 4, 5 + 8] == 0   # cut at 3σ + 1 = 7 pixels


# ------------------------------------------------------------------ grouping by offset
def test_group_by_offset_on_a_hand_made_field():
    region = np.zeros((4, 6), bool)
    region[:, 1:5] = True
    offsets = np.zeros((2, 4, 6), np.float32)
    # columns 1-2 point 3 to the right (near the point at x 4), columns 3-4 point 3 to the left (near x 0):
    # nearest-point grouping would cut at x 2/3 the other way round
    offsets[1, :, 1:3] = 3.0
    offsets[1, :, 3:5] = -3.0
    points_xy = np.array([[0, 1], [4, 1]], np.float64)
    owner = group_by_offset(region, offsets, points_xy)
    assert owner[:, 0].tolist() == [-1] * 4 and owner[:, 5].tolist() == [-1] * 4
    assert (owner[:, 1:3] == 1).all() and (owner[:, 3:5] == 0).all()
    assert (group_by_offset(region, offsets, np.zeros((0, 2))) == -1).all()


# ------------------------------------------------------------------ I2S affinity labels
def test_affinity_labels_of_a_tiny_mask():
    labels = np.zeros((4, 4), np.int64)
    labels[0:2, 2:4] = 15          # one class cell (top right)
    labels[2:4, 0:2] = 255         # an ignored cell (bottom left)
    labels[3, 3] = 15              # bottom right: mixed → ignored
    cells = pool_labels(labels, 2)
    assert cells.tolist() == [[0, 15], [255, 255]]
    aff = affinity_labels(cells)
    assert aff.tolist() == [[1, 0, -1, -1], [0, 1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1]]
    # an instance map: two instances of one class are different, background stays 0
    owner = np.array([[0, 0, -1, 1], [0, 0, -1, 1]])
    background = np.array([[False, False, True, False]] * 2)
    assert owner_labels(owner, background).tolist() == [[1, 1, 0, 2], [1, 1, 0, 2]]
    # padding (3 → 2 cells of 2) is ignored
    assert pool_labels(np.zeros((3, 3), np.int64), 2).tolist() == [[0, 255], [255, 255]]


# ------------------------------------------------------------------ export
def _field(points, size):
    """Probabilities and offsets of a perfect network: each point's class in a square, offsets to the point."""
    probs = np.zeros((21, *size), np.float32)
    probs[0] = 1.0
    sem = np.zeros(size, np.uint8)
    for p in points:
        sem[max(0, p.y - 3):p.y + 4, max(0, p.x - 3):p.x + 4] = p.class_id
    for c in np.unique(sem):
        probs[:, sem == c] = 0.0
        probs[c, sem == c] = 0.9
        probs[0, sem == c] += 0.1
    offsets, _ = offset_targets(point_owners(sem, points), points)
    return probs, offsets


def test_export_round_trip_one_instance_per_point_voc_ids():
    size = (24, 60)
    points = [Point(4, 4, 1), Point(9, 4, 1), Point(30, 12, 20), Point(50, 18, 7)]
    probs, offsets = _field(points, size)
    probs[7] = 0.0          # the car's class is never predicted: its point gets the fallback square
    probs[0] = 1.0 - probs[1:].sum(axis=0)
    inst = point_instances(probs, offsets, points, fallback_size=4, fallback_score=0.5)
    assert inst.labels.tolist() == [1, 1, 20, 7]
    assert not (inst.masks[0] & inst.masks[1]).any()                  # touching aeroplanes split by offset
    assert inst.masks[0][4, 4] and inst.masks[1][4, 9]
    assert inst.scores[2] == pytest.approx(0.9, abs=1e-5)
    assert inst.scores[3] == 0.5 and inst.masks[3].sum() == 16        # fallback
    builder = CocoBuilder(description="test")
    builder.add_instances(builder.add_image("2007_000001", *size, "2007_000001.jpg"), inst)
    data = json.loads(json.dumps(builder.to_dict()))
    assert [a["category_id"] for a in data["annotations"]] == [1, 1, 20, 7]
    assert [c["id"] for c in data["categories"]] == list(range(1, 21))
    for ann, mask in zip(data["annotations"], inst.masks):
        assert np.array_equal(decode_mask(ann["segmentation"]), mask)


# ------------------------------------------------------------------ the network and its losses
def test_network_shapes_and_one_training_step():
    from wsss.p2seg.model import P2SegNet
    from wsss.p2seg.train import p2seg_losses
    from wsss.params import P2SegSchedule

    torch.manual_seed(0)
    net = P2SegNet(21, "resnet10", 8, 16, "", (1, 2, 3), 16, 8, 8, affinity_pool=2)
    out = net(torch.randn(2, 3, 64, 64))
    assert out["semantic"].shape == (2, 21, 64, 64) and out["centre"].shape == (2, 20, 64, 64)
    assert out["offset"].shape == (2, 2, 64, 64) and out["affinity"].shape == (2, 64, 64)
    assert torch.allclose(out["refined"].sum(dim=1), torch.ones(2, 64, 64), atol=1e-4)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 8:40, 8:40] = 3
    batch = {"semantic": labels, "centre": torch.zeros(2, 20, 64, 64), "offset": torch.zeros(2, 2, 64, 64),
             "offset_weight": (labels > 0).float(),
             "affinity": torch.from_numpy(np.stack([affinity_labels(pool_labels(labels[0].numpy(), 8))] * 2))}
    losses = p2seg_losses(out, batch, P2SegSchedule())
    assert set(losses) == {"semantic", "i2s", "centre", "offset", "affinity"}
    sum(losses.values()).backward()
    assert net.embedding[1].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ training: two rounds, resumable
def _tiny_settings():
    from wsss.params import P2SegModelSettings, P2SegSchedule

    model = P2SegModelSettings(arch="resnet10", width=8, aspp_rates=(1, 2, 3), decoder_channels=16, head_channels=8,
                               embedding_channels=8, affinity_pool=2)
    schedule = P2SegSchedule(iterations=4, batch_size=2, lr=1e-3, warmup_iterations=1, crop=32, min_component_px=5,
                             checkpoint_every=1, log_every=1, sync_bn=False)
    return model, schedule


def test_training_refines_once_and_resumes_exactly(tmp_path):
    from tests.voc_fixture import gt_as_pseudolabels, make_tiny_voc
    from wsss.data.voc import VOCDataset
    from wsss.p2seg.train import evaluate_p2seg, train_p2seg
    from wsss.params import P2SegExportSettings

    torch.set_num_threads(1)
    root = make_tiny_voc(tmp_path / "voc")
    labels = gt_as_pseudolabels(root, tmp_path / "labels")
    dataset, cpu = VOCDataset(root, "train"), torch.device("cpu")
    model_settings, settings = _tiny_settings()
    straight, history = train_p2seg(dataset, labels, root / "Points", model_settings, settings, 0, cpu,
                                    tmp_path / "a", "x")
    assert [(h["iteration"], h["round"]) for h in history] == [(1, 0), (2, 0), (3, 1), (4, 1)]

    def interrupt(iteration):
        if iteration == 3:  # in the refined round
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_p2seg(dataset, labels, root / "Points", model_settings, settings, 0, cpu, tmp_path / "b", "x",
                    on_step=interrupt)
    resumed, history2 = train_p2seg(dataset, labels, root / "Points", model_settings, settings, 0, cpu,
                                    tmp_path / "b", "x")
    assert [h["loss"] for h in history2] == [h["loss"] for h in history]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    # its own instances on val: one per annotated point, scored
    val = VOCDataset(root, "val")
    record, scorer = evaluate_p2seg(straight, val, root / "Points", cpu, P2SegExportSettings(fallback_size=4))
    n_points = sum(len((root / "Points" / f"{i}.txt").read_text().split("\n")) - 1 for i in val.ids)
    assert record["n_instances"] == n_points and 0.0 <= record["ap50"] <= 100.0
