"""Whole-dataset validation: every problem of a dataset at once, one line each, naming the file.

Where a reader stops at the first bad file, :func:`check_dataset` reads every
image of every split asked for and collects what is wrong:

* VOC layout: missing root or split file; each image missing, unreadable or
  truncated (fully decoded); each XML malformed, with an unknown class name,
  an empty, inverted or out-of-image box, or a size unlike its image; each
  class mask unreadable, with values outside 0–20/255 or a size unlike its
  image; each object mask of the wrong size or with an instance on no object
  class; an image with neither XML nor class mask (no image labels).
* COCO json: every problem :func:`wsss.data.coco.validate_coco` finds; each
  image missing, unreadable, truncated or of a size unlike the json; each
  segmentation that does not rasterise, is empty, or whose extent disagrees
  with its box by more than :data:`MASK_BOX_TOLERANCE` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data import resolve_root
from wsss.data.classes import IGNORE_INDEX
from wsss.data.coco import COCODataset, segmentation_to_mask, validate_coco
from wsss.data.validate import check_label_values, check_same_size
from wsss.data.voc import VOCDataset, parse_voc_xml, read_image, read_image_size
from wsss.errors import WsssError
from wsss.io import load_json, load_label_png
from wsss.progress import Progress

#: pixels by which a COCO segmentation's extent may differ from its stored box (COCO's own files: within 2.5)
MASK_BOX_TOLERANCE = 3.0


@dataclass
class CheckReport:
    """What :func:`check_dataset` found: ``problems`` (one line each) and per-split counts."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"n_problems": len(self.problems), "counts": self.counts, "problems": self.problems}


def _try(problems: list[str], fn, *args) -> Any:
    try:
        return fn(*args)
    except WsssError as exc:
        problems.append(str(exc))
        return None


def check_voc_split(dataset: VOCDataset, problems: list[str], decode: bool = True, desc: str = "check_dataset") -> dict[str, int]:
    """Check every image of a VOC-layout split; append problems; return counts of what exists."""
    counts = {"images": len(dataset), "xml": 0, "class_masks": 0, "object_masks": 0}
    for image_id in Progress(dataset.ids, desc=f"{desc} {dataset.split}", unit="images"):
        path = dataset.image_path(image_id)
        size = _try(problems, read_image_size, path)
        if size is not None and decode:
            _try(problems, read_image, path)
        has_xml = dataset.has_annotation(image_id)
        if has_xml:
            counts["xml"] += 1
            parse_voc_xml(dataset.annotation_path(image_id), image_size=size, problems=problems)
        class_mask = None
        if dataset.has_class_mask(image_id):
            counts["class_masks"] += 1
            class_mask = _try(problems, _class_mask, dataset, image_id, size)
        elif not has_xml:
            problems.append(
                f"{dataset.annotation_path(image_id)}: no XML nor {dataset.class_mask_path(image_id)}: "
                f"no image labels for {image_id!r}"
            )
        if dataset.has_object_mask(image_id):
            counts["object_masks"] += 1
            _try(problems, _object_mask, dataset, image_id, size, class_mask)
    return counts


def _class_mask(dataset: VOCDataset, image_id: str, size: tuple[int, int] | None) -> np.ndarray:
    path = dataset.class_mask_path(image_id)
    mask = load_label_png(path)
    check_label_values(mask, str(path), dataset.num_classes, IGNORE_INDEX)
    if size is not None:
        check_same_size(mask.shape, size, str(path))
    return mask


def _object_mask(dataset: VOCDataset, image_id: str, size: tuple[int, int] | None, class_mask: np.ndarray | None) -> None:
    path = dataset.object_mask_path(image_id)
    objects = load_label_png(path)
    if size is not None:
        check_same_size(objects.shape, size, str(path))
    if class_mask is None or class_mask.shape != objects.shape:
        return
    for index in np.unique(objects):
        if index in (0, IGNORE_INDEX):
            continue
        under = class_mask[objects == index]
        if not ((under >= 1) & (under < dataset.num_classes)).any():
            raise WsssError(f"{path}: instance {int(index)} covers no object class in {dataset.class_mask_path(image_id)}")


