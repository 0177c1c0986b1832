"""COCO-layout datasets through the Snakemake DAG: the generated minicoco from nothing (boxes with the CAM-free
recipe, image tags with their default recipe), and the real COCO sample (icevision) as a named dataset.

The workflow is copied into a temporary folder (:func:`tests.workflow_copy.copy_workflow`), as in
``tests/test_pipeline_dag.py``, and every run is tiny: 6 train and 2 val images, one epoch per network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.realdata import realdata
from tests.workflow_copy import copy_workflow
from wsss.config import REPO_ROOT
from wsss.data.coco import COCODataset

TINY = [
    'make_minivoc=n_train=6 n_val=2',
    'train_classifier=train.epochs=1 train.batch_size=3',
    'make_cam=scales=[1.0]',
    'train_affinity=train.epochs=1 train.batch_size=3',
]
BOX_TARGET = "minicoco_box_apro_camfree_pseudolabels"
IMAGE_TARGET = "minicoco_image_pseudolabels"
REAL_TARGET = "realcoco_box_apro_camfree_pseudolabels"


def dry_run(*args: str) -> subprocess.CompletedProcess:
    """``snakemake -n -p`` in the repository itself (plans only: writes nothing but Snakemake's lock-free metadata)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--nolock", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def snakemake(workdir: Path, *args: str, config: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir), "WSSS_PROGRESS_INTERVAL": "1"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--config", *TINY, *config]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def check_labels(folder: Path, n: int, num_classes: int) -> None:
    """``n`` label PNGs with values in 0..num_classes-1 (or 255)."""
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == n, folder
    for path in pngs:
        values = set(np.unique(np.array(Image.open(path))).tolist())
        assert values <= set(range(num_classes)) | {255}, (path, values)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, kernels_built) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("coco"), {"psa": {"propagate": "propagation.steps=8"}})


@pytest.mark.slow
def test_minicoco_box_and_image_targets_from_nothing(workdir):
    result = snakemake(workdir, BOX_TARGET, IMAGE_TARGET)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = workdir / "data" / "minicoco"
    assert sorted(p.name for p in (data / "annotations").iterdir()) == ["instances_train.json", "instances_val.json"]
    assert len(list((data / "train").glob("*.jpg"))) == 6 and not (data / "JPEGImages").exists()
    results = workdir / "results" / "minicoco"
    scores = {}
    for name, folder in (("box", results / "box" / "apro_camfree" / "pseudolabels"),
                         ("image", results / "image" / "psa" / "pseudolabels")):
        check_labels(folder, 6, 21)
        scores[name] = metrics(folder)["miou"]
    print(f"minicoco pseudo-label mIoU (train, 6 images): {scores}")
    # boxes pin the objects down: well above chance even on 6 images; one epoch of a classifier on 6 images
    # knows little, so image tags only need a score
    assert 30.0 < scores["box"] <= 100.0, scores
    assert 0.0 < scores["image"] <= 100.0, scores
    assert 0.0 < metrics(results / "cam" / "labels")["miou"] <= 100.0
    result = snakemake(workdir, "-n", BOX_TARGET, IMAGE_TARGET)
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr, result.stdout[-2000:]


def coco_layout(tmp_path: Path, split: str = "val2017") -> Path:
    """A COCO-layout folder (``annotations/instances_<split>.json``, images in ``<split>/``) built from the
    read-only icevision sample: its 5 annotated val2017 images (the unannotated train2017 one left out)."""
    source = realdata("icevision", "coco")
    data = json.loads((source / "annotations.json").read_text())
    data["images"] = [im for im in data["images"] if im["file_name"] != "000000000089.jpg"]
    root = tmp_path / "realcoco"
    (root / "annotations").mkdir(parents=True)
    (root / split).mkdir()
    for image in data["images"]:
        (root / split / image["file_name"]).symlink_to(source / "images" / image["file_name"])
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def real_config(root: Path) -> tuple[str, ...]:
    return f"datasets={{realcoco: {root}}}", "overrides=dataset.train_split=val2017 dataset.val_split=val2017"


@pytest.mark.slow
def test_real_coco_sample_through_the_cam_free_box_recipe(workdir, tmp_path):
    root = coco_layout(tmp_path)
    result = snakemake(workdir, REAL_TARGET, config=real_config(root))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = workdir / "results" / "realcoco" / "box" / "apro_camfree" / "pseudolabels"
    check_labels(folder, 5, 81)
    score = metrics(folder)["miou"]
    print(f"real COCO sample, box apro_camfree pseudo-label mIoU (5 images): {score:.2f}")
    assert 20.0 < score <= 100.0
    # the pseudo-labels keep to the boxes' classes (bear 22 on the bear image, bottle 40 on the bottles) and
    # find most of the three small bears (1.5 % of the image)
    dataset = COCODataset(root, "val2017")
    for image_id in dataset.ids:
        labels = np.array(Image.open(folder / f"{image_id}.png"))
        boxes = {b.class_id for b in dataset.load_annotation(image_id).objects}
        assert set(np.unique(labels).tolist()) <= boxes | {0, 255}, image_id
    bear, truth = np.array(Image.open(folder / "000000194216.png")) == 22, dataset.load_class_mask("000000194216") == 22
    assert (bear & truth).sum() / (bear | truth).sum() > 0.5


def test_missing_annotation_file_ends_the_plan_in_one_line(tmp_path):
    root = coco_layout(tmp_path)
    (root / "annotations" / "instances_val2017.json").unlink()
    result = dry_run(REAL_TARGET, "--config", *real_config(root))
    assert result.returncode == 1, result.stdout[-2000:]
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines[-1] == (f"error: {root}/annotations/instances_val2017.json: annotation file for split 'val2017' "
                         f"not found (dataset 'realcoco'; dataset.train_split / dataset.annotation_file name it)"), lines
    assert "Traceback" not in result.stdout + result.stderr


def test_minicoco_targets_plan_from_nothing():
    result = dry_run(BOX_TARGET, IMAGE_TARGET, "--forceall")
    assert result.returncode == 0, result.stderr[-2000:]
    make = [line for line in result.stdout.splitlines() if "-m stages.make_minivoc " in line]
    assert len(make) == 1 and "dataset=minicoco out_dir=data/minicoco" in make[0], make
