"""COCODataset reads the real COCO fixtures (masks agree with boxes, crowd is ignore) and rejects broken json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.realdata import realdata, voc_copy
from wsss.data.coco import COCODataset, coco_box_to_pixels
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError


@pytest.fixture(scope="module")
def icevision():
    return COCODataset(realdata("icevision", "coco"), "val2017", annotation_file="annotations.json", image_folder="images")


def test_ids_sizes_and_category_mapping(icevision):
    assert icevision.ids == ["000000128372", "000000404249", "000000343934", "000000194216", "000000464689", "000000000089"]
    assert icevision.num_classes == 81 and icevision.class_names[1] == "person" and icevision.class_names[80] == "toothbrush"
    assert icevision.contiguous_id(1) == 1 and icevision.contiguous_id(44) == 40 and icevision.contiguous_id(90) == 80
    assert all(icevision.category_id(icevision.contiguous_id(c)) == c for c in icevision.category_ids)
    assert icevision.coco_image_id("000000128372") == 128372
    assert icevision.image_size("000000194216") == (294, 640)
    for image_id in icevision.ids:
        assert icevision.load_image(image_id).shape[:2] == icevision.image_size(image_id)


def test_instance_masks_match_their_boxes(icevision):
    total = 0
    for image_id in icevision.ids:
        masks, labels = icevision.instances(image_id)
        boxes = [o for o in icevision.load_annotation(image_id).objects if not o.difficult]
        assert len(masks) == len(labels) == len(boxes)
        for mask, label, obj in zip(masks, labels, boxes):
            ys, xs = np.nonzero(mask)
            assert label == obj.class_id
            assert np.allclose((xs.min(), ys.min(), xs.max(), ys.max()), obj.box, atol=2)
            total += 1
    assert total == 35  # 36 annotations, one crowd


def test_semantic_masks_labels_and_crowd(icevision):
    counts = dict(zip(*np.unique(icevision.load_class_mask("000000128372"), return_counts=True)))
    assert set(counts) == {0, 1, 3, 6, 27}  # person, car, bus, handbag (category 31 -> 27)
    expected = np.zeros(80, np.float32)
    expected[[0, 2, 5, 26]] = 1
    assert icevision.image_labels("000000128372").tolist() == expected.tolist()
    bottles = icevision.load_class_mask("000000464689")
    assert set(np.unique(bottles)) == {0, 40, 255}  # the crowd RLE is ignore
    masks, labels = icevision.instances("000000464689")
    assert len(masks) == 13 and (labels == 40).all() and not (masks.any(axis=0) & (bottles == 255)).any()
    (crowd,) = [o for o in icevision.load_annotation("000000464689").objects if o.difficult]
    assert crowd.name == "bottle"
    objects = icevision.load_object_mask("000000464689")
    assert objects.max() == 255 and set(np.unique(objects)) - {255} == set(range(14))
    empty = icevision.load_class_mask("000000000089")
    assert not empty.any() and icevision.image_labels("000000000089").sum() == 0
    assert icevision.instances("000000000089")[0].shape == (0, 480, 640)


def test_labelme_coco_agrees_with_its_voc_pngs(tmp_path):
    coco = COCODataset(realdata("labelme", "data_dataset_coco"), "x", annotation_file="annotations.json", image_folder=".")
    assert coco.num_classes == 21 and coco.class_names[15] == "person"  # _background_ is not a class
    voc = VOCDataset(voc_copy(tmp_path, realdata("labelme", "data_dataset_voc"), coco.ids), "train")
    for image_id in coco.ids:
        a, b = coco.load_class_mask(image_id), voc.load_class_mask(image_id)
        valid = b != 255
        assert (a[valid] == b[valid]).mean() > 0.99
        assert coco.image_labels(image_id).tolist() == voc.image_labels(image_id).tolist()


def test_coco_box_to_pixels():
    assert coco_box_to_pixels([191.0, 107.0, 123.0, 221.0], (400, 500)) == (191, 107, 313, 327)
    assert coco_box_to_pixels([175.14, 175.68, 321.08, 240], (480, 640)) == (175, 175, 496, 415)
    assert coco_box_to_pixels([-0.4, 0, 10.9, 5], (5, 10)) == (0, 0, 9, 4)


# ------------------------------------------------------------------ bad input
def make_coco(tmp_path: Path, mutate=None) -> Path:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "val2017" / "a.jpg")
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 30, "height": 20}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0, "bbox": [2, 3, 10, 5], "area": 50,
             "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]},
        ],
    }
    if mutate:
        mutate(data)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root


def test_small_coco_default_layout(tmp_path):
    dataset = COCODataset(make_coco(tmp_path), "val2017")
    mask = dataset.load_class_mask("a")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 2}
    ys, xs = np.nonzero(mask == 2)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (2, 3, 11, 7)
    assert dataset.load_annotation("a").objects[0].box == (2, 3, 11, 7)


def test_ignore_category_regions_are_255_and_nothing_else(tmp_path):
    # labelme's __ignore__ (and minicoco's void band): an ignore region, not an object, a box or a tag
    def mutate(data):
        data["categories"].append({"id": 255, "name": "__ignore__"})
        data["annotations"].append({"id": 2, "image_id": 7, "category_id": 255, "iscrowd": 1, "bbox": [0, 0, 30, 3],
                                    "area": 90, "segmentation": [[0, 0, 30, 0, 30, 3, 0, 3]]})
    dataset = COCODataset(make_coco(tmp_path, mutate), "val2017")
    assert dataset.num_classes == 3 and dataset.class_names == ("background", "person", "car")
    mask, objects = dataset.load_class_mask("a"), dataset.load_object_mask("a")
    assert (mask[:3] == 255).all() and (objects[:3] == 255).all() and set(np.unique(mask[3:])) == {0, 2}
    assert set(np.unique(objects[3:])) == {0, 1}
    assert [o.box for o in dataset.load_annotation("a").objects] == [(2, 3, 11, 7)]
    assert dataset.image_labels("a").tolist() == [0.0, 1.0] and dataset.instances("a")[1].tolist() == [2]


def ann(data):
    return data["annotations"][0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("images"), r"malformed COCO JSON: missing list 'images'"),
        (lambda d: ann(d).update(image_id=99), r"annotation 1: unknown image_id 99"),
        (lambda d: ann(d).update(category_id=5), r"annotation 1: unknown category_id 5"),
        (lambda d: ann(d).update(bbox=[2, 3, 0, 5]), r"annotation 1: empty or inverted bbox \[2, 3, 0, 5\]"),
        (lambda d: ann(d).update(bbox=[2, 3, -4, 5]), r"annotation 1: empty or inverted bbox"),
        (lambda d: ann(d).update(bbox=[25, 3, 10, 5]), r"annotation 1: bbox \[25, 3, 10, 5\] lies outside the 30x20 image"),
        (lambda d: ann(d).update(bbox=[2, 3, "x", 5]), r"annotation 1: malformed bbox"),
        (lambda d: ann(d).update(segmentation=[[1, 2, 3, 4]]), r"annotation 1: malformed polygon"),
        (lambda d: ann(d).update(segmentation={"counts": [600], "size": [30, 20]}),
         r"annotation 1: RLE size \[30, 20\] differs from the image size \[20, 30\]"),
        (lambda d: d["images"].append(dict(d["images"][0])), r"image 7: duplicate image id"),
        (lambda d: d["images"][0].update(height=0), r"image 7 \(a\.jpg\): invalid size"),
    ],
)
def test_bad_json(tmp_path, mutate, message):
    with pytest.raises(WsssError, match=r"instances_val2017\.json: " + message):
        COCODataset(make_coco(tmp_path, mutate), "val2017")


def test_malformed_and_missing_files(tmp_path):
    root = make_coco(tmp_path)
    with pytest.raises(WsssError, match=r"instances_train2017\.json: annotation file for split 'train2017' not found$"):
        COCODataset(root, "train2017")
    (root / "annotations" / "instances_val2017.json").write_text('{"images": [')
    with pytest.raises(WsssError, match=r"instances_val2017\.json: malformed JSON \(line 1"):
        COCODataset(root, "val2017")
    with pytest.raises(WsssError, match=r"nowhere: dataset root not found$"):
        COCODataset(tmp_path / "nowhere", "val2017")


def test_image_size_unlike_json(tmp_path):
    root = make_coco(tmp_path, lambda d: d["images"][0].update(width=31))
    dataset = COCODataset(root, "val2017")
    with pytest.raises(WsssError, match=r"a\.jpg: image \(decoded\) size 30x20 differs from its image size 31x20"):
        dataset.load_image("a")
    (root / "val2017" / "a.jpg").unlink()
    with pytest.raises(WsssError, match=r"a\.jpg: image file not found"):
        dataset.load_image("a")
