"""Instance pseudo-labels from semantic pseudo-labels plus the supervision's instance cues, and COCO-format export.

Cues (``cue`` of :func:`make_instances`; by default chosen from the supervision, see :data:`CUE_OF_SUPERVISION`):

* ``boxes`` (box supervision): one instance per box of the VOC XML; its mask is
  the box class's pseudo-label pixels inside the box. A pixel inside several
  boxes of its class goes to the smallest box (small objects win, as SDI
  resolves GrabCut overlaps). A box with no pixel of its class is exported as the
  filled box (APro's box mask) with half the score, or dropped (``empty_box: drop``).
* ``points`` (point supervision): one instance per annotated object point
  (``Points/<id>.txt``, lines ``x y class_index confidence``, class_index 0-based
  over the 20 object classes, read by :func:`wsss.data.annotations.read_points`;
  background points, class_index -1, are skipped). Each 8-connected region of a class (at least
  ``min_component_px`` pixels, BESTIE's 50) is split among the points of that
  class lying in it, every pixel going to its nearest point (BESTIE/P2Seg's
  ``dis_group``); regions without a point are left out (BESTIE: "unlabeled"). A
  point whose class has no region under it gets a ``fallback_size`` square around
  it with half the score (P2Seg gives such points a 64×64 box), or nothing when
  ``fallback_size`` is 0.
* ``components`` (image-level tags, and scribbles until a scribble reader exists):
  each 8-connected region of each class is an instance; fragments smaller than
  ``min_fraction`` of the image (IRN: 1 %) are dropped.

Scores: the mean probability of the instance's class inside its mask when a
probability map ``(K, H, W)`` is given; else area-based, ``sqrt(area / (H·W))``
(in (0, 1]; larger regions rank first, as IRN ranks by area-thresholded scores).

Export (:class:`CocoBuilder`): COCO instances json, masks as compressed RLE
(pycocotools, ``counts`` decoded to str), categories 1..20 = VOC class ids with
their names (IRN's exporter writes 0-based ids; this one does not), image ids
from :func:`coco_image_id` (stable: derived from the image name, not from the
order). :func:`dataset_to_coco` builds the ground-truth json of a split from
``SegmentationObject`` for COCOeval.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import ndimage

from wsss.data.classes import IGNORE_INDEX, VOC_CLASSES
from wsss.errors import WsssError
from wsss.params import InstanceSettings

#: default instance cue per supervision kind
CUE_OF_SUPERVISION = {"image": "components", "scribble": "components", "point": "points", "box": "boxes"}
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class InstanceSet:
    """Instances of one image: ``masks (R, H, W)`` bool, ``labels (R,)`` int64 class ids (1..20), ``scores (R,)`` float32."""

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty(size: tuple[int, int]) -> "InstanceSet":
        return InstanceSet(np.zeros((0, *size), bool), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @staticmethod
    def stack(masks: Sequence[np.ndarray], labels: Sequence[int], scores: Sequence[float],
              size: tuple[int, int]) -> "InstanceSet":
        if not masks:
            return InstanceSet.empty(size)
        return InstanceSet(np.stack(masks).astype(bool), np.asarray(labels, np.int64), np.asarray(scores, np.float32))

    def __len__(self) -> int:
        return len(self.labels)


def instance_scores(masks: np.ndarray, labels: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(R,)`` float32: mean ``probs[label]`` inside each mask when ``probs (K, H, W)`` is given,
    else ``sqrt(area / (H·W))``. An empty mask scores 0."""
    masks = np.asarray(masks, dtype=bool)
    scores = np.zeros(len(masks), dtype=np.float32)
    if len(masks) == 0:
        return scores
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    for r, (mask, label) in enumerate(zip(masks, labels)):
        if areas[r] == 0:
            continue
        if probs is not None:
            scores[r] = float(probs[int(label)][mask].mean())
        else:
            scores[r] = float(np.sqrt(areas[r] / mask.size))
    return scores


def _check_semantic(semantic: np.ndarray) -> np.ndarray:
    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f"semantic label map must be (H, W), got {semantic.shape}")
    return semantic


