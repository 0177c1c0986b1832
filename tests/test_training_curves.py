"""Training curves: TensorBoard event files and curves.png from a training history, the same bytes for the same
history (a resumed run included), and the gallery / comparison pages showing them."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_checkpoints import _train
from wsss.config import REPO_ROOT
from wsss.training import Checkpointer
from wsss.viz.curves import (CURVES_PNG, TENSORBOARD_DIR, copy_curves, curve_series, curves_html, read_tensorboard,
                             write_training_curves)


def _expected(history, step="epoch"):
    """What the event files must hold: every number of the history, as TensorBoard's float32."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for record in history:
        for key, value in record.items():
            if key != step:
                tag = "lr" if key == "lr" else f"train/{key}"
                expected.setdefault(tag, []).append((record[step], float(np.float32(value))))
    return expected


def _is_png(path) -> bool:
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG"


def test_learning_rate_is_in_every_epoch_record():
    _, history = _train(None)
    assert [sorted(h) for h in history] == [["epoch", "loss", "lr"]] * 3
    lrs = [h["lr"] for h in history]
    assert lrs[0] < 0.05 and lrs == sorted(lrs, reverse=True)  # the poly decay, after each epoch's last step


def test_tiny_training_writes_event_files_that_read_back_as_its_history(tmp_path):
    torch.set_num_threads(1)
    _, history = _train(None)
    series = write_training_curves(tmp_path, history, title="tiny")
    assert list(series) == ["train/loss", "lr"]
    events = list((tmp_path / TENSORBOARD_DIR).iterdir())
    assert len(events) == 1 and events[0].name.startswith("events.out.tfevents.")
    assert read_tensorboard(tmp_path / TENSORBOARD_DIR) == _expected(history)
    assert _is_png(tmp_path / CURVES_PNG)
    # written again (a rerun into the same folder): replaced, not added to; no temporary left behind
    write_training_curves(tmp_path, history, title="tiny")
    assert len(list((tmp_path / TENSORBOARD_DIR).iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [CURVES_PNG, TENSORBOARD_DIR]


def test_same_history_same_png_bytes_and_a_resumed_run_matches(tmp_path):
    torch.set_num_threads(1)
    _, history = _train(None)
    checkpointer = Checkpointer(tmp_path / "work", "abc")
    with pytest.raises(KeyboardInterrupt):
        _train(checkpointer, stop_at=4)  # killed in epoch 2
    _, resumed = _train(checkpointer)
    write_training_curves(tmp_path / "a", history, title="tiny")
    write_training_curves(tmp_path / "b", resumed, title="tiny")
    png = (tmp_path / "a" / CURVES_PNG).read_bytes()
    assert (tmp_path / "b" / CURVES_PNG).read_bytes() == png
    assert read_tensorboard(tmp_path / "b" / TENSORBOARD_DIR) == read_tensorboard(tmp_path / "a" / TENSORBOARD_DIR)
    changed = [{**h, "loss": h["loss"] * 0.5} for h in history]
    write_training_curves(tmp_path / "c", changed, title="tiny")
    assert (tmp_path / "c" / CURVES_PNG).read_bytes() != png
    assert b"tIME" not in png and b"Software" not in png  # no date, no tool version in the file


def test_validation_scores_sit_at_the_last_step_and_gaps_are_left_out(tmp_path):
    history = [{"iteration": 2, "loss": 1.5, "ce": 1.5, "lr": 0.01}, {"iteration": 4, "loss": None, "ce": 1.0,
                                                                     "lr": 0.005}]
    series = write_training_curves(tmp_path, history, final={"miou": 41.25, "miou_crf": None})
    assert series == {"train/loss": [(2, 1.5)], "train/ce": [(2, 1.5), (4, 1.0)], "lr": [(2, 0.01), (4, 0.005)],
                      "val/miou": [(4, 41.25)]}
    read = read_tensorboard(tmp_path / TENSORBOARD_DIR)
    assert read == {tag: [(step, float(np.float32(value))) for step, value in points] for tag, points in series.items()}
    assert curve_series([]) == {}
    write_training_curves(tmp_path / "empty", [])
    assert _is_png(tmp_path / "empty" / CURVES_PNG)


def test_pages_show_the_curves_of_the_training_folders(tmp_path):
    trained, untrained, absent = tmp_path / "classifier", tmp_path / "affinity", tmp_path / "deeplab"
    write_training_curves(trained, [{"epoch": 1, "loss": 0.7, "lr": 0.1}])
    untrained.mkdir()
    (untrained / "history.json").write_text("[]")  # written before curves existed
    out = tmp_path / "gallery"
    (out / "curves").mkdir(parents=True)
    (out / "curves" / "old.png").write_bytes(b"stale")
    shown, missing = copy_curves({"m/classifier": trained, "m/affinity": untrained, "m/deeplab": absent}, out)
    assert shown == {"m/classifier": "curves/m__classifier.png"} and missing == ["m/affinity"]
    assert sorted(p.name for p in (out / "curves").iterdir()) == ["m__classifier.png"]
    assert (out / "curves" / "m__classifier.png").read_bytes() == (trained / CURVES_PNG).read_bytes()
    section = curves_html(shown, missing)
    assert '<img src="curves/m__classifier.png"' in section and "no curves.png in: m/affinity" in section
    assert curves_html({}, []) == ""


def test_gallery_and_comparison_pages_reference_the_curves(tmp_path):
    from tests.synthetic_run import make_synthetic_run, open_synthetic_dataset
    from wsss.viz.gallery import GallerySettings, build_gallery
    from wsss.viz.stages import discover_label_stages
    from wsss.workflow.compare import training_curves
    from wsss.workflow.recipes import recipes_for

    run = make_synthetic_run(tmp_path, n_images=2)
    stages = discover_label_stages(run.stages_dir, run.cam_dir)
    classifier = run.results / "minivoc" / "classifier"
    write_training_curves(classifier, [{"epoch": 1, "loss": 0.7, "lr": 0.1}])
    out = run.stages_dir / "gallery"
    build_gallery(open_synthetic_dataset(run), stages, out, run.cam_dir, GallerySettings(thumb_size=32),
                  curves={"minivoc/classifier": classifier})
    page = (out / "index.html").read_text()
    assert re.search(r'<img src="curves/minivoc__classifier.png"[^>]*>', page) and "{{" not in page
    assert _is_png(out / "curves" / "minivoc__classifier.png")
    # the comparison: each training folder of the recipes' chains once (the classifier is shared by them)
    folders = training_curves(run.results, "minivoc", "point", recipes_for("point"))
    assert folders["minivoc/classifier"] == run.results / "minivoc" / "classifier"
    # not the retrained models: they run after the labels, so the page would depend on the jobs' order
    assert not [folder for folder in folders if folder.endswith(("/deeplab", "/maskrcnn"))]
    assert len(folders) == len(set(folders.values()))
    compare = run.results / "minivoc" / "point" / "compare"
    build_gallery(open_synthetic_dataset(run), stages, compare, None, GallerySettings(thumb_size=32, pairwise=True),
                  curves=folders)
    assert '<img src="curves/minivoc__classifier.png"' in (compare / "index.html").read_text()


@pytest.mark.slow
def test_train_classifier_stage_writes_curves_of_its_history(tmp_path):
    from tests.voc_fixture import make_tiny_voc

    root = make_tiny_voc(tmp_path / "VOC2012", n_train=2, n_val=1)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "stages.train_classifier", "dataset=voc", f"dataset.root={root}",
                          "backbone.arch=resnet10", "backbone.width=8", "train.epochs=2", "train.batch_size=2",
                          f"out_dir={out}", f"work_dir={tmp_path / 'work'}", "num_threads=1"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert [sorted(h) for h in history] == [["epoch", "exact_match", "loss", "lr", "val"]] * 2
    # every epoch scored on the val split (one image here): mAP over the classes it holds, exact match
    assert all(sorted(h["val"]) == ["exact_match", "map"] and 0 <= h["val"]["map"] <= 100
               and h["val"]["exact_match"] in (0.0, 100.0) for h in history)
    expected = _expected([{k: v for k, v in h.items() if k != "val"} for h in history])
    for h in history:
        for key, value in h["val"].items():
            expected.setdefault(f"val/{key}", []).append((h["epoch"], float(np.float32(value))))
    assert read_tensorboard(out / TENSORBOARD_DIR) == expected
    assert _is_png(out / CURVES_PNG)


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    import errno

    from wsss.errors import WsssError
    from wsss.viz import curves

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(curves.tempfile, "mkdtemp", full)
    with pytest.raises(WsssError, match=r"cannot write tensorboard: No space left on device"):
        curves.write_tensorboard(tmp_path / "tensorboard", {"lr": [(1, 0.1)]})
