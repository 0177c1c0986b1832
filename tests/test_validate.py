"""Box and point checks shared by the readers (and the point reader of the point-supervision issue)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsss.data.validate import check_box, check_label_values, check_point_in_image, check_same_size
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError

SIZE = (4, 6)  # H, W


def test_valid_boxes_and_points():
    check_box((0, 0, 5, 3), SIZE, "f")  # the whole image, inclusive
    check_box((2, 2, 2, 2), SIZE, "f")  # one pixel
    check_point_in_image(0, 0, SIZE, "f")
    check_point_in_image(5, 3, SIZE, "f")
    check_point_in_image(5.4, 2.5, SIZE, "f")


@pytest.mark.parametrize(
    "box, message",
    [
        ((3, 0, 2, 3), r"^p\.txt: box \(3, 0, 2, 3\) is inverted or empty"),
        ((0, 3, 5, 2), r"is inverted or empty"),
        ((0, 0, 6, 3), r"^p\.txt: box \(0, 0, 6, 3\) lies outside the 6x4 image"),
        ((-1, 0, 2, 2), r"lies outside the 6x4 image"),
        ((0, 0, float("nan"), 2), r"non-finite"),
    ],
)
def test_bad_boxes(box, message):
    with pytest.raises(WsssError, match=message):
        check_box(box, SIZE, "p.txt")


@pytest.mark.parametrize("x, y", [(6, 0), (0, 4), (-0.5, 1), (1, -1)])
def test_points_outside_the_image(x, y):
    with pytest.raises(WsssError, match=rf"^pts/a\.txt: point 3 \({x}, {y}\) lies outside the 6x4 image"):
        check_point_in_image(x, y, SIZE, "pts/a.txt", what="point 3")


def test_label_values_and_sizes():
    check_label_values(np.array([[0, 20, 255]]), "m.png")
    with pytest.raises(WsssError, match=r"^m\.png: mask values 21 outside 0\.\.20 and 255$"):
        check_label_values(np.array([[0, 21, 255]]), "m.png")
    with pytest.raises(WsssError, match=r"^m\.png: mask size 6x5 differs from its image size 6x4 \(WxH\)$"):
        check_same_size((5, 6), SIZE, "m.png")


def test_sbd_greyscale_masks_and_train_aug(tmp_path):
    root = tmp_path / "voc"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("a\n")
    (root / "JPEGImages").mkdir()
    (root / "SegmentationClassAug").mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 1:4] = 12
    mask[0] = 255
    Image.fromarray(mask, mode="L").save(root / "SegmentationClassAug" / "a.png")
    dataset = VOCDataset(root, "train_aug", gt_folder="SegmentationClassAug")
    assert dataset.ids == ["a"] and dataset.has_class_mask("a")
    assert (dataset.load_class_mask("a") == mask).all()
    assert dataset.image_labels("a").nonzero()[0].tolist() == [11]
