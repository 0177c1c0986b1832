"""The interface of a dataset reader (:class:`DatasetReader`) and the extras of each layout.

Every reader (:class:`~wsss.data.voc.VOCDataset` for VOC-layout folders, minivoc included;
:class:`~wsss.data.coco.COCODataset` for a COCO instances json) implements
:class:`DatasetReader`, so stages and library code take one type and need not know which
reader they hold. What only one layout has is its own protocol:

* :class:`VOCLayoutReader`: ground truth and boxes are files in named folders
  (``gt_folder``, ``object_folder``, ``annotations``) with their paths;
* :class:`CocoJsonReader`: everything is in one json with its own category and image ids,
  which the COCO export and scoring keep.

The protocols are ``runtime_checkable``: ``isinstance(dataset, CocoJsonReader)`` tells the
layouts apart where their output differs (category ids, the ``gt`` named in a protocol record).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from wsss.data.voc import VOCAnnotation


@runtime_checkable
class DatasetReader(Protocol):
    """One split of a dataset: ids, class table, images, class/instance masks, boxes and image labels.

    Class ids are contiguous: 0 background, ``1..num_classes-1`` objects (``class_names[k]``);
    masks use 255 for void / ignored pixels. Sizes are ``(H, W)``.
    """

    #: the dataset folder
    root: Path
    #: the split's name (``train``, ``val2017`` ...)
    split: str
    #: image ids of the split, in order
    ids: list[str]
    #: class names by id, ``class_names[0]`` the background
    class_names: tuple[str, ...]
    #: ``len(class_names)``, background included
    num_classes: int

    def __len__(self) -> int: ...

    def image_path(self, image_id: str) -> Path:
        """The image file of ``image_id``."""
        ...

    def load_image(self, image_id: str) -> np.ndarray:
        """The image as ``(H, W, 3)`` uint8 RGB."""
        ...

    def image_size(self, image_id: str) -> tuple[int, int]:
        """``(H, W)`` without decoding the pixels."""
        ...

    def has_class_mask(self, image_id: str) -> bool:
        """Whether ``image_id`` has a semantic ground-truth mask."""
        ...

    def load_class_mask(self, image_id: str) -> np.ndarray:
        """Semantic mask ``(H, W)`` uint8: 0 background, ``1..num_classes-1``, 255 void."""
        ...

    def has_object_mask(self, image_id: str) -> bool:
        """Whether ``image_id`` has ground-truth instances."""
        ...

    def load_object_mask(self, image_id: str) -> np.ndarray:
        """Instance index map ``(H, W)`` uint8: 0 background, ``k`` the k-th instance, 255 void."""
        ...

    def instances(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks ``(R, H, W)`` bool and their class ids ``(R,)`` int64."""
        ...

    def has_annotation(self, image_id: str) -> bool:
        """Whether ``image_id`` has boxes."""
        ...

    def load_annotation(self, image_id: str) -> VOCAnnotation:
        """Size and objects (class id, 0-based inclusive box, difficult/truncated flags)."""
        ...

    def image_labels(self, image_id: str) -> np.ndarray:
        """Multi-hot ``(num_classes - 1,)`` float32 over the object classes (index ``k - 1`` for class ``k``)."""
        ...


@runtime_checkable
class VOCLayoutReader(DatasetReader, Protocol):
    """A reader of a VOC-layout folder: masks and annotations are one file per image in named folders."""

    #: folder of the semantic masks (``SegmentationClass``, ``SegmentationClassAug``)
    gt_folder: str
    #: folder of the instance masks (``SegmentationObject``)
    object_folder: str
    #: folder of the XML annotations
    annotations: str

    def class_mask_path(self, image_id: str) -> Path: ...

    def object_mask_path(self, image_id: str) -> Path: ...

    def annotation_path(self, image_id: str) -> Path: ...


@runtime_checkable
class CocoJsonReader(DatasetReader, Protocol):
    """A reader of a COCO instances json: contiguous class ids map to the json's category ids and images
    have the json's ids."""

    #: the json file
    annotation_file: Path
    #: the json itself
    data: dict[str, Any]
    #: ``category_ids[k - 1]``: the json category id of class ``k``
    category_ids: list[int]

    def category_id(self, class_id: int) -> int:
        """Json category id of class ``class_id``."""
        ...

    def contiguous_id(self, category_id: int) -> int:
        """Class id of json category ``category_id`` (0 for a non-object category)."""
        ...

    def coco_image_id(self, image_id: str) -> Any:
        """The json's id of image ``image_id``."""
        ...

    def coco_api(self) -> Any:
        """A ``pycocotools.coco.COCO`` over the json."""
        ...
