"""Scoring folders and instance jsons against the real fixtures; the evaluate and check_dataset stages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.realdata import realdata, voc_copy
from wsss.config import REPO_ROOT
from wsss.data.check import check_dataset
from wsss.data.coco import COCODataset, encode_instances
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError
from wsss.evaluation import evaluate_instance_json, evaluate_label_folder
from wsss.io import save_json, save_label_png
from wsss.schemas.common import DatasetConfig
from omegaconf import OmegaConf


@pytest.fixture
def datum_val(tmp_path) -> VOCDataset:
    return VOCDataset(voc_copy(tmp_path, realdata("datum", "VOC2012"), ["2007_000032", "2007_000033"], "val"), "val")


def test_semantic_perfect_and_all_background(datum_val, tmp_path):
    for image_id in datum_val.ids:
        save_label_png(tmp_path / "perfect" / f"{image_id}.png", datum_val.load_class_mask(image_id))
        save_label_png(tmp_path / "bg" / f"{image_id}.png", np.zeros(datum_val.image_size(image_id), np.uint8))
    record, per_image = evaluate_label_folder(datum_val, tmp_path / "perfect", {"crf": False})
    assert record["miou"] == 100.0 and per_image == {"2007_000032": 100.0, "2007_000033": 100.0}
    assert record["protocol"]["split"] == "val" and record["protocol"]["gt"] == "SegmentationClass"
    assert record["protocol"]["crf"] is False and record["n_images"] == 2
    record, _ = evaluate_label_folder(datum_val, tmp_path / "bg", {})
    # README counts: background 129545 + 143868 of 135145 + 174805 non-void pixels; aeroplane and person 0
    assert record["miou"] == pytest.approx(100 * (129545 + 143868) / (135145 + 174805) / 3)
    assert record["per_class_iou"]["aeroplane"] == 0.0 and record["per_class_iou"]["person"] == 0.0


def test_semantic_missing_and_bad_predictions(datum_val, tmp_path):
    pred = tmp_path / "pred"
    save_label_png(pred / "2007_000032.png", datum_val.load_class_mask("2007_000032"))
    with pytest.raises(WsssError, match=r"pred/2007_000033\.png: prediction missing \(1 of 2 images have none"):
        evaluate_label_folder(datum_val, pred, {})
    record, _ = evaluate_label_folder(datum_val, pred, {}, allow_missing=True)
    assert record["protocol"]["n_missing_predictions"] == 1
    assert record["coverage"] == pytest.approx(100 * 135145 / (135145 + 174805))
    save_label_png(pred / "2007_000033.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(WsssError, match=r"pred/2007_000033\.png: prediction size 10x10 differs from ground truth 500x366"):
        evaluate_label_folder(datum_val, pred, {})
    save_label_png(pred / "2007_000033.png", np.full((366, 500), 30, np.uint8))
    with pytest.raises(WsssError, match=r"pred/2007_000033\.png: prediction value 30 outside 0\.\.20 and 255"):
        evaluate_label_folder(datum_val, pred, {})
    with pytest.raises(WsssError, match=r"nowhere: prediction folder not found"):
        evaluate_label_folder(datum_val, tmp_path / "nowhere", {})


def test_images_without_gt(tmp_path):
    dataset = VOCDataset(voc_copy(tmp_path, realdata("datum", "VOC2012"), ["2007_000027", "2007_000032"]), "train")
    save_label_png(tmp_path / "p" / "2007_000032.png", dataset.load_class_mask("2007_000032"))
    with pytest.raises(WsssError, match=r"1 of 2 images of split 'train' have no class mask \(first: 2007_000027\)"):
        evaluate_label_folder(dataset, tmp_path / "p", {})
    record, _ = evaluate_label_folder(dataset, tmp_path / "p", {}, require_gt=False)
    assert record["n_images"] == 1 and record["protocol"]["n_images_without_gt_skipped"] == 1


def test_voc_instance_json(tmp_path):
    dataset = VOCDataset(voc_copy(tmp_path, realdata("icevision", "VOC2012"), ["2007_000063"], "train"), "train")
    masks, labels = dataset.instances("2007_000063")
    results = encode_instances("2007_000063", masks, labels, np.array([0.9, 0.8]))
    save_json(tmp_path / "perfect.json", results)
    record = evaluate_instance_json(dataset, tmp_path / "perfect.json", {})
    assert record["ap50"] == 100.0 and record["ap75"] == 100.0 and record["per_class_ap50"]["dog"] == 100.0
    assert np.isnan(record["per_class_ap50"]["cat"]) and record["n_detections"] == 2
    # a duplicate of the dog ranked above the chair: chair precision 2/3 at full recall
    duplicate = results + [dict(results[0], score=0.85)]
    save_json(tmp_path / "dup.json", duplicate)
    assert evaluate_instance_json(dataset, tmp_path / "dup.json", {})["ap50"] == 100.0
    save_json(tmp_path / "empty.json", [])
    assert evaluate_instance_json(dataset, tmp_path / "empty.json", {})["ap50"] == 0.0
    save_json(tmp_path / "bad.json", [dict(results[0], image_id="2007_999999")])
    with pytest.raises(WsssError, match=r"bad\.json: detection 0: image_id '2007_999999' is not an image of split"):
        evaluate_instance_json(dataset, tmp_path / "bad.json", {})
    save_json(tmp_path / "bad.json", {"x": 1})
    with pytest.raises(WsssError, match=r"bad\.json: malformed results JSON"):
        evaluate_instance_json(dataset, tmp_path / "bad.json", {})


def test_coco_instance_json(tmp_path):
    dataset = COCODataset(realdata("icevision", "coco"), "val2017", annotation_file="annotations.json", image_folder="images")
    results = []
    for image_id in dataset.ids:
        masks, labels = dataset.instances(image_id)
        categories = [dataset.category_id(int(k)) for k in labels]
        results += encode_instances(dataset.coco_image_id(image_id), masks, categories, np.ones(len(masks)))
    save_json(tmp_path / "r.json", results)
    record = evaluate_instance_json(dataset, tmp_path / "r.json", {})
    assert record["AP"] == pytest.approx(100.0) and "bbox" in record and record["n_detections"] == 35


# ------------------------------------------------------------------- check_dataset
def cfg(root, kind="voc", **values):
    return OmegaConf.merge(OmegaConf.structured(DatasetConfig), dict(name="t", kind=kind, root=str(root), **values))


def test_check_real_fixtures_have_no_problems(tmp_path):
    root = voc_copy(tmp_path / "a", realdata("icevision", "VOC2012"), ["2007_000063", "2011_003353"])
    report = check_dataset(cfg(root), ["train"])
    assert report.problems == [] and report.counts["train"] == {"images": 2, "xml": 2, "class_masks": 1, "object_masks": 1}
    root = voc_copy(tmp_path / "b", realdata("labelme", "data_dataset_voc"), ["2011_000003", "2011_000006", "2011_000025"])
    assert check_dataset(cfg(root), ["train"]).problems == []
    coco = cfg(realdata("icevision", "coco"), kind="coco", annotation_file="annotations.json", image_folder="images")
    report = check_dataset(coco, ["val2017"])
    assert report.problems == [] and report.counts["val2017"]["images_without_annotations"] == 1


def broken_voc(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\nc\nd\n")
    for folder in ("JPEGImages", "Annotations"):
        (root / folder).mkdir()
    for image_id in "abc":
        Image.fromarray(np.full((4, 6, 3), 100, np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    data = (root / "JPEGImages" / "b.jpg").read_bytes()
    (root / "JPEGImages" / "b.jpg").write_bytes(data[: len(data) // 2])
    xml = ("<annotation><size><width>6</width><height>4</height></size>"
           "<object><name>dinosaur</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
           "<object><name>dog</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
           "</annotation>")
    (root / "Annotations" / "a.xml").write_text(xml)
    (root / "Annotations" / "b.xml").write_text("<annotation>")
    label = np.zeros((4, 6), np.uint8)
    label[0, 0] = 42
    save_label_png(root / "SegmentationClass" / "a.png", label)
    save_label_png(root / "SegmentationClass" / "c.png", np.zeros((5, 6), np.uint8))
    return root


def test_check_reports_every_problem_at_once(tmp_path):
    root = broken_voc(tmp_path)
    report = check_dataset(cfg(root), ["train", "val"])
    text = "\n".join(report.problems)
    expected = [
        r"Annotations/a\.xml: object 1: unknown class name 'dinosaur'",
        r"Annotations/a\.xml: object 2 \(dog\) box \(0-based\) \(4, 0, 1, 1\) is inverted",
        r"SegmentationClass/a\.png: mask values 42 outside 0\.\.20 and 255",
        r"JPEGImages/b\.jpg: unreadable or truncated image",
        r"Annotations/b\.xml: malformed XML \(line 1",
        r"SegmentationClass/c\.png: mask size 6x5 differs from its image size 6x4",
        r"JPEGImages/d\.jpg: image file not found",
        r"Annotations/d\.xml: no XML nor .*SegmentationClass/d\.png: no image labels for 'd'",
        r"ImageSets/Segmentation/val\.txt: split 'val' not found",
    ]
    for pattern in expected:
        assert any(re.search(pattern, line) for line in report.problems), pattern
    assert len(report.problems) == len(expected), text
    assert all("\n" not in line for line in report.problems)


def test_check_coco_reports_every_problem(tmp_path):
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "images" / "a.jpg")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 30, "height": 20}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 5, 0, 5, 5]]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5], "segmentation": [[0, 0, 5, 0, 5, 5]]},
            {"id": 3, "image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5]},
        ],
    }
    (root / "ann.json").write_text(json.dumps(data))
    report = check_dataset(cfg(root, kind="coco", annotation_file="ann.json", image_folder="images"), ["x"])
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        "annotation 1: unknown category_id 2",
        "annotation 2: empty or inverted bbox [0, 0, 0, 5] (w and h must be > 0)",
        "annotation 3: unknown image_id 9",
    ]
    data["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 15],
                            "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]]}]
    data["images"][0]["width"] = 31
    (root / "ann.json").write_text(json.dumps(data))
    report = check_dataset(cfg(root, kind="coco", annotation_file="ann.json", image_folder="images"), ["x"])
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        "image size 30x20 differs from the json's 31x20 (WxH)",
        "annotation 1: segmentation extent [0, 0, 5, 5] (x0,y0,x1,y1) differs from bbox [0, 0, 20, 15] by 15.0 px",
    ]


# ------------------------------------------------------------------- stages
def run_stage(stage: str, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WSSS_PROGRESS="plain")
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *overrides], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_evaluate_stage(datum_val, tmp_path):
    for image_id in datum_val.ids:
        save_label_png(tmp_path / "pred" / f"{image_id}.png", datum_val.load_class_mask(image_id))
    out = tmp_path / "out"
    done = run_stage("evaluate", "dataset=folder", f"dataset.root={datum_val.root}", "dataset.name=datum", "split=val",
                     f"pred={tmp_path / 'pred'}", f"out_dir={out}", "+protocol.crf=false")
    assert done.returncode == 0, done.stderr
    assert '"split": "val"' in done.stdout and "mIoU 100.00" in done.stdout
    record = json.loads((out / "metrics.json").read_text())
    assert record["miou"] == 100.0 and record["protocol"]["crf"] is False and record["per_class_iou"]["bicycle"] is None
    assert (out / ".hydra" / "config.yaml").is_file()
    failed = run_stage("evaluate", "dataset=folder", f"dataset.root={tmp_path / 'nowhere'}", "split=val",
                       f"pred={tmp_path / 'pred'}", f"out_dir={tmp_path / 'out2'}")
    assert failed.returncode == 1 and failed.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nowhere'}: dataset root not found"


def test_check_dataset_stage(tmp_path):
    root = broken_voc(tmp_path)
    done = run_stage("check_dataset", "dataset=folder", f"dataset.root={root}", "splits=[train]", f"out_dir={tmp_path / 'c'}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: dataset folder: 8 problems (listed above and in")
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["n_problems"] == 8 and len(report["problems"]) == 8
