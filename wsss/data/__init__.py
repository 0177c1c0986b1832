"""Dataset readers. :func:`open_dataset` picks the reader from the ``dataset`` config node.

Both readers implement one interface, :class:`wsss.data.reader.DatasetReader` (``root``, ``split``,
``ids``, ``len()``, ``class_names``, ``num_classes``, ``image_path``, ``load_image``, ``image_size``,
``has_class_mask``, ``load_class_mask``, ``has_object_mask``, ``load_object_mask``, ``instances``,
``has_annotation``, ``load_annotation``, ``image_labels``), so stages need not know which one they
hold; what only one layout has is in :class:`~wsss.data.reader.VOCLayoutReader` and
:class:`~wsss.data.reader.CocoJsonReader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsss.errors import WsssError

if TYPE_CHECKING:
    from wsss.data.coco import COCODataset
    from wsss.data.voc import VOCDataset


def resolve_root(root: str | Path) -> Path:
    """A dataset root as given, or relative to the repo root when relative (as ``paths`` are)."""
    from wsss.config import REPO_ROOT

    path = Path(str(root)).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def open_dataset(dataset_cfg: Any, split: str, annotations: str = "Annotations") -> "VOCDataset | COCODataset":
    """Reader for ``split`` of the dataset described by a ``dataset`` config node (see ``DatasetConfig``).

    ``kind: voc`` → :class:`wsss.data.voc.VOCDataset` (VOC 2012, SBD's
    ``train_aug``/``SegmentationClassAug``, minivoc, any VOC-layout folder);
    ``kind: coco`` → :class:`wsss.data.coco.COCODataset` (2014/2017 instances json), every image the json
    lists checked to exist (:meth:`~wsss.data.coco.COCODataset.check_image_files`).
    ``annotations`` is the VOC XML folder (a supervision's ``annotations``).
    """
    kind = str(dataset_cfg.kind)
    root = resolve_root(dataset_cfg.root)
    if kind == "voc":
        from wsss.data.voc import VOCDataset

        return VOCDataset(
            root,
            split,
            gt_folder=str(dataset_cfg.gt_folder),
            annotations=annotations,
            object_folder=str(getattr(dataset_cfg, "object_folder", "SegmentationObject")),
        )
    if kind == "coco":
        from wsss.data.coco import COCODataset

        dataset = COCODataset(
            root,
            split,
            annotation_file=str(getattr(dataset_cfg, "annotation_file", "annotations/instances_{split}.json")),
            image_folder=str(getattr(dataset_cfg, "image_folder", "{split}")),
        )
        dataset.check_image_files()
        return dataset
    raise WsssError(f"dataset.kind: unknown dataset kind '{kind}' (expected voc or coco)")
