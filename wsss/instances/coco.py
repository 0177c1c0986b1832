"""COCO-format export of instances: categories, compressed RLE masks, image ids, the instances json.

The json (:class:`CocoBuilder`): COCO instances json, masks as compressed RLE
(pycocotools, ``counts`` decoded to str), categories 1..20 = VOC class ids with
their names (IRN's exporter writes 0-based ids; this one does not), image ids
from :func:`coco_image_id` (stable: derived from the image name, not from the
order). :func:`dataset_to_coco` builds the ground-truth json of a split from
``SegmentationObject`` for COCOeval.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Iterable, Sequence

import numpy as np

from wsss.data.classes import VOC_CLASSES
from wsss.data.reader import CocoJsonReader, DatasetReader
from wsss.errors import WsssError
from wsss.instances.instance_set import InstanceSet


def voc_categories(class_names: Sequence[str] = VOC_CLASSES) -> list[dict[str, Any]]:
    """COCO categories of a VOC-style class table: ids 1..K-1 = the class ids, with their names (background left out)."""
    return [{"id": k, "name": name, "supercategory": "object"} for k, name in enumerate(class_names) if k > 0]


def category_id(class_id: int, dataset: DatasetReader | None = None) -> int:
    """COCO category id of class ``class_id`` (1..K-1): the class id itself for VOC (1 aeroplane … 20 tvmonitor),
    the json's id for a :class:`~wsss.data.coco.COCODataset` (its ``category_id``)."""
    if isinstance(dataset, CocoJsonReader):
        return int(dataset.category_id(int(class_id)))
    if not 1 <= class_id < len(VOC_CLASSES):
        raise WsssError(f"class id {class_id} has no COCO category (object classes are 1..{len(VOC_CLASSES) - 1})")
    return int(class_id)


def class_of_category(category: int, dataset: DatasetReader | None = None) -> int:
    """Inverse of :func:`category_id`: the class id (1..K-1) of a COCO category id."""
    if isinstance(dataset, CocoJsonReader):
        cid = int(dataset.contiguous_id(int(category)))
        if cid == 0:
            raise WsssError(f"category id {category} is not an object category of {dataset}")
        return cid
    if not 1 <= category < len(VOC_CLASSES):
        raise WsssError(f"category id {category} outside the VOC categories 1..{len(VOC_CLASSES) - 1}")
    return int(category)


