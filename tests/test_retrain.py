"""Retraining stages: DeepLab on pseudo-labels, Mask R-CNN on instance pseudo-labels (tiny configurations)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.voc_fixture import gt_as_pseudolabels, make_tiny_voc
from wsss.config import REPO_ROOT, compose
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError
from wsss.retrain.iterative import BatchSchedule, WarmupPolySGD
from wsss.training import Checkpointer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 4-train / 2-val VOC-layout folder and its ground truth as stand-in pseudo-labels."""
    base = tmp_path_factory.mktemp("retrain")
    root = make_tiny_voc(base / "VOC", n_train=4, n_val=2, size=(40, 48))
    return root, gt_as_pseudolabels(root, base / "pseudolabels")


def _run_stage(stage: str, *overrides: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", f"stages.{stage}", *overrides, "num_threads=1"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


# ------------------------------------------------------------------ schedule
def test_batch_schedule_deterministic_and_sharded():
    full = BatchSchedule(10, 4, 7, seed=3)
    batches = list(full)
    assert len(batches) == 7 and all(len(b) == 4 for b in batches)
    assert batches == list(BatchSchedule(10, 4, 7, seed=3))
    assert batches[2:] == list(BatchSchedule(10, 4, 7, seed=3, start=2))  # a resumed run sees the same batches
    assert batches[0][0][0] == 0 and batches[2][0][0] == 1  # 2 batches per pass, then a new permutation
    first_pass = {i for b in batches[:2] for _, i in b}
    assert len(first_pass) == 8  # no repeats within a pass
    shards = [list(BatchSchedule(10, 4, 7, seed=3, rank=r, world_size=2)) for r in range(2)]
    for it in range(7):
        assert sorted(shards[0][it] + shards[1][it]) == sorted(batches[it])
    small = list(BatchSchedule(3, 8, 2, seed=0))[0]  # fewer samples than a batch: repeated to a full batch
    assert len(small) == 8 and {i for _, i in small} == {0, 1, 2}
    with pytest.raises(WsssError):
        BatchSchedule(10, 1, 2, seed=0, world_size=2)


def test_warmup_poly_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = WarmupPolySGD([([param], 1.0)], lr=1.0, total_steps=10, power=1.0, warmup_steps=4, warmup_factor=0.0)
    lrs = []
    for _ in range(10):
        param.grad = torch.zeros(1)
        opt.step()
        lrs.append(opt.optimizer.param_groups[0]["lr"])
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(0.9 * 0.25) and lrs[4] == pytest.approx(0.6)
    assert lrs[-1] == pytest.approx(0.1)


# ------------------------------------------------------------------ weights from local files
def test_trunk_from_classifier_and_torchvision_deeplab_layout(tmp_path):
    from torchvision.models.segmentation import deeplabv3_resnet50

    from wsss.cam.classifier import CAMClassifier
    from wsss.retrain.deeplab_model import build_deeplab, check_trunk_config, load_deeplab_checkpoint, load_trunk_weights
    from wsss.retrain.maskrcnn_model import MaskRCNNSettings, build_maskrcnn

    classifier = CAMClassifier("resnet10", 16)
    path = tmp_path / "classifier.pt"
    torch.save({"state_dict": classifier.state_dict(), "config": {}}, path)
    deeplab = build_deeplab("resnet10", 16, 21, (2, 4, 6))
    load_trunk_weights(deeplab.backbone.trunk, str(path))
    torch.testing.assert_close(deeplab.backbone.trunk.layer4[0].conv1.weight, classifier.trunk.layer4[0].conv1.weight)
    settings = MaskRCNNSettings(arch="resnet10", init_trunk=str(path), trainable_layers=5, frozen_bn=False,
                                fpn_channels=16, representation_size=32, mask_layers=(16,))
    maskrcnn = build_maskrcnn(settings, 21)
    torch.testing.assert_close(maskrcnn.backbone.body.stem[0].weight, classifier.trunk.stem[0].weight)
    with pytest.raises(WsssError, match="do not match"):
        load_trunk_weights(build_deeplab("resnet18", 16, 21, (2, 4, 6)).backbone.trunk, str(path))
    # the classifier's recorded backbone must match model.arch/model.width (a narrow demo trunk here)
    narrow = CAMClassifier("resnet10", 16, width=16)
    torch.save({"state_dict": narrow.state_dict(), "config": {"backbone": {"arch": "resnet10", "width": 16}}}, path)
    check_trunk_config(str(path), "resnet10", 16)
    with pytest.raises(WsssError, match="model.arch/model.width"):
        check_trunk_config(str(path), "resnet10", 64)
    small = build_deeplab("resnet10", 16, 21, (2, 4, 6), width=16)
    load_trunk_weights(small.backbone.trunk, str(path))
    assert small.backbone.trunk.channels[-1] == 128
    # a narrower head keeps torchvision's DeepLabHead layout (same state-dict keys)
    narrow_head = build_deeplab("resnet10", 16, 21, (2, 4, 6), width=16, head_channels=32)
    keys = [k for k in small.state_dict() if k.startswith("classifier.")]
    assert [k for k in narrow_head.state_dict() if k.startswith("classifier.")] == keys
    assert narrow_head(torch.zeros(2, 3, 40, 48))["out"].shape == (2, 21, 40, 48)
    # torchvision's own DeepLabV3 layout (e.g. its COCO weights) maps onto ours; the 21-class conv is kept
    reference = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    tv_path = tmp_path / "tv.pth"
    torch.save(reference.state_dict(), tv_path)
    ours = build_deeplab("resnet50", 8, 21, (12, 24, 36))
    assert load_deeplab_checkpoint(ours, str(tv_path)) == []
    torch.testing.assert_close(ours.backbone.trunk.stem[0].weight, reference.backbone.conv1.weight)
    torch.testing.assert_close(ours.classifier[4].weight, reference.classifier[4].weight)
    state = reference.state_dict()
    state["classifier.4.weight"], state["classifier.4.bias"] = torch.zeros(5, 256, 1, 1), torch.zeros(5)
    torch.save(state, tv_path)  # another class count: the last conv stays as it was
    assert load_deeplab_checkpoint(ours, str(tv_path)) == ["classifier.4.weight", "classifier.4.bias"]
    torch.testing.assert_close(ours.classifier[4].weight, reference.classifier[4].weight)


def test_configs_compose_per_dataset():
    demo = compose("train_deeplab")
    assert demo.model.arch == "resnet10" and demo.model.width == 32 and demo.model.init_from_classifier
    assert demo.out_dir == "results/minivoc/image/psa/deeplab" and demo.work_dir == "results/.work/minivoc/image/psa/deeplab"
    real = compose("train_deeplab", ["dataset=voc", "dataset.root=/data/VOC2012", "supervision=box"])
    assert real.model.arch == "resnet101" and real.crf.bilateral_sxy == 67.0
    assert real.labels_dir == "results/voc/box/random_walk/pseudolabels"  # the supervision's default recipe
    mrcnn = compose("train_maskrcnn", ["dataset=voc", "dataset.root=/data/VOC2012"])
    assert mrcnn.model.arch == "resnet50" and mrcnn.model.fpn_channels == 256
    with pytest.raises(WsssError, match="no_such_key"):
        compose("train_maskrcnn", ["model.no_such_key=1"])
    with pytest.raises(WsssError):
        compose("train_deeplab", ["train.iterations=many"])


# ------------------------------------------------------------------ DeepLab
def _deeplab_settings(**changes):
    from wsss.retrain.deeplab import DeepLabSettings

    base = dict(arch="resnet10", output_stride=16, aspp_rates=(1, 2, 3), iterations=4, batch_size=2, lr=0.01,
                crop=32, scale_range=(0.8, 1.2), checkpoint_every=2, log_every=1)
    return DeepLabSettings(**{**base, **changes})


def test_deeplab_training_resumes_exactly(tiny, tmp_path):
    from wsss.retrain.deeplab import train_deeplab

    root, labels = tiny
    torch.set_num_threads(1)
    dataset = VOCDataset(root, "train")
    cpu = torch.device("cpu")
    straight, history = train_deeplab(dataset, labels, _deeplab_settings(), 0, cpu, Checkpointer(tmp_path / "a", "x"))
    assert [h["iteration"] for h in history] == [1, 2, 3, 4]

    def interrupt(iteration):
        if iteration == 2:
            raise KeyboardInterrupt

    checkpointer = Checkpointer(tmp_path / "b", "x")
    with pytest.raises(KeyboardInterrupt):
        train_deeplab(dataset, labels, _deeplab_settings(), 0, cpu, checkpointer, on_step=interrupt)
    assert checkpointer.load()["iteration"] == 2
    resumed, history2 = train_deeplab(dataset, labels, _deeplab_settings(), 0, cpu, checkpointer)
    assert [h["loss"] for h in history2] == [h["loss"] for h in history]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_deeplab_bad_pseudolabel_is_one_line_error(tiny, tmp_path):
    from wsss.retrain.deeplab import train_deeplab

    root, labels = tiny
    broken = tmp_path / "pl"
    broken.mkdir()
    for png in labels.glob("*.png"):
        (broken / png.name).write_bytes(png.read_bytes())
    (broken / "2000_000002.png").unlink()
    with pytest.raises(WsssError, match="2000_000002.png: pseudo-label missing"):
        train_deeplab(VOCDataset(root, "train"), broken, _deeplab_settings(), 0, torch.device("cpu"))


@pytest.mark.slow
def test_train_deeplab_stage_end_to_end(tiny, tmp_path):
    root, labels = tiny
    out, work = tmp_path / "deeplab", tmp_path / "work"
    run = _run_stage("train_deeplab", "dataset=folder", f"dataset.root={root}", "dataset.name=tiny", "deeplab=minivoc",
                     "model.arch=resnet10", "model.init_from_classifier=false", f"labels_dir={labels}",
                     f"out_dir={out}", f"work_dir={work}", "train.iterations=2", "train.batch_size=2",
                     "train.crop=32", "crf.iterations=2", "supervision=weakshot", "supervision.fold=2")
    assert "iters/s" in run.stderr and "ETA" in run.stderr
    model = torch.load(out / "model.pt", map_location="cpu", weights_only=False)
    assert model["arch"] == "resnet10" and "state_dict" in model
    for folder in ("predictions", "predictions_crf"):
        assert sorted(p.name for p in (out / folder).glob("*.png")) == ["2001_000000.png", "2001_000001.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    crf = json.loads((out / "metrics_crf.json").read_text())
    assert metrics["protocol"]["split"] == "val" and metrics["protocol"]["crf"] is False
    assert metrics["crf"]["miou"] == crf["miou"] and crf["protocol"]["crf"] is True
    # weak-shot supervision: val mIoU split by the fold's class sets (fold 2: 11..15 novel, dog and person here)
    assert metrics["weakshot"]["fold"] == 2 and metrics["weakshot"]["novel_classes"] == [11, 12, 13, 14, 15]
    assert {"miou_all", "miou_base", "miou_novel"} <= set(crf["weakshot"])
    assert (out / ".hydra" / "config.yaml").is_file()
    assert not (work / "checkpoint.pt").exists()  # cleared once the artifacts are written
    from wsss.viz.curves import read_tensorboard

    curves = read_tensorboard(out / "tensorboard")  # the loss, learning rate and val mIoU of the run
    history = json.loads((out / "history.json").read_text())
    assert [v for _, v in curves["train/ce"]] == pytest.approx([h["ce"] for h in history])
    assert [v for _, v in curves["lr"]] == pytest.approx([h["lr"] for h in history])
    assert curves["val/miou"] == [(2, pytest.approx(metrics["miou"]))]
    assert curves["val/miou_crf"] == [(2, pytest.approx(crf["miou"]))]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ Mask R-CNN
_TINY_MASKRCNN = ("model.arch=resnet10", "model.init_from_classifier=false", "model.fpn_channels=16",
                  "model.representation_size=32", "model.mask_layers=[16]", "model.min_size_train=[48]",
                  "model.min_size_test=48", "model.max_size=64", "train.iterations=2", "train.batch_size=2",
                  "train.warmup_iterations=1")


@pytest.mark.slow
def test_train_maskrcnn_stage_end_to_end(tiny, tmp_path):
    from wsss.instances.coco import coco_api

    root, labels = tiny
    common = ("dataset=folder", f"dataset.root={root}", "dataset.name=tiny", "supervision=box")
    _run_stage("export_instances", *common, f"labels_dir={labels}", f"out_dir={tmp_path / 'instances'}")
    out, work = tmp_path / "maskrcnn", tmp_path / "work"
    run = _run_stage("train_maskrcnn", *common, "maskrcnn=minivoc", *_TINY_MASKRCNN,
                     f"instances_dir={tmp_path / 'instances'}", f"out_dir={out}", f"work_dir={work}")
    assert "iters/s" in run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("ap50", "ap75", "AP", "AP_bbox"):
        assert 0.0 <= metrics[key] <= 100.0
    assert metrics["n_images"] == 2 and metrics["protocol"]["split"] == "val"
    gt = coco_api(json.loads((out / "gt.json").read_text()))
    predictions = json.loads((out / "predictions.json").read_text())
    if predictions:
        gt.loadRes(predictions)
    assert (out / "model.pt").is_file() and not (work / "checkpoint.pt").exists()
    from wsss.viz.curves import read_tensorboard

    curves = read_tensorboard(out / "tensorboard")
    assert {"train/loss", "train/loss_mask", "lr", "val/ap50", "val/AP"} <= set(curves)
    assert curves["val/ap50"] == [(2, pytest.approx(metrics["ap50"]))]
    assert (out / "curves.png").is_file()


@pytest.mark.slow
def test_box_trained_maskrcnn_and_its_box_masks(tiny, tmp_path):
    """mask_loss.kind=apro trains from the box annotations alone (no instances json); segment_boxes turns the model
    into semantic pseudo-labels and instances of every annotated box."""
    from wsss.data.annotations import read_boxes
    from wsss.io import load_label_png

    root, _ = tiny
    common = ("dataset=folder", f"dataset.root={root}", "dataset.name=tiny", "supervision=box")
    out = tmp_path / "maskrcnn"
    _run_stage("train_maskrcnn", *common, "maskrcnn=minivoc", *_TINY_MASKRCNN, "mask_loss.kind=apro",
               f"instances_dir={tmp_path / 'absent'}", f"out_dir={out}", f"work_dir={tmp_path / 'work'}")
    history = json.loads((out / "history.json").read_text())
    assert {"loss_projection", "loss_global", "loss_local"} <= set(history[0]) and "loss_mask" not in history[0]
    assert json.loads((out / "metrics.json").read_text())["protocol"]["mask_loss"] == "apro"
    masks = tmp_path / "boxmasks"
    _run_stage("segment_boxes", *common, f"model_dir={out}", f"out_dir={masks}")
    dataset = VOCDataset(root, "train")
    coco = json.loads((masks / "instances.json").read_text())
    assert len(coco["annotations"]) == sum(len(read_boxes(dataset, name)) for name in dataset.ids)
    for name in dataset.ids:
        label = load_label_png(masks / f"{name}.png")
        inside = np.zeros(label.shape, bool)
        for box in read_boxes(dataset, name):
            x0, y0, x1, y1 = box.box
            inside[y0:y1 + 1, x0:x1 + 1] = True
        assert label.shape == dataset.image_size(name) and not label[~inside].any()  # background outside the boxes
    assert 0.0 <= json.loads((masks / "metrics.json").read_text())["miou"] <= 100.0
    assert {"ap50", "ap75", "AP"} <= set(json.loads((masks / "instance_metrics.json").read_text()))
    bad = subprocess.run([sys.executable, "-m", "stages.train_maskrcnn", *common[:-1], "supervision=box",
                          "maskrcnn=minivoc", *_TINY_MASKRCNN, "mask_loss.kind=boxes", f"out_dir={tmp_path / 'bad'}",
                          f"work_dir={tmp_path / 'badwork'}", "num_threads=1"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "mask_loss.kind" in bad.stderr.strip().splitlines()[-1]


def test_maskrcnn_samples_from_exported_json(tiny):
    from wsss.instances.coco import CocoBuilder
    from wsss.instances.instance_set import InstanceSet
    from wsss.retrain.maskrcnn import InstanceSamples

    root, _ = tiny
    dataset = VOCDataset(root, "train")
    builder = CocoBuilder(dataset)
    for name in dataset.ids:
        masks, labels = dataset.instances(name)
        builder.add_instances(builder.add_image(name, *masks.shape[1:]),
                              InstanceSet(masks, labels, np.ones(len(labels), np.float32)))
    samples = InstanceSamples(dataset, builder.to_dict(), seed=0, flip=False)
    image, target = samples[(0, 1)]
    masks, labels = dataset.instances(dataset.ids[1])
    assert image.shape == (3, 40, 48) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert target["labels"].tolist() == labels.tolist()
    np.testing.assert_array_equal(target["masks"].numpy().astype(bool), masks)
    ys, xs = np.nonzero(masks[0])
    assert target["boxes"][0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    # an image without instances is a negative: empty targets of the right shapes
    empty = CocoBuilder(dataset)
    empty.add_instances(empty.add_image(dataset.ids[0], 40, 48), InstanceSet.empty((40, 48)))
    _, target = InstanceSamples(dataset, empty.to_dict(), seed=0)[(0, 0)]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 40, 48) and target["labels"].shape == (0,)
    flipped = InstanceSamples(dataset, builder.to_dict(), seed=0, flip=True)
    keys = [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]
    outs = [flipped[k] for k in keys]
    assert any(torch.equal(img, image.flip(-1)) for img, _ in outs)  # some draws flip ...
    for img, tgt in outs:  # ... and boxes follow the masks either way
        m = tgt["masks"][0].numpy()
        ys, xs = np.nonzero(m)
        assert tgt["boxes"][0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.slow
def test_deeplab_under_torchrun_two_cpu_processes(tiny, tmp_path):
    """The multi-GPU path (DDP when WORLD_SIZE > 1) with gloo on CPU: each rank takes half of every batch."""
    root, labels = tiny
    out = tmp_path / "deeplab"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
         "stages.train_deeplab", "dataset=folder", f"dataset.root={root}", "dataset.name=tiny", "deeplab=minivoc",
         "model.arch=resnet10", "model.init_from_classifier=false", f"labels_dir={labels}", f"out_dir={out}",
         f"work_dir={tmp_path / 'work'}", "train.iterations=2", "train.batch_size=4", "train.crop=32",
         "eval.crf=false", "num_threads=1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "model.pt").is_file() and json.loads((out / "metrics.json").read_text())["n_images"] == 2
