"""minivoc in COCO layout (``minicoco``): the same images and masks as the VOC layout, written as COCO instances.

Layout written under ``root``::

    annotations/instances_{train,val}.json    COCO instances (images, categories, annotations)
    {train,val}/<id>.jpg                       the JPEGs of the VOC layout, byte for byte
    Points/<id>.txt, Scribbles/<id>.xml        minivoc's point and scribble files (COCO has neither)

The json, per split: ``images`` (``id`` = the image number, ``file_name`` ``<id>.jpg``, ``width``,
``height``); ``categories``: the 20 VOC classes with ids 1..20 (VOC's class indices) and one ignore
category, ``{"id": 255, "name": "__ignore__"}``; ``annotations``, per object of the image in the VOC
XML's order: ``category_id`` its class, ``iscrowd`` 0, ``segmentation`` the compressed RLE of its
``SegmentationObject`` region (void band excluded), ``area`` that region's pixel count and ``bbox``
the VOC box as ``[x, y, w, h]`` (the 1-based inclusive ``(x0, y0, x1, y1)`` becomes
``[x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1]``: the same 0-based pixel box once read back); then one
``iscrowd`` 1 annotation of the ``__ignore__`` category holding the image's void band (VOC's 255 border;
COCO has no void value, its ignore mechanism is an ignore region). :class:`wsss.data.coco.COCODataset`
rasterises that json back into exactly the VOC layout's ``SegmentationClass`` / ``SegmentationObject``
(band 255, objects 1..K), reads the same boxes and the same image tags.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wsss.data.classes import IGNORE_INDEX, NUM_FOREGROUND, VOC_CLASSES
from wsss.data.minivoc.params import MinivocParams
from wsss.data.minivoc.sample import Sample
from wsss.data.minivoc.writers import _write_jpeg, _write_text, points_txt, scribble_xml

#: the category of the void band's ignore regions (a name :class:`wsss.data.coco.COCODataset` reads as ignore)
IGNORE_CATEGORY = {"id": IGNORE_INDEX, "name": "__ignore__", "supercategory": "ignore"}
CATEGORIES = [{"id": k, "name": VOC_CLASSES[k], "supercategory": "voc"} for k in range(1, NUM_FOREGROUND + 1)]


def _rle(mask: np.ndarray) -> tuple[dict, list[float], int]:
    """Compressed RLE (``counts`` as str), ``[x, y, w, h]`` box and area of a bool mask (pycocotools)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    box = [float(v) for v in mask_utils.toBbox(rle)]
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}, box, int(mask.sum())


class CocoLayoutWriter:
    """Writes one minivoc sample at a time under ``root`` in COCO layout; :meth:`finish` writes the jsons."""

    def __init__(self, root: Path, year: int) -> None:
        self.root = Path(root)
        self.year = year
        self.images: dict[str, list[dict]] = {"train": [], "val": []}
        self.annotations: dict[str, list[dict]] = {"train": [], "val": []}

    def add(self, split: str, image_id: str, number: int, sample: Sample, params: MinivocParams) -> None:
        """The sample's JPEG (same bytes as the VOC layout's), point and scribble files, and its json entries."""
        _write_jpeg(self.root / split / f"{image_id}.jpg", sample.image, params.jpeg_quality)
        _write_text(self.root / "Points" / f"{image_id}.txt", points_txt(sample))
        _write_text(self.root / "Scribbles" / f"{image_id}.xml", scribble_xml(image_id, sample))
        height, width = sample.labels.shape
        self.images[split].append({"id": number, "file_name": f"{image_id}.jpg", "width": width, "height": height})
        annotations = self.annotations[split]
        for k, obj in enumerate(sample.objects):
            segmentation, _, area = _rle(sample.instances == k + 1)
            x0, y0, x1, y1 = obj.box
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": obj.class_id,
                                "iscrowd": 0, "segmentation": segmentation, "area": area,
                                "bbox": [float(x0 - 1), float(y0 - 1), float(x1 - x0 + 1), float(y1 - y0 + 1)]})
        band = sample.instances == IGNORE_INDEX
        if band.any():
            segmentation, box, area = _rle(band)
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": IGNORE_CATEGORY["id"],
                                "iscrowd": 1, "segmentation": segmentation, "area": area, "bbox": box})

    def finish(self) -> None:
        """``annotations/instances_<split>.json`` of both splits."""
        for split in ("train", "val"):
            record = {
                "info": {"description": f"minicoco {split} (minivoc in COCO layout, synthetic, wsss)",
                         "version": "1", "year": self.year},
                "licenses": [],
                "images": self.images[split],
                "annotations": self.annotations[split],
                "categories": CATEGORIES + [IGNORE_CATEGORY],
            }
            _write_text(self.root / "annotations" / f"instances_{split}.json", json.dumps(record) + "\n")