def categories_of(dataset: DatasetReader) -> list[dict[str, Any]]:
    """COCO categories for ``dataset``: its json's for a COCO reader, else :func:`voc_categories` of its class names."""
    if isinstance(dataset, CocoJsonReader):
        names = dataset.class_names
        return [{"id": dataset.category_id(k), "name": names[k], "supercategory": "object"} for k in range(1, len(names))]
    return voc_categories(dataset.class_names)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` bool → compressed RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """Compressed RLE (``counts`` str or bytes) → ``(H, W)`` bool."""
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    return mask_utils.decode({"size": list(rle["size"]),
                              "counts": counts.encode("ascii") if isinstance(counts, str) else counts}).astype(bool)


def rle_box(rle: dict[str, Any]) -> list[float]:
    """COCO ``[x, y, w, h]`` of an RLE mask (pixels it covers: ``w = max col - min col + 1``)."""
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    return [float(v) for v in mask_utils.toBbox({"size": list(rle["size"]),
                                                 "counts": counts.encode("ascii") if isinstance(counts, str) else counts})]


_VOC_NAME = re.compile(r"^\d+(_\d+)*$")


def coco_image_id(name: str, dataset: DatasetReader | None = None) -> int:
    """Stable integer image id of image ``name``.

    The COCO reader's own json id when ``dataset`` is one; a name made of digits
    and underscores → those digits (``2007_000032`` → 2007000032, IRN's rule);
    any other name → CRC-32 of the name (31 bits). Builders check uniqueness.
    """
    if isinstance(dataset, CocoJsonReader):
        return int(dataset.coco_image_id(name))
    if _VOC_NAME.match(name):
        return int(name.replace("_", ""))
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class CocoBuilder:
    """Accumulates a COCO instances json (images, annotations with RLE masks, categories)."""

    def __init__(self, dataset: DatasetReader | None = None, description: str = "") -> None:
        self.dataset = dataset
        self.categories = categories_of(dataset) if dataset is not None else voc_categories()
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.description = description
        self._ids: dict[int, str] = {}

    def add_image(self, name: str, height: int, width: int, file_name: str | None = None) -> int:
        """Register image ``name``; returns its id. Two names with one id is an error."""
        image_id = coco_image_id(name, self.dataset)
        if image_id in self._ids:
            raise WsssError(f"image ids collide: {self._ids[image_id]!r} and {name!r} both map to {image_id}")
        self._ids[image_id] = name
        if file_name is None:
            file_name = self.dataset.image_path(name).name if self.dataset is not None else f"{name}.jpg"
        self.images.append({"id": image_id, "file_name": file_name, "height": int(height), "width": int(width)})
        return image_id

    def add_instances(self, image_id: int, instances: InstanceSet, with_score: bool = True) -> None:
        """Annotations for ``instances`` of image ``image_id`` (empty masks are skipped)."""
        for mask, label, score in zip(instances.masks, instances.labels, instances.scores):
            if not mask.any():
                continue
            rle = encode_mask(mask)
            ann = {"id": len(self.annotations) + 1, "image_id": image_id,
                   "category_id": category_id(int(label), self.dataset), "segmentation": rle,
                   "area": float(mask.sum()), "bbox": rle_box(rle), "iscrowd": 0}
            if with_score:
                ann["score"] = float(score)
            self.annotations.append(ann)

    def to_dict(self) -> dict[str, Any]:
        return {"info": {"description": self.description}, "licenses": [], "images": self.images,
                "annotations": self.annotations, "categories": self.categories}


def merge_coco(parts: list[dict[str, Any]], where: str = "") -> dict[str, Any]:
    """COCO jsons of disjoint image sets (a :class:`CocoBuilder`'s each) as one, as one builder over their images in
    order writes it: images and annotations concatenated, annotation ids renumbered 1..n. ``info``, ``licenses`` and
    ``categories`` must agree; an image id in two parts is an error."""
    first = parts[0]
    for part in parts[1:]:
        for key in ("info", "licenses", "categories"):
            if part.get(key) != first.get(key):
                raise WsssError(f"{where}: the COCO jsons disagree on {key}")
    images = [image for part in parts for image in part["images"]]
    seen: set = set()
    for image in images:
        if image["id"] in seen:
            raise WsssError(f"{where}: image id {image['id']} in two COCO jsons")
        seen.add(image["id"])
    annotations = [{**ann, "id": k} for k, ann in
                   enumerate((ann for part in parts for ann in part["annotations"]), start=1)]
    return {**first, "images": images, "annotations": annotations}


def instance_results(image_id: int, instances: InstanceSet, boxes: np.ndarray | None = None,
                     dataset: DatasetReader | None = None) -> list[dict[str, Any]]:
    """COCO result dicts (for ``loadRes``/COCOeval) of one image.

    Each has ``image_id``, ``category_id``, ``score``, ``segmentation`` (RLE) and
    ``bbox`` ``[x, y, w, h]``: from ``boxes (R, 4)`` (xyxy, a detector's boxes)
    when given, else the mask's box.
    """
    out = []
    for r, (mask, label, score) in enumerate(zip(instances.masks, instances.labels, instances.scores)):
        rle = encode_mask(mask)
        if boxes is not None:
            x0, y0, x1, y1 = (float(v) for v in boxes[r])
            bbox = [x0, y0, x1 - x0, y1 - y0]
        else:
            bbox = rle_box(rle)
        out.append({"image_id": image_id, "category_id": category_id(int(label), dataset), "score": float(score),
                    "segmentation": rle, "bbox": bbox})
    return out


def annotations_as_results(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The annotations of an exported json as COCO results (needs their ``score``), for scoring pseudo-instances."""
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": float(a.get("score", 1.0)),
             "segmentation": a["segmentation"], "bbox": a["bbox"]} for a in data["annotations"]]


def dataset_to_coco(dataset: DatasetReader, ids: Iterable[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Ground-truth COCO json of a split: for a COCO reader its own json; for VOC layout the
    ``SegmentationObject`` instances (void band excluded, ``iscrowd`` 0) of every id that has one."""
    if isinstance(dataset, CocoJsonReader):
        return dataset.data
    from wsss.progress import Progress

    builder = CocoBuilder(dataset, description=f"ground truth of {dataset.split}")
    names = list(ids if ids is not None else dataset.ids)
    iterator = Progress(names, desc="ground-truth json", unit="images") if progress else names
    for name in iterator:
        if not dataset.has_object_mask(name):
            continue
        masks, labels = dataset.instances(name)  # (R, H, W) even when R is 0
        image_id = builder.add_image(name, *masks.shape[1:])
        builder.add_instances(image_id, InstanceSet(masks, labels, np.ones(len(labels), np.float32)), with_score=False)
    return builder.to_dict()


def coco_api(data: dict[str, Any]) -> Any:
    """A ``pycocotools.coco.COCO`` over a json dict (its index-building chatter suppressed)."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    api = COCO()
    api.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api
