"""open_dataset picks the reader from the composed dataset config."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.realdata import realdata, voc_copy
from wsss.data import open_dataset
from wsss.data.coco import COCODataset
from wsss.data.voc import VOCDataset
from wsss.errors import WsssError
from wsss.schemas.common import DatasetConfig


def cfg(**values):
    return OmegaConf.merge(OmegaConf.structured(DatasetConfig), values)


def test_voc_and_coco(tmp_path):
    root = voc_copy(tmp_path, realdata("icevision", "VOC2012"), ["2007_000063"], split="val")
    voc = open_dataset(cfg(name="x", kind="voc", root=str(root)), "val")
    assert isinstance(voc, VOCDataset) and voc.ids == ["2007_000063"] and voc.num_classes == 21
    coco = open_dataset(
        cfg(name="c", kind="coco", root=str(realdata("icevision", "coco")), annotation_file="annotations.json",
            image_folder="images", num_classes=81),
        "val2017",
    )
    assert isinstance(coco, COCODataset) and len(coco) == 6 and coco.num_classes == 81


def test_unknown_kind_and_missing_root(tmp_path):
    with pytest.raises(WsssError, match=r"dataset.kind: unknown dataset kind 'lvis'"):
        open_dataset(cfg(name="x", kind="lvis", root=str(tmp_path)), "train")
    with pytest.raises(WsssError, match=r"nowhere: dataset root not found"):
        open_dataset(cfg(name="x", kind="voc", root=str(tmp_path / "nowhere")), "train")