def instances_from_components(
    semantic: np.ndarray, min_fraction: float = 0.01, probs: np.ndarray | None = None
) -> InstanceSet:
    """One instance per 8-connected region of each object class of ``semantic (H, W)`` (0 bg, 1..K-1, 255 ignored).

    Regions smaller than ``min_fraction`` of the image are dropped. Order: by class, then by region label.
    """
    semantic = _check_semantic(semantic)
    size = semantic.shape
    min_area = min_fraction * semantic.size
    masks, labels = [], []
    for cls in np.unique(semantic):
        if cls == 0 or cls == IGNORE_INDEX:
            continue
        regions, count = ndimage.label(semantic == cls, structure=_EIGHT)
        for k in range(1, count + 1):
            mask = regions == k
            if mask.sum() >= max(min_area, 1):
                masks.append(mask)
                labels.append(int(cls))
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    return InstanceSet.stack(masks, labels, list(scores), size)


def _square(center: tuple[int, int], side: int, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    x, y = center
    half = side // 2
    mask[max(0, y - half): y - half + side, max(0, x - half): x - half + side] = True
    return mask


def instances_from_points(
    semantic: np.ndarray,
    points: Sequence[Any],
    min_component_px: int = 50,
    min_confidence: float = 0.0,
    fallback_size: int = 0,
    probs: np.ndarray | None = None,
) -> InstanceSet:
    """One instance per object point of ``points`` with confidence ≥ ``min_confidence`` (see the module docstring).

    ``points``: objects with ``x``, ``y`` (0-based pixel), ``class_id`` and ``confidence``
    (:class:`wsss.data.annotations.PointAnnotation`); background points (class 0) are skipped.
    Returns instances in point order (points that end with no pixels are left out).
    """
    semantic = _check_semantic(semantic)
    size = semantic.shape
    kept = [p for p in points if p.class_id > 0 and p.confidence >= min_confidence]
    owner = np.full(size, -1, dtype=np.int64)  # index into ``kept`` of each pixel's point
    for cls in sorted({p.class_id for p in kept}):
        regions, count = ndimage.label(semantic == cls, structure=_EIGHT)
        of_class = [i for i, p in enumerate(kept) if p.class_id == cls]
        for k in range(1, count + 1):
            region = regions == k
            if region.sum() < min_component_px:
                continue
            inside = [i for i in of_class if region[kept[i].y, kept[i].x]]
            if not inside:
                continue
            ys, xs = np.nonzero(region)
            centres = np.array([(kept[i].x, kept[i].y) for i in inside], dtype=np.float64)
            d2 = (xs[:, None] - centres[None, :, 0]) ** 2 + (ys[:, None] - centres[None, :, 1]) ** 2
            owner[ys, xs] = np.asarray(inside)[d2.argmin(axis=1)]
    masks, labels, fallback = [], [], []
    for i, point in enumerate(kept):
        mask = owner == i
        is_fallback = False
        if not mask.any():
            if fallback_size <= 0:
                continue
            mask, is_fallback = _square((point.x, point.y), fallback_size, size), True
        masks.append(mask)
        labels.append(point.class_id)
        fallback.append(is_fallback)
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    scores[np.asarray(fallback, dtype=bool)] *= 0.5
    return InstanceSet.stack(masks, labels, list(scores), size)


def instances_from_boxes(
    semantic: np.ndarray,
    boxes: Sequence[tuple[int, tuple[int, int, int, int]]],
    empty_box: str = "fill",
    probs: np.ndarray | None = None,
) -> InstanceSet:
    """One instance per ``(class_id, (x0, y0, x1, y1))`` box (0-based inclusive, as :class:`wsss.data.voc.VOCObject`).

    ``empty_box``: ``fill`` (the filled box, half score) or ``drop`` for a box with no pixel of its class.
    Returns instances in box order.
    """
    if empty_box not in ("fill", "drop"):
        raise WsssError(f"empty_box: must be 'fill' or 'drop', got {empty_box!r}")
    semantic = _check_semantic(semantic)
    size = semantic.shape
    areas = [(x1 - x0 + 1) * (y1 - y0 + 1) for _, (x0, y0, x1, y1) in boxes]
    owner = np.full(size, -1, dtype=np.int64)
    best_area = np.full(size, np.inf)
    for i, (cls, (x0, y0, x1, y1)) in enumerate(boxes):
        window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        claim = (semantic[window] == cls) & (areas[i] < best_area[window])
        owner[window][claim] = i
        best_area[window][claim] = areas[i]
    masks, labels, fallback = [], [], []
    for i, (cls, (x0, y0, x1, y1)) in enumerate(boxes):
        mask = owner == i
        is_fallback = False
        if not mask.any():
            if empty_box == "drop":
                continue
            mask = np.zeros(size, dtype=bool)
            mask[y0:y1 + 1, x0:x1 + 1] = True
            is_fallback = True
        masks.append(mask)
        labels.append(int(cls))
        fallback.append(is_fallback)
    scores = instance_scores(np.asarray(masks).reshape(-1, *size), np.asarray(labels), probs)
    scores[np.asarray(fallback, dtype=bool)] *= 0.5
    return InstanceSet.stack(masks, labels, list(scores), size)


def resolve_cue(cue: str, supervision: str) -> str:
    """``auto`` → the supervision's default cue; otherwise ``cue`` itself (validated)."""
    if cue == "auto":
        if supervision not in CUE_OF_SUPERVISION:
            raise WsssError(f"supervision.name: unknown supervision {supervision!r} (expected {', '.join(CUE_OF_SUPERVISION)})")
        return CUE_OF_SUPERVISION[supervision]
    if cue not in ("components", "points", "boxes"):
        raise WsssError(f"instances.cue: must be auto, components, points or boxes, got {cue!r}")
    return cue


def make_instances(
    dataset, image_id: str, semantic: np.ndarray, cue: str, settings: InstanceSettings,
    points_dir: str | Path | None = None, probs: np.ndarray | None = None,
) -> InstanceSet:
    """Instances of ``image_id`` from its semantic pseudo-label ``(H, W)`` and the cue's annotation.

    ``boxes`` reads ``dataset.load_annotation``; ``points`` reads ``<points_dir>/<id>.txt``.
    """
    if cue == "components":
        return instances_from_components(semantic, settings.min_fraction, probs)
    if cue == "boxes":
        objects = dataset.load_annotation(image_id).objects
        return instances_from_boxes(semantic, [(o.class_id, o.box) for o in objects], settings.empty_box, probs)
    if cue == "points":
        if points_dir is None:
            raise WsssError("points: no point folder given")
        from wsss.data.annotations import read_points

        points = read_points(Path(points_dir) / f"{image_id}.txt", semantic.shape)
        return instances_from_points(semantic, points, settings.min_component_px, settings.min_confidence,
                                     settings.fallback_size, probs)
    raise WsssError(f"instances.cue: unknown cue {cue!r}")


# ------------------------------------------------------------------ COCO format
def voc_categories(class_names: Sequence[str] = VOC_CLASSES) -> list[dict[str, Any]]:
    """COCO categories of a VOC-style class table: ids 1..K-1 = the class ids, with their names (background left out)."""
    return [{"id": k, "name": name, "supercategory": "object"} for k, name in enumerate(class_names) if k > 0]


def category_id(class_id: int, dataset: Any = None) -> int:
    """COCO category id of class ``class_id`` (1..K-1): the class id itself for VOC (1 aeroplane … 20 tvmonitor),
    the json's id for a :class:`~wsss.data.coco.COCODataset` (its ``category_id``)."""
    if dataset is not None and hasattr(dataset, "category_id"):
        return int(dataset.category_id(int(class_id)))
    if not 1 <= class_id < len(VOC_CLASSES):
        raise WsssError(f"class id {class_id} has no COCO category (object classes are 1..{len(VOC_CLASSES) - 1})")
    return int(class_id)


def class_of_category(category: int, dataset: Any = None) -> int:
    """Inverse of :func:`category_id`: the class id (1..K-1) of a COCO category id."""
    if dataset is not None and hasattr(dataset, "contiguous_id"):
        cid = int(dataset.contiguous_id(int(category)))
        if cid == 0:
            raise WsssError(f"category id {category} is not an object category of {dataset}")
        return cid
    if not 1 <= category < len(VOC_CLASSES):
        raise WsssError(f"category id {category} outside the VOC categories 1..{len(VOC_CLASSES) - 1}")
    return int(category)


def categories_of(dataset: Any) -> list[dict[str, Any]]:
    """COCO categories for ``dataset``: its json's for a COCO reader, else :func:`voc_categories` of its class names."""
    if hasattr(dataset, "category_id"):
        names = dataset.class_names
        return [{"id": dataset.category_id(k), "name": names[k], "supercategory": "object"} for k in range(1, len(names))]
    return voc_categories(getattr(dataset, "class_names", VOC_CLASSES))


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


def coco_image_id(name: str, dataset: Any = None) -> int:
    """Stable integer image id of image ``name``.

    The COCO reader's own json id when ``dataset`` is one; a name made of digits
    and underscores → those digits (``2007_000032`` → 2007000032, IRN's rule);
    any other name → CRC-32 of the name (31 bits). Builders check uniqueness.
    """
    if dataset is not None and hasattr(dataset, "coco_image_id"):
        return int(dataset.coco_image_id(name))
    if _VOC_NAME.match(name):
        return int(name.replace("_", ""))
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class CocoBuilder:
    """Accumulates a COCO instances json (images, annotations with RLE masks, categories)."""

    def __init__(self, dataset: Any = None, description: str = "") -> None:
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
            path = self.dataset.image_path(name) if self.dataset is not None and hasattr(self.dataset, "image_path") else None
            file_name = path.name if path is not None else f"{name}.jpg"
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


def instance_results(image_id: int, instances: InstanceSet, boxes: np.ndarray | None = None,
                     dataset: Any = None) -> list[dict[str, Any]]:
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


def dataset_to_coco(dataset: Any, ids: Iterable[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Ground-truth COCO json of a split: for a COCO reader its own json; for VOC layout the
    ``SegmentationObject`` instances (void band excluded, ``iscrowd`` 0) of every id that has one."""
    if hasattr(dataset, "data") and hasattr(dataset, "coco_image_id"):
        return dataset.data
    from wsss.progress import Progress

    builder = CocoBuilder(dataset, description=f"ground truth of {getattr(dataset, 'split', '?')}")
    names = list(ids if ids is not None else dataset.ids)
    iterator = Progress(names, desc="ground-truth json", unit="images") if progress else names
    for name in iterator:
        if not dataset.has_object_mask(name):
            continue
        masks, labels = dataset.instances(name)  # (R, H, W) even when R is 0
        image_id = builder.add_image(name, *masks.shape[1:])
        builder.add_instances(image_id, InstanceSet(masks, labels, np.ones(len(labels), np.float32)), with_score=False)
    return builder.to_dict()


class RLEMasks:
    """A per-image sequence of compressed RLE masks that decodes ``(R, H, W)`` bool on access.

    Lets :func:`wsss.metrics.eval_instance_segmentation_voc` run over a whole split
    without holding every image's full-resolution masks in memory.
    """

    def __init__(self) -> None:
        self.items: list[tuple[list[dict[str, Any]], tuple[int, int]]] = []

    def append(self, masks: np.ndarray) -> None:
        masks = np.asarray(masks, dtype=bool)
        self.items.append(([encode_mask(m) for m in masks], tuple(masks.shape[1:])))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> np.ndarray:
        rles, size = self.items[index]
        if not rles:
            return np.zeros((0, *size), dtype=bool)
        return np.stack([decode_mask(r) for r in rles])


class InstanceScorer:
    """Scores instance predictions (or pseudo-instances) of a split against its ground-truth instances.

    ``add`` per image (ground truth from ``dataset.instances``: ``SegmentationObject``
    for VOC layout, the json for COCO); ``record`` gives ``metrics.json``: ``ap50``
    and ``ap75`` (VOC mask mAP_r, percent, chainercv protocol through
    :func:`wsss.metrics.eval_instance_segmentation_voc`), ``AP`` (COCO mask
    AP@[.5:.95], percent, :func:`wsss.metrics.eval_coco`), ``AP_bbox``, per-class
    VOC AP at 0.5, the full COCOeval summaries (``coco_segm``, ``coco_bbox``,
    percent), ``n_images``, ``n_instances`` and the protocol. Masks are kept as RLE.
    """

    def __init__(self, dataset: Any, protocol: dict[str, Any] | None = None) -> None:
        self.dataset = dataset
        self.protocol = {"split": getattr(dataset, "split", "?"), "gt": getattr(dataset, "object_folder", "json"),
                         "voc_iou_thresholds": [0.5, 0.75], "voc_ap": "VOC2010+ (area under the envelope)",
                         **(protocol or {})}
        self.gt = CocoBuilder(dataset, description=f"ground truth of {self.protocol['split']}")
        self.results: list[dict[str, Any]] = []
        self.pred_masks, self.gt_masks = RLEMasks(), RLEMasks()
        self.pred_labels: list[np.ndarray] = []
        self.pred_scores: list[np.ndarray] = []
        self.gt_labels: list[np.ndarray] = []

    @property
    def n_images(self) -> int:
        return len(self.gt_labels)

    def has_gt(self, name: str) -> bool:
        return bool(self.dataset.has_object_mask(name))

    def add(self, name: str, instances: InstanceSet, boxes: np.ndarray | None = None) -> None:
        """Score image ``name``'s ``instances`` (``boxes (R, 4)`` xyxy from a detector, else the masks' boxes)."""
        gt_masks, gt_labels = self.dataset.instances(name)
        if gt_masks.shape[1:] != instances.masks.shape[1:]:
            raise WsssError(f"{name}: instance masks {instances.masks.shape[1:]} differ from the ground truth "
                            f"{gt_masks.shape[1:]} (H, W)")
        image_id = self.gt.add_image(name, *gt_masks.shape[1:])
        self.gt.add_instances(image_id, InstanceSet(gt_masks, gt_labels, np.ones(len(gt_labels), np.float32)),
                              with_score=False)
        self.results.extend(instance_results(image_id, instances, boxes, self.dataset))
        self.pred_masks.append(instances.masks)
        self.pred_labels.append(np.asarray(instances.labels))
        self.pred_scores.append(np.asarray(instances.scores))
        self.gt_masks.append(gt_masks)
        self.gt_labels.append(np.asarray(gt_labels))

    def ground_truth(self) -> dict[str, Any]:
        """The ground-truth COCO json of the scored images."""
        return self.gt.to_dict()

    def record(self) -> dict[str, Any]:
        from wsss.metrics import eval_coco, eval_instance_segmentation_voc

        voc = {t: eval_instance_segmentation_voc(self.pred_masks, self.pred_labels, self.pred_scores,
                                                 self.gt_masks, self.gt_labels, iou_thresh=t)
               for t in (0.5, 0.75)}
        gt_api = coco_api(self.ground_truth())
        segm = {k: v * 100.0 for k, v in eval_coco(gt_api, self.results, "segm").items()}
        bbox = {k: v * 100.0 for k, v in eval_coco(gt_api, self.results, "bbox").items()}
        names = getattr(self.dataset, "class_names", VOC_CLASSES)
        ap50 = voc[0.5]["ap"]
        return {
            "ap50": voc[0.5]["map"] * 100.0,
            "ap75": voc[0.75]["map"] * 100.0,
            "AP": segm["AP"],
            "AP_bbox": bbox["AP"],
            "per_class_ap50": {names[k]: (float(ap50[k]) * 100.0 if k < len(ap50) else float("nan"))
                               for k in range(1, len(names))},
            "coco_segm": segm,
            "coco_bbox": bbox,
            "n_images": self.n_images,
            "n_instances": len(self.results),
            "protocol": self.protocol,
        }


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
