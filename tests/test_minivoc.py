"""minivoc: exact VOC layout and formats, consistent weak labels, determinism, atomic install."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsss.config import REPO_ROOT, compose
from wsss.data.classes import NUM_FOREGROUND, VOC_CLASSES
from wsss.data.minivoc import CLASS_SPECS, MinivocParams, generate, render_sample, split_plan
from wsss.data.voc import VOCDataset, parse_voc_xml
from wsss.errors import WsssError
from wsss.io import load_json, voc_palette

N_TRAIN, N_VAL, SEED = 4, 2, 7
FOLDERS = ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "Points", "Scribbles")
SUFFIX = {"JPEGImages": ".jpg", "SegmentationClass": ".png", "SegmentationObject": ".png",
          "Annotations": ".xml", "Points": ".txt", "Scribbles": ".xml"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("a") / "minivoc"
    generate(root, N_TRAIN, N_VAL, SEED, progress=False)
    return root


def ids_of(root: Path) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split()


def read_png(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def object_masks(root: Path, image_id: str) -> np.ndarray:
    return np.array(read_png(root / "SegmentationObject" / f"{image_id}.png"))


def read_scribbles(path: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    tree = ET.parse(path).getroot()
    assert tree.tag == "annotation" and tree.findtext("filename") == f"{path.stem}.jpg"
    out = []
    for polygon in tree.findall("polygon"):
        points = [(int(p.findtext("X")), int(p.findtext("Y"))) for p in polygon.findall("point")]
        out.append((polygon.findtext("tag"), points))
    return out


def rasterise(points: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], False, 1, 1, lineType=cv2.LINE_8)
    return canvas.astype(bool)


def test_layout_is_complete(tiny):
    train = (tiny / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    val = (tiny / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    assert len(train) == N_TRAIN and len(val) == N_VAL and not set(train) & set(val)
    assert sorted(train + val) == ids_of(tiny) == [f"2026_{n:06d}" for n in range(1, N_TRAIN + N_VAL + 1)]
    assert (tiny / "ImageSets" / "Main" / "train.txt").read_text().split() == train
    assert (tiny / "ImageSets" / "Main" / "val.txt").read_text().split() == val
    for folder in FOLDERS:
        names = sorted(p.name for p in (tiny / folder).iterdir())
        assert names == [f"{i}{SUFFIX[folder]}" for i in ids_of(tiny)], folder
    manifest = load_json(tiny / "minivoc.json")
    assert manifest["seed"] == SEED and manifest["n_train"] == N_TRAIN and manifest["n_val"] == N_VAL
    assert not list(tiny.parent.glob(".minivoc.*")), "temporary folders left behind"
    # VOC's per-class Main lists: "id  1" when present, "id -1" when absent
    for image_id in train:
        names = {o.name for o in parse_voc_xml(tiny / "Annotations" / f"{image_id}.xml").objects}
        for cid in range(1, NUM_FOREGROUND + 1):
            rows = dict(line.split() for line in
                        (tiny / "ImageSets" / "Main" / f"{VOC_CLASSES[cid]}_train.txt").read_text().splitlines())
            assert rows[image_id] == ("1" if VOC_CLASSES[cid] in names else "-1")


def test_masks_are_voc_palette_pngs(tiny):
    palette = voc_palette()
    for image_id in ids_of(tiny):
        with Image.open(tiny / "JPEGImages" / f"{image_id}.jpg") as jpeg:
            assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
            size = jpeg.size
        assert 144 <= size[0] <= 192 and 112 <= size[1] <= 160
        for folder in ("SegmentationClass", "SegmentationObject"):
            png = read_png(tiny / folder / f"{image_id}.png")
            assert png.mode == "P" and png.size == size
            assert png.getpalette()[:768] == palette
        labels = np.array(read_png(tiny / "SegmentationClass" / f"{image_id}.png"))
        objects = object_masks(tiny, image_id)
        assert set(np.unique(labels).tolist()) <= set(range(21)) | {255}
        assert 255 in labels and 0 in labels and (labels >= 1).any()
        assert np.array_equal(labels == 255, objects == 255)
        assert np.array_equal(labels == 0, objects == 0)
        # the void band separates every pair of different labels (no two 4-neighbours differ without 255)
        for a, b in ((objects[:, 1:], objects[:, :-1]), (objects[1:, :], objects[:-1, :])):
            assert not np.any((a != b) & (a != 255) & (b != 255))


def test_reader_accepts_it_and_xml_matches_masks(tiny):
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        dataset = VOCDataset(tiny, split)
        assert len(dataset) == n
        for image_id in dataset.ids:
            annotation = dataset.load_annotation(image_id)  # checks <size> against the JPEG
            masks, labels = dataset.instances(image_id)
            objects = object_masks(tiny, image_id)
            assert len(annotation.objects) == len(masks) == int(objects[objects != 255].max())
            assert [o.class_id for o in annotation.objects] == labels.tolist()
            root = ET.parse(dataset.annotation_path(image_id)).getroot()
            assert root.findtext("segmented") == "1" and root.findtext("filename") == f"{image_id}.jpg"
            for obj in root.findall("object"):
                assert obj.findtext("pose") in ("Left", "Right", "Frontal", "Unspecified")
                assert obj.findtext("truncated") in ("0", "1") and obj.findtext("difficult") == "0"


def test_boxes_enclose_masks_tightly(tiny):
    for image_id in ids_of(tiny):
        objects = object_masks(tiny, image_id)
        h, w = objects.shape
        for k, obj in enumerate(parse_voc_xml(tiny / "Annotations" / f"{image_id}.xml").objects, start=1):
            ys, xs = np.nonzero(objects == k)
            x0, y0, x1, y1 = obj.box  # 0-based inclusive (XML minus 1)
            assert 0 <= x0 and 0 <= y0 and x1 < w and y1 < h
            # encloses the non-void mask ...
            assert x0 <= xs.min() and y0 <= ys.min() and x1 >= xs.max() and y1 >= ys.max()
            # ... and is tight up to the void band: each edge touches the object or its band
            own = (objects == k) | (objects == 255)
            window = own[y0:y1 + 1, x0:x1 + 1]
            assert window[0].any() and window[-1].any() and window[:, 0].any() and window[:, -1].any()
            # most of the margin is the band: the box grown by the band is not much larger than the mask's box
            assert (x1 - x0 + 1) * (y1 - y0 + 1) <= 1.6 * (np.ptp(xs) + 1) * (np.ptp(ys) + 1)


def test_points_inside_their_objects(tiny):
    for image_id in ids_of(tiny):
        objects = object_masks(tiny, image_id)
        annotation = parse_voc_xml(tiny / "Annotations" / f"{image_id}.xml")
        lines = (tiny / "Points" / f"{image_id}.txt").read_text().splitlines()
        assert len(lines) == len(annotation.objects)
        for k, (line, obj) in enumerate(zip(lines, annotation.objects), start=1):
            x, y, cls, conf = line.split()
            x, y, cls = int(x), int(y), int(cls)
            assert conf == "1.0" and 0 <= cls < NUM_FOREGROUND
            assert cls == obj.class_id - 1
            assert objects[y, x] == k


def test_points_are_not_always_centroids():
    offsets = []
    for number in range(1, 13):
        sample = render_sample(3, number, 1 + number % 20)
        for k, obj in enumerate(sample.objects, start=1):
            ys, xs = np.nonzero(sample.instances == k)
            offsets.append(np.hypot(obj.point[0] - xs.mean(), obj.point[1] - ys.mean()))
    assert max(offsets) > 3.0


def test_scribbles_inside_their_objects(tiny):
    for image_id in ids_of(tiny):
        objects = object_masks(tiny, image_id)
        labels = np.array(read_png(tiny / "SegmentationClass" / f"{image_id}.png"))
        annotation = parse_voc_xml(tiny / "Annotations" / f"{image_id}.xml")
        strokes = read_scribbles(tiny / "Scribbles" / f"{image_id}.xml")
        n = len(annotation.objects)
        assert [tag for tag, _ in strokes[:n]] == [o.name for o in annotation.objects]
        assert len(strokes) > n and all(tag == "background" for tag, _ in strokes[n:])
        for k, (tag, points) in enumerate(strokes[:n], start=1):
            assert len(points) >= 2
            assert np.all(objects[rasterise(points, objects.shape)] == k), (image_id, tag)
        for _, points in strokes[n:]:
            assert len(points) >= 2
            assert np.all(labels[rasterise(points, labels.shape)] == 0), image_id


def test_same_seed_is_byte_identical_other_seed_differs(tiny, tmp_path):
    again = tmp_path / "again"
    generate(again, N_TRAIN, N_VAL, SEED, progress=False)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (tiny / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = tmp_path / "other"
    generate(other, N_TRAIN, N_VAL, SEED + 1, progress=False)
    for image_id in ids_of(tiny):
        assert (tiny / "JPEGImages" / f"{image_id}.jpg").read_bytes() != (other / "JPEGImages" / f"{image_id}.jpg").read_bytes()


def test_every_class_appears():
    # by construction: the first object of the images of each split cycles through permutations of the 20 classes
    plan = split_plan(400, 150, seed=0)
    for split in ("train", "val"):
        firsts = [first for s, _, _, first in plan if s == split]
        assert len(firsts) == (400 if split == "train" else 150)
        assert set(firsts[:20]) == set(range(1, 21))
        counts = np.bincount(firsts, minlength=21)[1:]
        assert counts.max() - counts.min() <= 1
    # and the rendered images really hold those classes (first object kept first in the XML)
    for _, _, number, first in plan[:20]:
        assert render_sample(0, number, first).objects[0].class_id == first


def test_medium_set_class_histogram(tmp_path):
    report = generate(tmp_path / "m", 20, 20, seed=11, progress=False)
    assert all(n >= 2 for n in report.class_images.values()), report.class_images
    instances = sum(report.class_instances.values())
    assert 1.6 * 40 <= instances <= 4 * 40  # 1..4 objects, about 2.3 on average
    for spec in CLASS_SPECS:
        assert sum(p.head for p in spec.parts) >= 1, spec.name


def test_install_keeps_hydra_and_replaces_the_rest(tmp_path):
    root = tmp_path / "minivoc"
    (root / ".hydra").mkdir(parents=True)
    (root / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (root / "stale.txt").write_text("old")
    generate(root, 2, 1, seed=1, progress=False)
    assert (root / ".hydra" / "config.yaml").read_text() == "seed: 1\n"
    assert not (root / "stale.txt").exists() and (root / "minivoc.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minivoc"]


def test_killed_generation_leaves_root_untouched(tmp_path, monkeypatch):
    import wsss.data.minivoc.generation as generation

    root = tmp_path / "minivoc"
    generate(root, 2, 1, seed=1, progress=False)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = generation.write_sample
    monkeypatch.setattr(generation, "write_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(root, 5, 1, seed=2, progress=False)
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minivoc"]


def test_parameters_are_validated():
    with pytest.raises(WsssError, match="width_range"):
        MinivocParams(width_range=(200, 100)).validate()
    with pytest.raises(WsssError, match="max_objects"):
        MinivocParams.from_mapping({"max_objects": 0})
    with pytest.raises(WsssError, match="pair"):
        MinivocParams.from_mapping({"object_size": [0.3]})
    with pytest.raises(WsssError, match="n_train"):
        generate("/nonexistent/never", 0, 1)
    assert MinivocParams().band_width(375, 500) == 5 and MinivocParams().band_width(128, 160) == 2


def test_stage_config_composes_to_the_defaults():
    cfg = compose("make_minivoc")
    assert cfg.out_dir == "data/minivoc" and cfg.n_train == 1000 and cfg.n_val == 150 and cfg.seed == 0
    from omegaconf import OmegaConf

    assert MinivocParams.from_mapping(OmegaConf.to_container(cfg)) == MinivocParams()
    with pytest.raises(WsssError):
        compose("make_minivoc", ["n_trian=3"])


@pytest.mark.slow
def test_stage_runs_by_hand(tmp_path):
    out = tmp_path / "mv"
    result = subprocess.run(
        [sys.executable, "-m", "stages.make_minivoc", f"out_dir={out}", "n_train=3", "n_val=1", "seed=4"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / ".hydra" / "config.yaml").is_file()
    assert len(VOCDataset(out, "train")) == 3 and len(VOCDataset(out, "val")) == 1
    bad = subprocess.run(
        [sys.executable, "-m", "stages.make_minivoc", f"out_dir={tmp_path / 'bad'}", "max_objects=0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: minivoc: max_objects")


def _content_digest(root: Path) -> str:
    """Digest of what minivoc *means*: the decoded label masks, the annotation text files and the images as
    rendered before JPEG (not the encoded bytes, which depend on the zlib / libjpeg builds)."""
    import hashlib

    digest = hashlib.sha256()
    for image_id in ids_of(root):
        for folder in FOLDERS:
            path = root / folder / f"{image_id}{SUFFIX[folder]}"
            digest.update(f"{folder}/{path.name}".encode())
            if folder in ("SegmentationClass", "SegmentationObject"):
                digest.update(np.array(read_png(path)).tobytes())
            elif folder != "JPEGImages":
                digest.update(path.read_bytes())
    manifest = load_json(root / "minivoc.json")
    params = MinivocParams.from_mapping(manifest["params"])
    for _, _, number, first_class in split_plan(manifest["n_train"], manifest["n_val"], manifest["seed"], params.year):
        digest.update(render_sample(manifest["seed"], number, first_class, params).image.tobytes())
    return digest.hexdigest()[:16]


def test_the_generator_draws_what_it_drew_before(tiny):
    # Pinned: every number the README states was measured on minivoc as this generator draws it, so a
    # speed-up of the generator (or any change) must leave masks, points, scribbles and XML exactly as they
    # were; a deliberate change of the dataset updates this value and the README's numbers with it.
    assert _content_digest(tiny) == "6e3af82720364d9d"