def check_coco_split(
    root: Path, split: str, annotation_file: str, image_folder: str, problems: list[str], decode: bool = True,
    desc: str = "check_dataset",
) -> dict[str, int]:
    """Check a COCO json and every image and segmentation it lists; append problems; return counts."""
    json_path = root / annotation_file.format(split=split)
    if not json_path.is_file():
        problems.append(f"{json_path}: annotation file for split {split!r} not found")
        return {}
    try:
        data = load_json(json_path)
    except WsssError as exc:
        problems.append(str(exc))
        return {}
    found = validate_coco(data, str(json_path))
    if found:
        problems.extend(found)
        return {"images": len(data.get("images", [])) if isinstance(data, dict) else 0}
    dataset = COCODataset(root, split, annotation_file=annotation_file, image_folder=image_folder)
    counts = {"images": len(dataset), "annotations": len(data["annotations"]), "images_without_annotations": 0}
    for image_id in Progress(dataset.ids, desc=f"{desc} {split}", unit="images"):
        path = dataset.image_path(image_id)
        size = dataset.image_size(image_id)
        header = _try(problems, read_image_size, path)
        if header is not None:
            if header != size:
                problems.append(f"{path}: image size {header[1]}x{header[0]} differs from the json's "
                                f"{size[1]}x{size[0]} (WxH)")
            elif decode:
                _try(problems, read_image, path)
        anns = dataset._annotations[dataset.coco_image_id(image_id)]
        if not anns:
            counts["images_without_annotations"] += 1
        for ann in anns:
            if ann.get("segmentation") is None:
                continue
            where = f"{json_path}: annotation {ann.get('id')}"
            mask = _try(problems, segmentation_to_mask, ann["segmentation"], size, where)
            if mask is None:
                continue
            if not mask.any():
                problems.append(f"{where}: segmentation covers no pixel")
                continue
            if ann.get("bbox") is not None:
                ys, xs = np.nonzero(mask)
                x, y, w, h = ann["bbox"]
                extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)
                gap = np.abs(extent - np.array([x, y, x + w, y + h], dtype=float)).max()
                if gap > MASK_BOX_TOLERANCE:
                    problems.append(
                        f"{where}: segmentation extent {extent.astype(int).tolist()} (x0,y0,x1,y1) differs from "
                        f"bbox {ann['bbox']} by {gap:.1f} px"
                    )
    return counts


def check_dataset(dataset_cfg: Any, splits: list[str], annotations: str = "Annotations", decode: bool = True) -> CheckReport:
    """Check ``splits`` of the dataset a ``dataset`` config node describes; never raises for bad data.

    ``decode=False`` reads image headers only (fast, but misses truncated files).
    """
    report = CheckReport()
    kind = str(dataset_cfg.kind)
    root = resolve_root(dataset_cfg.root)
    if not root.is_dir():
        report.problems.append(f"{root}: dataset root not found")
        return report
    for split in splits:
        if kind == "voc":
            try:
                dataset = VOCDataset(
                    root, split, gt_folder=str(dataset_cfg.gt_folder), annotations=annotations,
                    object_folder=str(getattr(dataset_cfg, "object_folder", "SegmentationObject")),
                )
            except WsssError as exc:
                report.problems.append(str(exc))
                continue
            report.counts[split] = check_voc_split(dataset, report.problems, decode=decode)
        elif kind == "coco":
            report.counts[split] = check_coco_split(
                root, split, str(getattr(dataset_cfg, "annotation_file", "annotations/instances_{split}.json")),
                str(getattr(dataset_cfg, "image_folder", "{split}")), report.problems, decode=decode,
            )
        else:
            report.problems.append(f"dataset.kind: unknown dataset kind '{kind}' (expected voc or coco)")
            break
    return report
