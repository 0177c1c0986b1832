"""Reader for COCO-format instance annotations (COCO 2014/2017 ``instances_*.json``, or any file in that format).

Layout under ``root`` (the defaults, ``{split}`` replaced by the split name)::

    annotations/instances_{split}.json    e.g. instances_train2017.json, instances_val2014.json
    {split}/<file_name>                    e.g. val2017/000000128372.jpg

Image ids are the file stems (``000000128372``), so artifacts are named like
VOC's; :meth:`COCODataset.coco_image_id` gives the json's integer id back.

Classes: the json's categories, sorted by id, map contiguously to 1..K
(COCO's 80 category ids 1..90 become 1..80); 0 is background and 255 ignore.
Categories named ``_background_``, ``background`` or ``__ignore__`` (labelme's
converter writes them) are not object classes. :meth:`COCODataset.category_id`
maps back for export. Regions of an ``__ignore__`` (or ``_ignore_``) category are
ignore regions, as labelme means them: 255 in the masks like crowd, but no
object, box or tag (minicoco's void band, :mod:`wsss.data.minivoc.coco_layout`).

Masks are rasterised with pycocotools (polygons and RLE, compressed or not).
Crowd regions (``iscrowd=1``) are 255 in semantic masks and belong to no
instance; they count as ``difficult`` objects in :meth:`load_annotation`.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.classes import IGNORE_INDEX
from wsss.data.validate import check_same_size
from wsss.data.voc import VOCAnnotation, VOCObject, read_image, read_image_size
from wsss.errors import WsssError
from wsss.io import load_json

_IGNORE_NAMES = {"__ignore__", "_ignore_"}
_NON_OBJECT_NAMES = {"_background_", "background", "__background__"} | _IGNORE_NAMES
#: how far (pixels) a COCO box may reach past the image border before it is an error (float rounding in COCO files)
BOX_TOLERANCE = 1.0


def coco_box_to_pixels(bbox: list[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """COCO ``[x, y, w, h]`` (continuous coordinates) → 0-based inclusive pixel box ``(x0, y0, x1, y1)``.

    The pixels the box touches: ``x0 = floor(x)``, ``x1 = ceil(x + w) - 1``,
    clipped to the ``size = (H, W)`` image.
    """
    height, width = size
    x, y, w, h = (float(v) for v in bbox)
    x0 = min(max(int(math.floor(x)), 0), width - 1)
    y0 = min(max(int(math.floor(y)), 0), height - 1)
    x1 = min(max(int(math.ceil(x + w)) - 1, x0), width - 1)
    y1 = min(max(int(math.ceil(y + h)) - 1, y0), height - 1)
    return x0, y0, x1, y1


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    """An image or category id: an integer or a string (never a list, a dict or a bool)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _compressed_rle_pixels(counts: str) -> int | None:
    """Pixels covered by a compressed COCO RLE string (pycocotools' ``rleFrString`` format: 5-bit groups
    offset by 48, continuation bit 0x20, sign bit 0x10, from the third run on a delta to the run two
    before), or None when the string is malformed. pycocotools decodes such strings without bounds
    checks, so they are checked here first."""
    runs: list[int] = []
    position, total = 0, 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                return None
            c = ord(counts[position]) - 48
            if not 0 <= c < 64:
                return None
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            position += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return None
        runs.append(value)
        total += value
    return total


