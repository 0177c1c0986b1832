"""Every dataset reader satisfies :class:`wsss.data.reader.DatasetReader`, and exactly its own layout's extras."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from PIL import Image

from tests.voc_fixture import make_tiny_voc
from wsss.data.coco import COCODataset
from wsss.data.minivoc import generate
from wsss.data.reader import CocoJsonReader, DatasetReader, VOCLayoutReader
from wsss.data.voc import VOCDataset


def _protocol_members(protocol) -> tuple[set[str], set[str]]:
    """(data attributes, methods) a protocol declares, its bases' included."""
    attributes, methods = set(), set()
    for cls in protocol.__mro__:
        if cls in (object,) or not getattr(cls, "_is_protocol", False) or cls.__name__ == "Protocol":
            continue
        attributes |= set(getattr(cls, "__annotations__", {}))
        methods |= {name for name, value in vars(cls).items() if inspect.isfunction(value) and not name.startswith("_")}
        if "__len__" in vars(cls):
            methods.add("__len__")
    return attributes, methods


def _tiny_coco(root):
    (root / "images").mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(root / "images" / "x.jpg")
    data = {"images": [{"id": 7, "file_name": "x.jpg", "width": 60, "height": 40}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [2, 3, 10, 5], "iscrowd": 0,
                             "area": 50, "segmentation": [[2, 3, 12, 3, 12, 8]]}]}
    (root / "ann.json").write_text(json.dumps(data))
    return COCODataset(root, "x", annotation_file="ann.json", image_folder="images")


@pytest.fixture
def readers(tmp_path):
    voc = VOCDataset(make_tiny_voc(tmp_path / "voc"), "train")
    generate(tmp_path / "minivoc", 2, 1, seed=0, progress=False)
    minivoc = VOCDataset(tmp_path / "minivoc", "val")
    (tmp_path / "coco").mkdir()
    return {"voc": voc, "minivoc": minivoc, "coco": _tiny_coco(tmp_path / "coco")}


def test_every_reader_is_a_dataset_reader(readers):
    for name, reader in readers.items():
        assert isinstance(reader, DatasetReader), name
    assert isinstance(readers["voc"], VOCLayoutReader) and isinstance(readers["minivoc"], VOCLayoutReader)
    assert not isinstance(readers["voc"], CocoJsonReader) and not isinstance(readers["minivoc"], CocoJsonReader)
    assert isinstance(readers["coco"], CocoJsonReader) and not isinstance(readers["coco"], VOCLayoutReader)


@pytest.mark.parametrize("cls, protocols", [(VOCDataset, (DatasetReader, VOCLayoutReader)),
                                            (COCODataset, (DatasetReader, CocoJsonReader))])
def test_reader_classes_implement_the_protocol_signatures(cls, protocols):
    """Structural check on the classes: every protocol method exists with the protocol's parameter names."""
    for protocol in protocols:
        _, methods = _protocol_members(protocol)
        assert methods, protocol
        for name in methods:
            assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name} missing ({protocol.__name__})"
            theirs = list(inspect.signature(getattr(cls, name)).parameters)
            ours = list(inspect.signature(getattr(protocol, name)).parameters)
            assert theirs == ours, f"{cls.__name__}.{name}{theirs} differs from {protocol.__name__}.{name}{ours}"


def test_reader_attributes_have_the_protocol_types(readers):
    for reader in readers.values():
        assert isinstance(reader.split, str) and isinstance(reader.ids, list) and reader.ids
        assert isinstance(reader.class_names, tuple) and reader.num_classes == len(reader.class_names)
        assert len(reader) == len(reader.ids)
        image_id = reader.ids[0]
        assert reader.load_image(image_id).shape[:2] == reader.image_size(image_id)
        assert reader.image_labels(image_id).shape == (reader.num_classes - 1,)
