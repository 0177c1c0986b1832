"""minicoco: minivoc's images and masks in COCO layout, read back by COCODataset exactly as the VOC layout reads."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from wsss.config import compose
from wsss.data import open_dataset
from wsss.data.annotations import read_boxes
from wsss.data.coco import COCODataset, validate_coco
from wsss.data.minivoc import generate
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError
from wsss.io import load_json

N_TRAIN, N_VAL, SEED = 6, 3, 5


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    """The same seed in both layouts."""
    base = tmp_path_factory.mktemp("layouts")
    generate(base / "minivoc", N_TRAIN, N_VAL, SEED, progress=False)
    generate(base / "minicoco", N_TRAIN, N_VAL, SEED, progress=False, layout="coco")
    return base / "minivoc", base / "minicoco"


def test_coco_layout_files_and_json(both):
    _, root = both
    assert sorted(p.name for p in root.iterdir()) == ["Points", "Scribbles", "annotations", "minivoc.json", "train", "val"]
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        data = load_json(root / "annotations" / f"instances_{split}.json")
        assert validate_coco(data, split) == []
        assert len(data["images"]) == n == len(list((root / split).glob("*.jpg")))
        names = {c["id"]: c["name"] for c in data["categories"]}
        assert names[1] == "aeroplane" and names[20] == "tvmonitor" and names[255] == "__ignore__" and len(names) == 21
        objects = [a for a in data["annotations"] if a["category_id"] != 255]
        assert objects and all(a["iscrowd"] == 0 and a["area"] > 0 for a in objects)
        assert all(a["iscrowd"] == 1 for a in data["annotations"] if a["category_id"] == 255)
        assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    assert load_json(root / "minivoc.json")["layout"] == "coco"


def test_rasterised_json_equals_the_voc_layout(both):
    voc_root, coco_root = both
    for split in ("train", "val"):
        voc, coco = VOCDataset(voc_root, split), COCODataset(coco_root, split)
        assert coco.ids == voc.ids and coco.class_names == voc.class_names and coco.num_classes == 21
        for image_id in coco.ids:
            assert filecmp.cmp(coco.image_path(image_id), voc.image_path(image_id), shallow=False)
            assert np.array_equal(coco.load_class_mask(image_id), voc.load_class_mask(image_id)), image_id
            assert np.array_equal(coco.load_object_mask(image_id), voc.load_object_mask(image_id)), image_id
            assert (coco.load_class_mask(image_id) == 255).any()  # the void band came along
            masks_c, labels_c = coco.instances(image_id)
            masks_v, labels_v = voc.instances(image_id)
            assert np.array_equal(masks_c, masks_v) and np.array_equal(labels_c, labels_v)
            # the weak labels: boxes (0-based inclusive pixels) and tags
            assert read_boxes(coco, image_id) == read_boxes(voc, image_id)
            assert np.array_equal(coco.image_labels(image_id), voc.image_labels(image_id))
            for folder in ("Points", "Scribbles"):
                suffix = ".txt" if folder == "Points" else ".xml"
                assert filecmp.cmp(coco_root / folder / f"{image_id}{suffix}", voc_root / folder / f"{image_id}{suffix}",
                                   shallow=False)


def test_voc_layout_has_no_layout_key_and_bad_layout_fails(both, tmp_path):
    voc_root, _ = both
    assert "layout" not in load_json(voc_root / "minivoc.json")  # the VOC layout's files are as they were
    with pytest.raises(WsssError, match="layout must be one of voc, coco"):
        generate(tmp_path / "x", 1, 0, layout="yolo")


def test_minicoco_config_opens_the_generated_folder(both):
    _, root = both
    cfg = compose("make_minivoc", ["dataset=minicoco"])
    assert cfg.layout == "coco" and cfg.out_dir == "data/minicoco" and compose("make_minivoc").layout == "voc"
    dataset_cfg = compose("check_dataset", ["dataset=minicoco", f"dataset.root={root}"]).dataset
    dataset = open_dataset(dataset_cfg, str(dataset_cfg.val_split))
    assert isinstance(dataset, COCODataset) and len(dataset) == N_VAL
    # every config group chosen per dataset (crf: ${dataset} ...) has a minicoco choice: minivoc's settings
    for stage in ("refine_crf", "train_classifier", "train_affinity", "train_boundary", "train_deeplab",
                  "train_maskrcnn", "train_p2seg", "train_superpixel"):
        configs = []
        for name in ("minicoco", "minivoc"):
            cfg = OmegaConf.to_container(compose(stage, [f"dataset={name}"]))
            cfg.pop("dataset")
            configs.append(OmegaConf.to_yaml(cfg).replace(name, "DATASET"))
        assert configs[0] == configs[1], stage