def validate_coco(data: Any, where: str) -> list[str]:
    """Every structural problem of a loaded COCO instances json, as one-line messages naming ``where``.

    Checks: the ``images``/``annotations``/``categories`` lists; image ids,
    file names and sizes; duplicate image ids, file stems or category ids;
    each annotation's image and category, ``iscrowd``, box (finite, positive
    width and height, inside the image within :data:`BOX_TOLERANCE`) and
    segmentation (polygons of ≥ 3 points, or an RLE whose size is the image's).
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        return [f"{where}: malformed COCO JSON: top level is not an object"]
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            problems.append(f"{where}: malformed COCO JSON: missing list '{key}'")
    if problems:
        return problems
    sizes: dict[Any, tuple[int, int]] = {}
    stems: dict[str, Any] = {}
    for n, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image:
            problems.append(f"{where}: images[{n}]: missing 'id'")
            continue
        if not _is_id(image["id"]):
            problems.append(f"{where}: images[{n}]: id {image['id']!r} is not an integer or a string")
            continue
        iid = image["id"]
        name = image.get("file_name")
        h, w = image.get("height"), image.get("width")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: image {iid}: missing 'file_name'")
            continue
        if not (isinstance(h, int) and isinstance(w, int) and not isinstance(h, bool) and not isinstance(w, bool)
                and h > 0 and w > 0):
            problems.append(f"{where}: image {iid} ({name}): invalid size width={w!r} height={h!r}")
            continue
        if iid in sizes:
            problems.append(f"{where}: image {iid}: duplicate image id")
            continue
        stem = Path(name).stem
        if stem in stems:
            problems.append(f"{where}: image {iid} ({name}): file stem {stem!r} also used by image {stems[stem]}")
            continue
        stems[stem] = iid
        sizes[iid] = (h, w)
    categories: set[Any] = set()
    for n, category in enumerate(data["categories"]):
        if (not isinstance(category, dict) or not _is_id(category.get("id"))
                or not isinstance(category.get("name"), str)):
            problems.append(f"{where}: categories[{n}]: needs 'id' (an integer or a string) and 'name'")
        elif category["id"] in categories:
            problems.append(f"{where}: category {category['id']}: duplicate category id")
        else:
            categories.add(category["id"])
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            problems.append(f"{where}: annotations[{n}]: not an object")
            continue
        label = f"{where}: annotation {ann.get('id', f'#{n}')}"
        if not _is_id(ann.get("image_id")) or ann.get("image_id") not in sizes:
            problems.append(f"{label}: unknown image_id {ann.get('image_id')!r}")
            continue
        if not _is_id(ann.get("category_id")) or ann.get("category_id") not in categories:
            problems.append(f"{label}: unknown category_id {ann.get('category_id')!r}")
        height, width = sizes[ann["image_id"]]
        if ann.get("iscrowd", 0) not in (0, 1):
            problems.append(f"{label}: iscrowd {ann.get('iscrowd')!r} is not 0 or 1")
        if "area" in ann and not (_is_number(ann["area"]) and ann["area"] >= 0):
            problems.append(f"{label}: area {ann['area']!r} is not a number >= 0")
        bbox = ann.get("bbox")
        if bbox is not None:
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
                problems.append(f"{label}: malformed bbox {bbox!r} (expected [x, y, w, h])")
            else:
                x, y, w, h = bbox
                if w <= 0 or h <= 0:
                    problems.append(f"{label}: empty or inverted bbox {bbox} (w and h must be > 0)")
                elif x < -BOX_TOLERANCE or y < -BOX_TOLERANCE or x + w > width + BOX_TOLERANCE or y + h > height + BOX_TOLERANCE:
                    problems.append(f"{label}: bbox {bbox} lies outside the {width}x{height} image")
        segmentation = ann.get("segmentation")
        if segmentation is None:
            continue
        if isinstance(segmentation, list):
            for polygon in segmentation:
                if not (isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                        and all(_is_number(v) for v in polygon)):
                    problems.append(f"{label}: malformed polygon (needs an even number >= 6 of coordinates)")
                    break
                # pycocotools rasterises a polygon edge by edge at pixel steps: a far-away vertex would cost
                # memory in proportion to its distance (and crash it), so vertices must lie in the image
                xs, ys = polygon[0::2], polygon[1::2]
                if (min(xs) < -BOX_TOLERANCE or min(ys) < -BOX_TOLERANCE or max(xs) > width + BOX_TOLERANCE
                        or max(ys) > height + BOX_TOLERANCE):
                    problems.append(f"{label}: polygon vertex outside the {width}x{height} image")
                    break
        elif isinstance(segmentation, dict):
            size = segmentation.get("size")
            if not isinstance(segmentation.get("counts"), (list, str)) or not isinstance(size, list):
                problems.append(f"{label}: malformed RLE (needs 'counts' and 'size')")
            elif list(size) != [height, width]:
                problems.append(f"{label}: RLE size {size} differs from the image size [{height}, {width}] (HxW)")
            elif isinstance(segmentation["counts"], str) and _compressed_rle_pixels(segmentation["counts"]) != height * width:
                problems.append(f"{label}: malformed compressed RLE counts (they must cover {height}x{width} pixels)")
            elif isinstance(segmentation["counts"], list) and not (
                    all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in segmentation["counts"])
                    and sum(segmentation["counts"]) == height * width):
                problems.append(f"{label}: malformed RLE counts (non-negative integers summing to {height}x{width} "
                                f"pixels)")
        else:
            problems.append(f"{label}: malformed segmentation (neither polygons nor RLE)")
    return problems


def segmentation_to_mask(segmentation: Any, size: tuple[int, int], where: str = "") -> np.ndarray:
    """Rasterise a COCO segmentation (polygon list, uncompressed or compressed RLE) to an ``(H, W)`` bool mask."""
    from pycocotools import mask as mask_utils

    height, width = size
    try:
        if isinstance(segmentation, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            counts = segmentation["counts"]
            rle = {"size": segmentation["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
        with warnings.catch_warnings():  # pycocotools' Cython decode trips numpy 2's __array__(copy=) deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        raise WsssError(f"{where}: malformed segmentation ({exc})") from None


class COCODataset:
    """A COCO-format instance dataset, read through the same interface as :class:`~wsss.data.voc.VOCDataset`.

    Args:
        root: dataset root.
        split: e.g. ``train2017``, ``val2014``; replaces ``{split}`` in the two templates.
        annotation_file: json path relative to ``root`` (or absolute).
        image_folder: folder relative to ``root`` that the json's ``file_name`` values are relative to.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        annotation_file: str = "annotations/instances_{split}.json",
        image_folder: str = "{split}",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise WsssError(f"{self.root}: dataset root not found")
        self.split = split
        self.annotation_file = self.root / annotation_file.format(split=split)
        self.image_folder = self.root / image_folder.format(split=split)
        if not self.annotation_file.is_file():
            raise WsssError(f"{self.annotation_file}: annotation file for split {split!r} not found")
        data = load_json(self.annotation_file)
        self.problems = validate_coco(data, str(self.annotation_file))
        if self.problems:
            more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            raise WsssError(self.problems[0] + more)
        self.data = data
        categories = sorted(
            (c for c in data["categories"] if c["name"].strip().lower() not in _NON_OBJECT_NAMES), key=lambda c: c["id"]
        )
        #: ``category_ids[k - 1]`` is the json category id of contiguous class ``k``
        self.category_ids: list[int] = [c["id"] for c in categories]
        self._contiguous = {cid: k + 1 for k, cid in enumerate(self.category_ids)}
        self._ignore_ids = {c["id"] for c in data["categories"] if c["name"].strip().lower() in _IGNORE_NAMES}
        self.class_names: tuple[str, ...] = ("background", *(c["name"] for c in categories))
        self.num_classes = len(self.class_names)
        self._images = {Path(im["file_name"]).stem: im for im in data["images"]}
        self.ids: list[str] = list(self._images)
        self._annotations: dict[Any, list[dict]] = {im["id"]: [] for im in data["images"]}
        for ann in data["annotations"]:
            self._annotations[ann["image_id"]].append(ann)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"COCODataset(annotation_file={str(self.annotation_file)!r}, n={len(self.ids)}, classes={self.num_classes - 1})"

    # ------------------------------------------------------------- class ids
    def contiguous_id(self, category_id: int) -> int:
        """Contiguous class 1..K of a json category id (0 for a non-object category such as ``_background_``)."""
        if category_id not in self._contiguous:
            return 0
        return self._contiguous[category_id]

    def category_id(self, class_id: int) -> int:
        """Json category id of contiguous class ``class_id`` (1..K), for export."""
        if not 1 <= class_id <= len(self.category_ids):
            raise WsssError(f"class id {class_id} out of range 1..{len(self.category_ids)} for {self.annotation_file}")
        return self.category_ids[class_id - 1]

    def coco_image_id(self, image_id: str) -> Any:
        """The json's image id of image ``image_id`` (a file stem)."""
        return self._image(image_id)["id"]

    def _image(self, image_id: str) -> dict:
        try:
            return self._images[image_id]
        except KeyError:
            raise WsssError(f"{self.annotation_file}: no image {image_id!r}") from None

    def _objects(self, image_id: str) -> list[dict]:
        """Annotations of object categories (non-object categories such as labelme's ``_background_`` dropped)."""
        return [a for a in self._annotations[self._image(image_id)["id"]] if self.contiguous_id(a["category_id"])]

    def _ignore_regions(self, image_id: str) -> list[dict]:
        """Annotations of an ignore category (``__ignore__``): 255 in the masks, nothing else."""
        return [a for a in self._annotations[self._image(image_id)["id"]] if a["category_id"] in self._ignore_ids]

    # ---------------------------------------------------------------- images
    def image_path(self, image_id: str) -> Path:
        """``<image_folder>/<file_name>``."""
        return self.image_folder / self._image(image_id)["file_name"]

    def image_size(self, image_id: str) -> tuple[int, int]:
        """``(H, W)`` from the json (no file access)."""
        image = self._image(image_id)
        return image["height"], image["width"]

    def load_image(self, image_id: str) -> np.ndarray:
        """The image as ``(H, W, 3)`` uint8 RGB; its size must match the json."""
        path = self.image_path(image_id)
        pixels = read_image(path)
        check_same_size(pixels.shape, self.image_size(image_id), str(path), "image (decoded)")
        return pixels

    def check_image_files(self) -> None:
        """Raise, naming the first, unless every image the json lists is a file in the image folder (a stat each:
        a stage ends on a missing image before it starts, not when it reaches it)."""
        for image in self._images.values():
            path = self.image_folder / image["file_name"]
            if not path.is_file():
                raise WsssError(f"{path}: image file not found (listed in {self.annotation_file})")

    def check_image_header(self, image_id: str) -> None:
        """Raise unless the image file exists and its header size matches the json."""
        path = self.image_path(image_id)
        check_same_size(read_image_size(path), self.image_size(image_id), str(path), "image")

    # ----------------------------------------------------------------- masks
    def _mask(self, ann: dict, image_id: str) -> np.ndarray:
        where = f"{self.annotation_file}: annotation {ann.get('id')}"
        if ann.get("segmentation") is None:
            raise WsssError(f"{where}: no segmentation")
        return segmentation_to_mask(ann["segmentation"], self.image_size(image_id), where)

    def has_class_mask(self, image_id: str) -> bool:
        """Always true once the image is in the json: semantic masks are rasterised from it.

        An image without annotations reads as all background (COCO's own
        reading); a file that left some images unannotated on purpose needs a
        split list without them.
        """
        self._image(image_id)
        return True

    def has_object_mask(self, image_id: str) -> bool:
        """Always true (see :meth:`has_class_mask`)."""
        return self.has_class_mask(image_id)

    def load_class_mask(self, image_id: str) -> np.ndarray:
        """Semantic mask ``(H, W)`` uint8: 0 background, 1..K, 255 crowd.

        Objects are painted largest first (by ``area``) so smaller objects stay
        on top where they overlap; crowd and ignore regions become 255 only where no object is.
        """
        mask = np.zeros(self.image_size(image_id), dtype=np.uint8)
        objects = self._objects(image_id)
        crowd = np.zeros(mask.shape, dtype=bool)
        for ann in self._ignore_regions(image_id):
            crowd |= self._mask(ann, image_id)
        for ann in sorted(objects, key=lambda a: -float(a.get("area", 0.0))):
            if ann.get("iscrowd", 0):
                crowd |= self._mask(ann, image_id)
            else:
                mask[self._mask(ann, image_id)] = self.contiguous_id(ann["category_id"])
        mask[crowd & (mask == 0)] = IGNORE_INDEX
        return mask

    def instances(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Non-crowd instance masks ``(R, H, W)`` bool and labels ``(R,)`` int64 in 1..K, in json order."""
        objects = [a for a in self._objects(image_id) if not a.get("iscrowd", 0)]
        masks = np.zeros((len(objects), *self.image_size(image_id)), dtype=bool)
        for r, ann in enumerate(objects):
            masks[r] = self._mask(ann, image_id)
        labels = np.array([self.contiguous_id(a["category_id"]) for a in objects], dtype=np.int64)
        return masks, labels

    def load_object_mask(self, image_id: str) -> np.ndarray:
        """Instance index map ``(H, W)`` uint8 like VOC's SegmentationObject: 0 background, ``r+1`` the r-th
        instance of :meth:`instances` (later instances drawn over earlier ones), 255 crowd or ignore where no
        instance is."""
        masks, _ = self.instances(image_id)
        if len(masks) > 254:
            raise WsssError(f"{self.annotation_file}: image {image_id} has {len(masks)} instances, more than a uint8 map holds")
        out = np.zeros(self.image_size(image_id), dtype=np.uint8)
        for r, mask in enumerate(masks):
            out[mask] = r + 1
        for ann in self._objects(image_id) + self._ignore_regions(image_id):
            if ann.get("iscrowd", 0) or ann["category_id"] in self._ignore_ids:
                out[self._mask(ann, image_id) & (out == 0)] = IGNORE_INDEX
        return out

    # ----------------------------------------------------------- annotations
    def has_annotation(self, image_id: str) -> bool:
        """Always true: boxes come from the json."""
        return self.has_class_mask(image_id)

    def load_annotation(self, image_id: str) -> VOCAnnotation:
        """Boxes as a :class:`VOCAnnotation`: ``class_id`` contiguous 1..K, box 0-based inclusive pixels
        (:func:`coco_box_to_pixels`), ``difficult`` = crowd. Annotations without ``bbox`` are skipped."""
        height, width = self.image_size(image_id)
        objects = []
        for ann in self._objects(image_id):
            if ann.get("bbox") is None:
                continue
            k = self.contiguous_id(ann["category_id"])
            objects.append(
                VOCObject(
                    class_id=k,
                    name=self.class_names[k],
                    box=coco_box_to_pixels(ann["bbox"], (height, width)),
                    difficult=bool(ann.get("iscrowd", 0)),
                    truncated=False,
                )
            )
        return VOCAnnotation(width=width, height=height, objects=objects)

    def image_labels(self, image_id: str) -> np.ndarray:
        """Multi-hot ``(K,)`` float32 (index ``k - 1`` for class ``k``) over every annotation, crowd included."""
        labels = np.zeros(self.num_classes - 1, dtype=np.float32)
        for ann in self._objects(image_id):
            labels[self.contiguous_id(ann["category_id"]) - 1] = 1.0
        return labels

    # ------------------------------------------------------------ evaluation
    def coco_api(self):
        """A ``pycocotools.coco.COCO`` over this json (its index-building chatter suppressed)."""
        from pycocotools.coco import COCO

        api = COCO()
        api.dataset = self.data
        with contextlib.redirect_stdout(io.StringIO()):
            api.createIndex()
        return api


def encode_instances(
    coco_image_id: Any, masks: np.ndarray, category_ids: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
    """COCO result dicts for one image's instances (for :func:`wsss.metrics.eval_coco` or a results json).

    Args:
        coco_image_id: the json's image id (:meth:`COCODataset.coco_image_id`).
        masks: ``(R, H, W)`` bool.
        category_ids: ``(R,)`` json category ids (map contiguous labels with :meth:`COCODataset.category_id`).
        scores: ``(R,)`` float.
    Each dict has ``image_id``, ``category_id``, ``score``, ``segmentation``
    (compressed RLE, ``counts`` as str so it is JSON) and ``bbox`` ``[x, y, w, h]`` of the mask.
    """
    from pycocotools import mask as mask_utils

    masks = np.asarray(masks, dtype=bool)
    out = []
    for mask, category, score in zip(masks, category_ids, scores):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        rle["counts"] = rle["counts"].decode("ascii")
        out.append({"image_id": coco_image_id, "category_id": int(category), "score": float(score),
                    "segmentation": rle, "bbox": bbox})
    return out
