"""Instance pseudo-labels from semantic maps + cues, and their COCO export (RLE, categories, pycocotools)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.voc_fixture import gt_as_pseudolabels, make_tiny_voc
from wsss.data.annotations import PointAnnotation as Point
from wsss.data.classes import VOC_CLASSES
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError
from wsss.instances.coco import (
    CocoBuilder,
    category_id,
    class_of_category,
    coco_api,
    coco_image_id,
    dataset_to_coco,
    decode_mask,
    encode_mask,
    instance_results,
    voc_categories,
)
from wsss.instances.cues import (
    instances_from_boxes,
    instances_from_components,
    instances_from_points,
    make_instances,
    resolve_cue,
)
from wsss.instances.instance_set import InstanceSet
from wsss.instances.scoring import InstanceScorer
from wsss.params import InstanceSettings


# ------------------------------------------------------------------ RLE and categories
def test_masks_rle_roundtrip_exact():
    rng = np.random.default_rng(0)
    cases = [rng.random((37, 53)) > 0.5, np.zeros((5, 7), bool), np.ones((6, 4), bool)]
    blob = np.zeros((30, 40), bool)
    blob[3:17, 9:31] = True
    blob[20, 0] = True
    cases.append(blob)
    for mask in cases:
        rle = encode_mask(mask)
        assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
        again = json.loads(json.dumps(rle))  # JSON-ready
        np.testing.assert_array_equal(decode_mask(again), mask)


def test_category_ids_are_voc_class_ids_both_ways():
    categories = voc_categories()
    assert [c["id"] for c in categories] == list(range(1, 21))
    assert categories[0]["name"] == "aeroplane" and categories[-1]["name"] == "tvmonitor"
    for cid in range(1, 21):
        assert category_id(cid) == cid
        assert class_of_category(category_id(cid)) == cid
        assert {c["id"]: c["name"] for c in categories}[category_id(cid)] == VOC_CLASSES[cid]
    for bad in (0, 21, 255):
        with pytest.raises(WsssError):
            category_id(bad)
        with pytest.raises(WsssError):
            class_of_category(bad)
    # an exported instance of class 12 (dog) carries category 12, whose name is dog (IRN wrote 11)
    builder = CocoBuilder()
    image = builder.add_image("2007_000032", 4, 4)
    mask = np.zeros((1, 4, 4), bool)
    mask[0, 1:3, 1:3] = True
    builder.add_instances(image, InstanceSet(mask, np.array([12]), np.array([0.9], np.float32)))
    data = builder.to_dict()
    ann = data["annotations"][0]
    assert ann["category_id"] == 12
    assert {c["id"]: c["name"] for c in data["categories"]}[12] == "dog"
    assert ann["bbox"] == [1.0, 1.0, 2.0, 2.0] and ann["area"] == 4.0 and ann["iscrowd"] == 0


def test_image_ids_stable_and_unique():
    assert coco_image_id("2007_000032") == 2007000032
    assert coco_image_id("000123") == 123
    assert coco_image_id("minivoc_a") == coco_image_id("minivoc_a")  # same name, same id, any order
    assert coco_image_id("minivoc_a") != coco_image_id("minivoc_b")
    builder = CocoBuilder()
    builder.add_image("2007_000032", 2, 2)
    with pytest.raises(WsssError, match="collide"):
        builder.add_image("2007000_032", 2, 2)


# ------------------------------------------------------------------ cues
def _two_blobs() -> np.ndarray:
    """20×30: class 3 at rows 2..7 × cols 2..9 and rows 12..17 × cols 2..9; class 5 at rows 5..15 × cols 15..27;
    a 1-pixel class-3 fragment at (0, 29); a 255 pixel inside the class-5 blob."""
    sem = np.zeros((20, 30), np.uint8)
    sem[2:8, 2:10] = 3
    sem[12:18, 2:10] = 3
    sem[5:16, 15:28] = 5
    sem[0, 29] = 3
    sem[10, 20] = 255
    return sem


def test_components_one_instance_per_region_fragments_dropped():
    sem = _two_blobs()
    inst = instances_from_components(sem, min_fraction=0.01)  # 6 px minimum: the 1-px fragment goes
    assert sorted(inst.labels.tolist()) == [3, 3, 5]
    areas = sorted(int(m.sum()) for m in inst.masks)
    assert areas == [48, 48, 11 * 13 - 1]
    assert not inst.masks[:, 10, 20].any()  # ignore pixels belong to no instance
    # area score: larger region ranks first, scores in (0, 1]
    assert inst.scores[inst.labels == 5][0] > inst.scores[inst.labels == 3].max() > 0
    kept_all = instances_from_components(sem, min_fraction=0.0)
    assert len(kept_all) == 4


def test_components_scores_from_probabilities():
    sem = np.zeros((4, 4), np.uint8)
    sem[:2, :2] = 7
    probs = np.zeros((21, 4, 4), np.float32)
    probs[7, :2, :2] = [[0.5, 0.7], [0.9, 0.9]]
    inst = instances_from_components(sem, 0.0, probs)
    assert inst.scores[0] == pytest.approx(0.75)


def test_points_split_a_region_among_its_points():
    sem = np.zeros((20, 40), np.uint8)
    sem[5:15, 2:38] = 12          # one wide dog region holding two dogs
    sem[0:3, 0:3] = 12            # a 9-px dog region (below min_component_px) with a point
    sem[17:20, 30:40] = 8         # a cat region without any point: left out
    points = [Point(8, 10, 12), Point(30, 10, 12), Point(1, 1, 12), Point(20, 19, 15), Point(20, 10, 12, 0.2)]
    inst = instances_from_points(sem, points, min_component_px=20, min_confidence=0.5)
    assert inst.labels.tolist() == [12, 12]
    left, right = inst.masks
    assert left[10, 3] and left[10, 18] and not left[10, 20]  # nearest point: the boundary is at x = 19
    assert right[10, 20] and right[10, 37]
    assert int(left.sum() + right.sum()) == 10 * 36
    assert not (left & right).any()
    # fallback squares for the points whose class has no region under them
    inst = instances_from_points(sem, points, min_component_px=20, min_confidence=0.5, fallback_size=4)
    assert inst.labels.tolist() == [12, 12, 12, 15]
    square = inst.masks[3]
    assert square.sum() == 3 * 4 and square[19, 20]  # clipped at the bottom border
    assert inst.scores[3] < inst.scores[1]            # fallbacks get half the score


def test_boxes_one_instance_per_box_smallest_box_wins():
    sem = np.zeros((20, 30), np.uint8)
    sem[2:18, 2:28] = 15
    sem[0:2, 0:30] = 15   # person pixels outside every box: in no instance
    boxes = [(15, (2, 2, 20, 17)), (15, (12, 4, 27, 15)), (3, (0, 0, 5, 5))]  # the bird box has no bird pixel
    inst = instances_from_boxes(sem, boxes)
    assert inst.labels.tolist() == [15, 15, 3]
    big, small, bird = inst.masks
    overlap = np.zeros_like(big)
    overlap[4:16, 12:21] = True
    assert small[overlap].all() and not big[overlap].any()
    assert not (big | small)[0:2].any()
    assert bird.sum() == 36 and inst.scores[2] < inst.scores[0]  # filled box, half score
    assert len(instances_from_boxes(sem, boxes, empty_box="drop")) == 2
    with pytest.raises(WsssError):
        instances_from_boxes(sem, boxes, empty_box="grabcut")


def test_point_files_through_the_annotation_reader(tmp_path):
    """make_instances reads Points/<id>.txt with wsss.data.annotations; background points (-1) make no instance."""
    sem = np.zeros((8, 12), np.uint8)
    sem[2:6, 1:5] = 12
    (tmp_path / "a.txt").write_text("3 4 11 1.0\n\n10.4 2 -1 1.0\n")
    inst = make_instances(None, "a", sem, "points", InstanceSettings(min_component_px=1), tmp_path)
    assert inst.labels.tolist() == [12] and inst.masks[0].sum() == 16
    (tmp_path / "a.txt").write_text("3 4 20 1.0\n")
    with pytest.raises(WsssError, match="a.txt: line 1"):
        make_instances(None, "a", sem, "points", InstanceSettings(), tmp_path)


def test_resolve_cue():
    assert [resolve_cue("auto", s) for s in ("image", "point", "scribble", "box")] == \
        ["components", "points", "components", "boxes"]
    assert resolve_cue("boxes", "image") == "boxes"
    with pytest.raises(WsssError):
        resolve_cue("auto", "weird")


# ------------------------------------------------------------------ pycocotools end to end
@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc") / "VOC"
    make_tiny_voc(root, n_train=3, n_val=2)
    return root


def test_export_per_supervision_on_the_fixture(tiny_voc):
    dataset = VOCDataset(tiny_voc, "train")
    settings = InstanceSettings(min_component_px=5)
    for cue in ("components", "points", "boxes"):
        for name in dataset.ids:
            gt_masks, gt_labels = dataset.instances(name)
            sem = dataset.load_class_mask(name)
            inst = make_instances(dataset, name, sem, cue, settings, tiny_voc / "Points")
            assert sorted(inst.labels.tolist()) == sorted(gt_labels.tolist()), cue
            # ground-truth semantics → instances equal to the ground-truth instances
            for mask, label in zip(inst.masks, inst.labels):
                assert any((mask == g).all() for g, lab in zip(gt_masks, gt_labels) if lab == label), cue


def test_json_passes_pycocotools(tiny_voc, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset = VOCDataset(tiny_voc, "train")
    gt = dataset_to_coco(dataset, progress=False)
    assert len(gt["annotations"]) == 6 and len(gt["images"]) == 3
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    api = COCO(str(path))  # loads from a file like every COCO tool
    assert sorted(api.getCatIds()) == list(range(1, 21))
    # the fixture's instances as results, one of them perturbed: loadRes + COCOeval run
    results = []
    for name in dataset.ids:
        masks, labels = dataset.instances(name)
        scores = np.linspace(0.9, 0.5, len(labels)).astype(np.float32)
        results += instance_results(coco_image_id(name), InstanceSet(masks, labels, scores))
    results[0]["segmentation"] = encode_mask(np.zeros((48, 64), bool) | decode_mask(results[0]["segmentation"])[::-1])
    dets = api.loadRes(json.loads(json.dumps(results)))
    evaluator = COCOeval(api, dets, "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert 0.5 < evaluator.stats[0] < 1.0
    # the scorer agrees: ground truth scored against itself is perfect on both protocols
    scorer = InstanceScorer(dataset)
    for name in dataset.ids:
        masks, labels = dataset.instances(name)
        scorer.add(name, InstanceSet(masks, labels, np.ones(len(labels), np.float32)))
    record = scorer.record()
    assert record["ap50"] == pytest.approx(100.0) and record["ap75"] == pytest.approx(100.0)
    assert record["AP"] == pytest.approx(100.0) and record["n_images"] == 3
    assert coco_api(scorer.ground_truth()).getImgIds()


@pytest.mark.slow
def test_export_instances_stage(tiny_voc, tmp_path):
    import subprocess
    import sys

    from wsss.config import REPO_ROOT

    labels = gt_as_pseudolabels(tiny_voc, tmp_path / "pl")
    out = tmp_path / "instances"
    run = subprocess.run(
        [sys.executable, "-m", "stages.export_instances", "dataset=folder", f"dataset.root={tiny_voc}",
         "dataset.name=tiny", "supervision=point", "instances.min_component_px=5", f"labels_dir={labels}",
         f"out_dir={out}", "num_threads=1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads((out / "instances.json").read_text())
    api = coco_api(data)
    assert len(api.getAnnIds()) == 6 and all("score" in a for a in data["annotations"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ap50"] == pytest.approx(100.0) and metrics["protocol"]["cue"] == "points"
