"""VOCDataset reads the real VOC fixtures exactly, and rejects broken input with one-line messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.realdata import realdata, voc_copy
from wsss.data.voc import VOCDataset, parse_voc_xml
from wsss.errors import WsssError
from wsss.io import save_label_png


def counts(mask: np.ndarray) -> dict[int, int]:
    values, number = np.unique(mask, return_counts=True)
    return {int(v): int(n) for v, n in zip(values, number)}


@pytest.fixture
def datum(tmp_path):
    return VOCDataset(voc_copy(tmp_path, realdata("datum", "VOC2012"), ["2007_000027", "2007_000032", "2007_000033"]), "train")


@pytest.fixture
def icevision(tmp_path):
    return VOCDataset(voc_copy(tmp_path, realdata("icevision", "VOC2012"), ["2007_000063", "2011_003353"]), "train")


@pytest.fixture
def labelme(tmp_path):
    ids = ["2011_000003", "2011_000006", "2011_000025"]
    return VOCDataset(voc_copy(tmp_path, realdata("labelme", "data_dataset_voc"), ids), "train")


def test_split_and_images(datum):
    assert datum.ids == ["2007_000027", "2007_000032", "2007_000033"] and len(datum) == 3
    assert datum.split == "train" and isinstance(datum.root, Path)
    image = datum.load_image("2007_000032")
    assert image.shape == (281, 500, 3) and image.dtype == np.uint8
    assert datum.image_size("2007_000027") == (500, 486)
    assert datum.image_size("2007_000033") == (366, 500)


def test_class_masks_match_readme_counts(datum, icevision):
    assert not datum.has_class_mask("2007_000027") and datum.has_class_mask("2007_000032")
    mask = datum.load_class_mask("2007_000032")
    assert mask.dtype == np.uint8 and mask.shape == (281, 500)
    assert counts(mask) == {0: 129545, 1: 4734, 15: 866, 255: 5355}
    assert counts(datum.load_class_mask("2007_000033")) == {0: 143868, 1: 30937, 255: 8195}
    assert counts(icevision.load_class_mask("2007_000063")) == {0: 72224, 9: 78930, 12: 27632, 255: 8714}


def test_labelme_masks_match_readme_counts(labelme):
    assert counts(labelme.load_class_mask("2011_000003")) == {0: 125787, 5: 873, 15: 32880, 255: 9460}
    assert counts(labelme.load_class_mask("2011_000006")) == {0: 93370, 9: 44403, 15: 34816, 18: 14002, 255: 909}
    assert counts(labelme.load_class_mask("2011_000025")) == {0: 62013, 6: 118231, 7: 7256}
    masks, labels = labelme.instances("2011_000006")
    assert sorted(labels.tolist()) == [9, 15, 15, 15, 15, 18]
    assert masks.sum() == 44403 + 34816 + 14002


def test_object_mask_and_instances(icevision):
    objects = icevision.load_object_mask("2007_000063")
    assert counts(objects) == {0: 72224, 1: 27632, 2: 78930, 255: 8714}
    masks, labels = icevision.instances("2007_000063")
    assert masks.shape == (2, 375, 500) and masks.dtype == bool
    assert labels.tolist() == [12, 9]  # dog then chair, the XML's object order
    assert masks[0].sum() == 27632 and masks[1].sum() == 78930
    assert not (masks.any(axis=0) & (objects == 255)).any()  # void band in no mask
    # each instance's mask bbox lies inside its XML box (VOC's 0-based inclusive coordinates)
    annotation = icevision.load_annotation("2007_000063")
    for mask, obj in zip(masks, annotation.objects):
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = obj.box
        assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1


def test_annotation_boxes_are_zero_based(datum):
    annotation = datum.load_annotation("2007_000032")
    assert (annotation.width, annotation.height) == (500, 281)
    assert [o.name for o in annotation.objects] == ["aeroplane", "aeroplane", "person", "person"]
    assert [o.class_id for o in annotation.objects] == [1, 1, 15, 15]
    assert annotation.objects[0].box == (103, 77, 374, 182)
    assert not annotation.objects[0].difficult and not annotation.objects[0].truncated
    person = datum.load_annotation("2007_000027")
    assert len(person.objects) == 1 and person.objects[0].box == (173, 100, 348, 350)  # parts skipped


def test_action_xml_with_fractional_box(icevision):
    annotation = icevision.load_annotation("2011_003353")
    (obj,) = annotation.objects
    assert obj.name == "person" and obj.box == (129, 45, 374, 469) and not obj.truncated


def test_image_labels_prefer_xml_then_mask(datum, icevision):
    expected = np.zeros(20, np.float32)
    expected[[0, 14]] = 1
    assert datum.image_labels("2007_000032").tolist() == expected.tolist()
    expected = np.zeros(20, np.float32)
    expected[0] = 1
    labels = datum.image_labels("2007_000033")  # no XML: from the class mask
    assert labels.dtype == np.float32 and labels.tolist() == expected.tolist()
    expected = np.zeros(20, np.float32)
    expected[[8, 11]] = 1
    assert icevision.image_labels("2007_000063").tolist() == expected.tolist()


# ------------------------------------------------------------------ bad input
def make_root(tmp_path: Path, ids=("a",), size=(4, 6)) -> Path:
    root = tmp_path / "voc"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    (root / "JPEGImages").mkdir()
    for image_id in ids:
        Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    return root


XML = """<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>
<object><name>{name}</name><difficult>1</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>
</annotation>"""


def write_xml(root: Path, image_id="a", name="dog", box=(1, 1, 6, 4), w=6, h=4) -> Path:
    (root / "Annotations").mkdir(exist_ok=True)
    path = root / "Annotations" / f"{image_id}.xml"
    path.write_text(XML.format(w=w, h=h, name=name, x0=box[0], y0=box[1], x1=box[2], y1=box[3]))
    return path


def test_missing_root_and_split(tmp_path):
    with pytest.raises(WsssError, match=r"nowhere: dataset root not found$"):
        VOCDataset(tmp_path / "nowhere", "train")
    root = make_root(tmp_path)
    with pytest.raises(WsssError, match=r"ImageSets/Segmentation/val\.txt: split 'val' not found$"):
        VOCDataset(root, "val")
    (root / "ImageSets" / "Segmentation" / "empty.txt").write_text("\n")
    with pytest.raises(WsssError, match=r"empty\.txt: split file lists no image ids"):
        VOCDataset(root, "empty")


def test_train_aug_and_psa_style_lists(tmp_path):
    root = make_root(tmp_path, ids=("a", "b"))
    (root / "ImageSets" / "SegmentationAug").mkdir()
    (root / "ImageSets" / "SegmentationAug" / "train_aug.txt").write_text(
        "/JPEGImages/a.jpg /SegmentationClassAug/a.png\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n"
    )
    dataset = VOCDataset(root, "train_aug", gt_folder="SegmentationClassAug")
    assert dataset.ids == ["a", "b"] and dataset.split_file.parent.name == "SegmentationAug"


def test_missing_and_truncated_image(tmp_path):
    root = make_root(tmp_path, ids=("a", "b"))
    dataset = VOCDataset(root, "train")
    (root / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(WsssError, match=r"JPEGImages/b\.jpg: image file not found$"):
        dataset.load_image("b")
    data = (root / "JPEGImages" / "a.jpg").read_bytes()
    (root / "JPEGImages" / "a.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(WsssError, match=r"JPEGImages/a\.jpg: unreadable or truncated image"):
        dataset.load_image("a")
    (root / "JPEGImages" / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(WsssError, match=r"JPEGImages/a\.jpg: unreadable or truncated image"):
        dataset.image_size("a")


def test_bad_class_masks(tmp_path):
    root = make_root(tmp_path)
    dataset = VOCDataset(root, "train")
    label = np.zeros((4, 6), np.uint8)
    label[0, 0] = 21
    label[1, 1] = 254
    save_label_png(root / "SegmentationClass" / "a.png", label)
    with pytest.raises(WsssError, match=r"SegmentationClass/a\.png: mask values 21, 254 outside 0\.\.20 and 255$"):
        dataset.load_class_mask("a")
    save_label_png(root / "SegmentationClass" / "a.png", np.zeros((5, 6), np.uint8))
    with pytest.raises(WsssError, match=r"SegmentationClass/a\.png: mask size 6x5 differs from its image size 6x4"):
        dataset.load_class_mask("a")
    (root / "SegmentationClass" / "a.png").unlink()
    with pytest.raises(WsssError, match=r"SegmentationClass/a\.png: file not found"):
        dataset.load_class_mask("a")
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(root / "SegmentationClass" / "a.png")
    with pytest.raises(WsssError, match=r"a\.png: label PNG must be palette"):
        dataset.load_class_mask("a")


def test_instance_without_class(tmp_path):
    root = make_root(tmp_path)
    save_label_png(root / "SegmentationClass" / "a.png", np.zeros((4, 6), np.uint8))
    objects = np.zeros((4, 6), np.uint8)
    objects[1:3, 1:3] = 1
    save_label_png(root / "SegmentationObject" / "a.png", objects)
    with pytest.raises(WsssError, match=r"SegmentationObject/a\.png: instance 1 covers no object class"):
        VOCDataset(root, "train").instances("a")


def test_xml_flags_and_valid_box(tmp_path):
    root = make_root(tmp_path)
    write_xml(root, box=(1, 1, 6, 4))  # the whole 6x4 image
    (obj,) = VOCDataset(root, "train").load_annotation("a").objects
    assert obj.box == (0, 0, 5, 3) and obj.difficult and obj.class_id == 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="dinosaur"), r"a\.xml: object 1: unknown class name 'dinosaur'"),
        (dict(box=(4, 1, 2, 3)), r"a\.xml: object 1 \(dog\) box \(0-based\) \(3, 0, 1, 2\) is inverted or empty"),
        (dict(box=(1, 1, 7, 4)), r"a\.xml: object 1 \(dog\) box \(0-based\) \(0, 0, 6, 3\) lies outside the 6x4 image"),
        (dict(box=(0, 1, 3, 4)), r"a\.xml: object 1 \(dog\) box \(0-based\) \(-1, 0, 2, 3\) lies outside"),
        (dict(box=(1, "x", 3, 4)), r"a\.xml: malformed XML: object 1 \(dog\) <ymin> is 'x', not a number"),
        (dict(w=7), r"a\.xml: <size> 7x4 differs from the image size 6x4"),
    ],
)
def test_bad_xml(tmp_path, kwargs, message):
    root = make_root(tmp_path)
    write_xml(root, **kwargs)
    with pytest.raises(WsssError, match=message):
        VOCDataset(root, "train").load_annotation("a")


def test_malformed_and_missing_xml(tmp_path):
    root = make_root(tmp_path)
    path = write_xml(root)
    path.write_text("<annotation><size><width>6</width>\n<object></annotation>")
    with pytest.raises(WsssError, match=r"a\.xml: malformed XML \(line 2, column \d+\)$"):
        parse_voc_xml(path)
    path.write_text("<annotation><object><name>dog</name></object></annotation>")
    with pytest.raises(WsssError, match=r"a\.xml: malformed XML: missing or invalid <size><width>"):
        parse_voc_xml(path)
    path.unlink()
    with pytest.raises(WsssError, match=r"a\.xml: annotation file not found$"):
        parse_voc_xml(path)
    with pytest.raises(WsssError, match=r"a\.xml: no annotation .* to derive the image labels"):
        VOCDataset(root, "train").image_labels("a")
