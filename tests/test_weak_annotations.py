"""Readers of point, scribble and box annotations: valid files, and every malformed case names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsss.data.annotations import (BoxAnnotation, PointAnnotation, ScribbleAnnotation, WeakAnnotation,
                                   load_weak_annotation, read_boxes, read_points, read_scribbles)
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError

SIZE = (40, 60)  # H, W


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------ points
def test_points_parse_classes_confidence_and_background_extension(tmp_path):
    path = write(tmp_path, "p.txt", "10 20 11 1.0\n\n59 39.4 0 0.8\n5 5 -1 1.0\n")
    points = read_points(path, SIZE)
    assert points == [PointAnnotation(10, 20, 12, 1.0), PointAnnotation(59, 39, 1, 0.8), PointAnnotation(5, 5, 0, 1.0)]
    assert WeakAnnotation("point", SIZE, points=points).classes().tolist() == [1, 12]


def test_empty_point_file_is_no_points(tmp_path):
    assert read_points(write(tmp_path, "p.txt", ""), SIZE) == []


@pytest.mark.parametrize("line, message", [
    ("10 20 11", "malformed point line '10 20 11'"),
    ("10 20 eleven 1.0", "fields must be finite numbers"),
    ("10 20 nan 1.0", "fields must be finite numbers"),
    ("10 20 20 1.0", "unknown class_index '20'"),
    ("10 20 1.5 1.0", "unknown class_index '1.5'"),
    ("10 20 -2 1.0", "unknown class_index '-2'"),
    ("10 20 3 1.5", "confidence '1.5' outside [0, 1]"),
    ("60 20 3 1.0", "point (60.0, 20.0) lies outside the 60x40 image"),
    ("10 -1 3 1.0", "lies outside the 60x40 image"),
])
def test_malformed_points(tmp_path, line, message):
    path = write(tmp_path, "bad.txt", "1 1 0 1.0\n" + line + "\n")
    with pytest.raises(WsssError) as error:
        read_points(path, SIZE)
    text = str(error.value)
    assert text.startswith(f"{path}: line 2: ") and message in text and "\n" not in text


def test_missing_point_file(tmp_path):
    with pytest.raises(WsssError, match=r"missing\.txt: point file not found"):
        read_points(tmp_path / "missing.txt", SIZE)


# --------------------------------------------------------------- scribbles
def scribble_xml(*polygons: str, size: str = "<size><width>60</width><height>40</height></size>") -> str:
    return f"<annotation>{size}{''.join(polygons)}</annotation>"


def polygon(tag: str, *points: tuple[float, float]) -> str:
    body = "".join(f"<point><X>{x}</X><Y>{y}</Y></point>" for x, y in points)
    return f"<polygon><tag>{tag}</tag>{body}</polygon>"


def test_scribbles_parse_in_file_order(tmp_path):
    path = write(tmp_path, "s.xml", scribble_xml(polygon("dog", (1, 2), (10.6, 3)), polygon("background", (0, 0)),
                                                 polygon("tv/monitor", (59, 39), (50, 30))))
    scribbles = read_scribbles(path, SIZE)
    assert scribbles == [ScribbleAnnotation(12, ((1, 2), (11, 3))), ScribbleAnnotation(0, ((0, 0),)),
                         ScribbleAnnotation(20, ((59, 39), (50, 30)))]
    assert WeakAnnotation("scribble", SIZE, scribbles=scribbles).classes().tolist() == [12, 20]


def test_scribbles_without_size_element(tmp_path):
    path = write(tmp_path, "s.xml", scribble_xml(polygon("cat", (3, 3)), size=""))
    assert read_scribbles(path, SIZE) == [ScribbleAnnotation(8, ((3, 3),))]


@pytest.mark.parametrize("text, message", [
    ("<annotation><polygon>", "malformed XML (line 1"),
    ("<scribbles></scribbles>", "root element is <scribbles>, expected <annotation>"),
    (scribble_xml("<polygon><point><X>1</X><Y>1</Y></point></polygon>"), "polygon 1 has no <tag>"),
    (scribble_xml(polygon("dinosaur", (1, 1))), "polygon 1: unknown class name 'dinosaur'"),
    (scribble_xml(polygon("dog")), "polygon 1 (dog) has no <point>"),
    (scribble_xml("<polygon><tag>dog</tag><point><X>1</X></point></polygon>"), "point 1 needs numeric <X> and <Y>"),
    (scribble_xml(polygon("dog", (1, 1), ("x", 2))), "point 2 needs numeric <X> and <Y>"),
    (scribble_xml(polygon("dog", (1, 1), (60, 2))), "polygon 1 (dog) point 2 (60.0, 2.0) lies outside the 60x40 image"),
    (scribble_xml(polygon("dog", (1, 1)), size="<size><width>64</width><height>40</height></size>"),
     "<size> 64x40 differs from the image size 60x40"),
    (scribble_xml(polygon("dog", (1, 1)), size="<size><width>a</width></size>"), "<size> needs numeric"),
])
def test_malformed_scribbles(tmp_path, text, message):
    path = write(tmp_path, "bad.xml", text)
    with pytest.raises(WsssError) as error:
        read_scribbles(path, SIZE)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_missing_scribble_file(tmp_path):
    with pytest.raises(WsssError, match="scribble file not found"):
        read_scribbles(tmp_path / "none.xml", SIZE)


# ------------------------------------------------------------------- boxes
def voc_root(tmp_path: Path, xml: str) -> VOCDataset:
    from PIL import Image

    root = tmp_path / "voc"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    (root / "Annotations" / "a.xml").write_text(xml)
    (root / "ImageSets/Segmentation/train.txt").write_text("a\n")
    return VOCDataset(root, "train")


def box_xml(*objects: tuple[str, tuple[int, int, int, int]], width: int = 60, height: int = 40) -> str:
    body = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                   f"<ymax>{d}</ymax></bndbox></object>" for n, (a, b, c, d) in objects)
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{body}</annotation>"


def test_boxes_from_voc_xml_are_zero_based_inclusive(tmp_path):
    dataset = voc_root(tmp_path, box_xml(("dog", (1, 1, 60, 40)), ("cat", (11, 6, 20, 15))))
    boxes = read_boxes(dataset, "a")
    assert boxes == [BoxAnnotation(12, (0, 0, 59, 39)), BoxAnnotation(8, (10, 5, 19, 14))]
    assert boxes[1].area == 100
    annotation = load_weak_annotation(dataset, "box", "Annotations", "a")
    assert annotation.boxes == boxes and annotation.classes().tolist() == [8, 12]


@pytest.mark.parametrize("xml, message", [
    (box_xml(("dog", (1, 1, 61, 40))), "lies outside the 60x40 image"),
    (box_xml(("dog", (10, 1, 5, 40))), "is inverted or empty"),
    (box_xml(("unicorn", (1, 1, 5, 5))), "unknown class name 'unicorn'"),
    ("<annotation><size>", "malformed XML"),
])
def test_malformed_boxes(tmp_path, xml, message):
    dataset = voc_root(tmp_path, xml)
    with pytest.raises(WsssError) as error:
        read_boxes(dataset, "a")
    assert str(error.value).startswith(str(dataset.annotation_path("a"))) and message in str(error.value)


def test_boxes_from_coco_json(tmp_path):
    import json

    from PIL import Image

    from wsss.data.coco import COCODataset

    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(tmp_path / "images" / "x.jpg")
    data = {"images": [{"id": 1, "file_name": "x.jpg", "width": 60, "height": 40}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [2.5, 3, 10, 5], "iscrowd": 0,
                             "area": 50, "segmentation": [[2.5, 3, 12.5, 3, 12.5, 8]]}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    dataset = COCODataset(tmp_path, "x", annotation_file="ann.json", image_folder="images")
    assert read_boxes(dataset, "x") == [BoxAnnotation(2, (2, 3, 12, 7))]


def test_unknown_supervision_kind(tmp_path):
    dataset = voc_root(tmp_path, box_xml(("dog", (1, 1, 5, 5))))
    with pytest.raises(WsssError, match="supervision.name: 'image' has no annotation files"):
        load_weak_annotation(dataset, "image", "Annotations", "a")
