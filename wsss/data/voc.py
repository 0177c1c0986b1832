"""Reader for a PASCAL VOC 2012 layout folder (VOC itself, SBD's augmentation, ``minivoc``, any copy).

Layout under ``root`` (VOCdevkit/VOC2012 or a folder shaped like it)::

    JPEGImages/<id>.jpg
    Annotations/<id>.xml                  boxes, class names, difficult/truncated flags
    SegmentationClass/<id>.png            class mask, palette PNG: 0 bg, 1..20, 255 void
    SegmentationClassAug/<id>.png         SBD's class masks (greyscale PNG, same values), optional
    SegmentationObject/<id>.png           instance mask: 0 bg, k = k-th object, 255 void
    ImageSets/Segmentation/<split>.txt    one id per line (train, val, ...)
    ImageSets/SegmentationAug/train_aug.txt  (or ImageSets/Segmentation/train_aug.txt)

Every read validates what it reads; bad input raises :class:`WsssError` with
one line naming the file and the problem.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from wsss.data.classes import IGNORE_INDEX, NUM_CLASSES, NUM_FOREGROUND, VOC_CLASSES, class_id
from wsss.data.validate import check_box, check_label_values, check_same_size
from wsss.errors import WsssError
from wsss.io import load_label_png, load_text

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>`` of a VOC XML annotation.

    ``box`` is ``(x0, y0, x1, y1)`` in 0-based inclusive pixel coordinates: the
    XML's 1-based ``xmin, ymin, xmax, ymax`` minus 1 (fractional XML values,
    which a few VOC files have, are rounded to the nearest integer first).
    """

    class_id: int  # 1..20
    name: str
    box: tuple[int, int, int, int]
    difficult: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class VOCAnnotation:
    """A parsed ``Annotations/<id>.xml``: image size and its objects in file order (parts are skipped)."""

    width: int
    height: int
    objects: list[VOCObject] = field(default_factory=list)


def read_image(path: Path) -> np.ndarray:
    """Decode an image file fully as ``(H, W, 3)`` uint8 RGB; a missing, unreadable or truncated file is a WsssError."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise WsssError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as exc:
        raise WsssError(f"{path}: image too large to decode ({exc.args[0].split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WsssError(f"{path}: unreadable or truncated image ({exc})") from None


def read_image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image from its header only (the pixels are not decoded)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise WsssError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as exc:
        raise WsssError(f"{path}: image too large to decode ({exc.args[0].split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WsssError(f"{path}: unreadable or truncated image ({exc})") from None
    return height, width


def read_split_file(path: Path) -> list[str]:
    """Image ids listed in a split file.

    Lines are bare ids (``2007_000032``) or PSA-style pairs
    (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``),
    whose first token's file stem is the id. Blank lines are skipped; a
    duplicate id or an empty list is an error.
    """
    text = load_text(path, "split file")
    ids: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        token = tokens[0]
        image_id = Path(token).stem if ("/" in token or "." in token) else token
        if image_id in seen:
            raise WsssError(f"{path}: line {number}: duplicate id {image_id!r}")
        seen.add(image_id)
        ids.append(image_id)
    if not ids:
        raise WsssError(f"{path}: split file lists no image ids")
    return ids


class VOCDataset:
    """One split of a VOC-layout folder.

    Args:
        root: the folder holding ``JPEGImages/``, ``ImageSets/`` … (``VOCdevkit/VOC2012``).
        split: ``train``, ``val``, ``train_aug`` … read from ``ImageSets/Segmentation/<split>.txt``
            (``train_aug`` also from ``ImageSets/SegmentationAug/``); a path to a ``.txt``
            file (absolute or relative to ``root``) is read as the list itself.
        gt_folder: folder of semantic class masks (``SegmentationClass`` or ``SegmentationClassAug``).
        annotations: folder of XML annotations.
        object_folder: folder of instance masks.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        gt_folder: str = "SegmentationClass",
        annotations: str = "Annotations",
        object_folder: str = "SegmentationObject",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise WsssError(f"{self.root}: dataset root not found")
        self.split = split
        self.gt_folder = gt_folder
        self.annotations = annotations
        self.object_folder = object_folder
        #: class names by id (0 background .. 20) and their count, as :class:`~wsss.data.coco.COCODataset` has them
        self.class_names: tuple[str, ...] = VOC_CLASSES
        self.num_classes: int = NUM_CLASSES
        self.split_file = self._find_split_file(split)
        self.ids: list[str] = read_split_file(self.split_file)

    def _find_split_file(self, split: str) -> Path:
        if split.endswith(".txt"):
            path = Path(split)
            return path if path.is_absolute() else self.root / path
        candidates = [self.root / "ImageSets" / "Segmentation" / f"{split}.txt"]
        if split == "train_aug":
            candidates.insert(0, self.root / "ImageSets" / "SegmentationAug" / "train_aug.txt")
        for path in candidates:
            if path.is_file():
                return path
        tried = " or ".join(str(p) for p in candidates)
        raise WsssError(f"{tried}: split {split!r} not found")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"VOCDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self.ids)}, gt_folder={self.gt_folder!r})"

    # ----------------------------------------------------------------- paths
    def image_path(self, image_id: str) -> Path:
        """``JPEGImages/<id>.jpg`` (or ``.jpeg``/``.png`` when only such a file exists)."""
        path = self.root / "JPEGImages" / f"{image_id}.jpg"
        if not path.exists():
            for suffix in _IMAGE_SUFFIXES[1:]:
                other = path.with_suffix(suffix)
                if other.exists():
                    return other
        return path

    def class_mask_path(self, image_id: str) -> Path:
        """``<gt_folder>/<id>.png``."""
        return self.root / self.gt_folder / f"{image_id}.png"

    def object_mask_path(self, image_id: str) -> Path:
        """``<object_folder>/<id>.png``."""
        return self.root / self.object_folder / f"{image_id}.png"

    def annotation_path(self, image_id: str) -> Path:
        """``<annotations>/<id>.xml``."""
        return self.root / self.annotations / f"{image_id}.xml"

    # ---------------------------------------------------------------- images
    def load_image(self, image_id: str) -> np.ndarray:
        """The image as ``(H, W, 3)`` uint8 RGB."""
        return read_image(self.image_path(image_id))

    def image_size(self, image_id: str) -> tuple[int, int]:
        """``(H, W)`` from the image header (cheap: pixels are not decoded)."""
        return read_image_size(self.image_path(image_id))

    # ----------------------------------------------------------------- masks
    def has_class_mask(self, image_id: str) -> bool:
        """Whether ``<gt_folder>/<id>.png`` exists."""
        return self.class_mask_path(image_id).is_file()

    def has_object_mask(self, image_id: str) -> bool:
        """Whether ``<object_folder>/<id>.png`` exists."""
        return self.object_mask_path(image_id).is_file()

    def has_annotation(self, image_id: str) -> bool:
        """Whether ``<annotations>/<id>.xml`` exists."""
        return self.annotation_path(image_id).is_file()

    def load_class_mask(self, image_id: str) -> np.ndarray:
        """Semantic mask ``(H, W)`` uint8 with values in ``{0..20, 255}``, validated against its image's size."""
        path = self.class_mask_path(image_id)
        mask = load_label_png(path)
        check_label_values(mask, str(path), NUM_CLASSES, IGNORE_INDEX)
        check_same_size(mask.shape, self.image_size(image_id), str(path))
        return mask

    def load_object_mask(self, image_id: str) -> np.ndarray:
        """Instance mask ``(H, W)`` uint8: 0 background, ``k`` the k-th object, 255 void."""
        path = self.object_mask_path(image_id)
        mask = load_label_png(path)
        check_same_size(mask.shape, self.image_size(image_id), str(path))
        return mask

    def instances(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks ``(R, H, W)`` bool and labels ``(R,)`` int64 in 1..20, ordered by instance index.

        As chainercv's ``VOCInstanceSegmentationDataset``: instance ``k`` of
        ``SegmentationObject`` is the mask ``object == k`` (so the 255 void band
        is in no mask); its class is read from the class mask under it (the most
        frequent id in 1..20 there; an instance with none is an error).
        """
        objects = self.load_object_mask(image_id)
        classes = self.load_class_mask(image_id)
        check_same_size(objects.shape, classes.shape, str(self.object_mask_path(image_id)), "object mask")
        indices = np.unique(objects)
        indices = indices[(indices != 0) & (indices != IGNORE_INDEX)]
        masks = np.zeros((len(indices), *objects.shape), dtype=bool)
        labels = np.zeros(len(indices), dtype=np.int64)
        for r, index in enumerate(indices):
            mask = objects == index
            counts = np.bincount(classes[mask], minlength=256)[1:NUM_CLASSES]
            if counts.sum() == 0:
                raise WsssError(
                    f"{self.object_mask_path(image_id)}: instance {int(index)} covers no object class in "
                    f"{self.class_mask_path(image_id)}"
                )
            masks[r] = mask
            labels[r] = int(np.argmax(counts)) + 1
        return masks, labels

    # ----------------------------------------------------------- annotations
    def load_annotation(self, image_id: str) -> VOCAnnotation:
        """Parse ``Annotations/<id>.xml`` (see :func:`parse_voc_xml`); size checked against the image when it exists."""
        path = self.annotation_path(image_id)
        image_path = self.image_path(image_id)
        size = read_image_size(image_path) if image_path.exists() else None
        annotation = parse_voc_xml(path, image_size=size)
        assert annotation is not None  # parse_voc_xml raises rather than returning None here
        return annotation

    def image_labels(self, image_id: str) -> np.ndarray:
        """Multi-hot ``(20,)`` float32 over the object classes (index ``c - 1`` for class ``c``).

        Order of preference: the XML annotation when it exists (every object,
        difficult ones included, as PSA's and IRN's ``cls_labels.npy`` were
        made), else the class mask (ids 1..20 present; 255 ignored). An image
        with neither is an error.
        """
        labels = np.zeros(NUM_FOREGROUND, dtype=np.float32)
        if self.has_annotation(image_id):
            for obj in self.load_annotation(image_id).objects:
                labels[obj.class_id - 1] = 1.0
            return labels
        if self.has_class_mask(image_id):
            present = np.unique(self.load_class_mask(image_id))
            present = present[(present >= 1) & (present < NUM_CLASSES)]
            labels[present - 1] = 1.0
            return labels
        raise WsssError(
            f"{self.annotation_path(image_id)}: no annotation (nor {self.class_mask_path(image_id)}) "
            f"to derive the image labels of {image_id!r} from"
        )


def _xml_text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _xml_flag(element: ET.Element, tag: str, where: str) -> bool:
    text = _xml_text(element, tag)
    if text is None or text == "":
        return False
    try:
        return bool(int(float(text)))
    except (ValueError, OverflowError):  # not a number, nan, inf
        raise WsssError(f"{where}: malformed XML: <{tag}> {text!r} is not 0 or 1") from None


def _parse_object(element: ET.Element, number: int, size: tuple[int, int], where: str) -> VOCObject:
    """One ``<object>``: class, 0-based box checked against ``size = (H, W)``, flags."""
    name = _xml_text(element, "name")
    if not name:
        raise WsssError(f"{where}: malformed XML: object {number} has no <name>")
    cid = class_id(name, where=f"{where}: object {number}")
    if cid == 0:
        raise WsssError(f"{where}: object {number}: 'background' is not an object class")
    bndbox = element.find("bndbox")
    if bndbox is None:
        raise WsssError(f"{where}: malformed XML: object {number} ({name}) has no <bndbox>")
    coords = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = _xml_text(bndbox, tag)
        try:
            value = float(text) if text is not None else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise WsssError(f"{where}: malformed XML: object {number} ({name}) <{tag}> is {text!r}, not a number")
        coords.append(int(round(value)) - 1)
    box = (coords[0], coords[1], coords[2], coords[3])
    check_box(box, size, where, what=f"object {number} ({name}) box (0-based)")
    return VOCObject(
        class_id=cid,
        name=VOC_CLASSES[cid],
        box=box,
        difficult=_xml_flag(element, "difficult", where),
        truncated=_xml_flag(element, "truncated", where),
    )


def parse_voc_xml(
    path: str | Path, image_size: tuple[int, int] | None = None, problems: list[str] | None = None
) -> VOCAnnotation | None:
    """Parse a VOC XML annotation into a :class:`VOCAnnotation`.

    Only direct ``<object>`` children of the root are objects; their ``<part>``
    boxes (head, hand …) are skipped. Each object needs ``<name>`` (a VOC
    class; labelme's "potted plant"/"tv/monitor" spellings are accepted) and
    ``<bndbox>``; ``<difficult>``/``<truncated>`` default to 0. When
    ``image_size = (H, W)`` is given, ``<size>`` must match it.

    Errors (one line, naming the file): missing file, malformed XML, missing or
    non-numeric size or coordinates, unknown class name, empty/inverted box or
    box outside the image. The first raises :class:`WsssError`, unless
    ``problems`` is a list: then every problem is appended to it, bad objects
    are left out, and ``None`` is returned when the file cannot be read at all.
    """
    path = Path(path)
    where = str(path)

    def fail(message: str) -> None:
        if problems is None:
            raise WsssError(message)
        problems.append(message)

    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        fail(f"{where}: annotation file not found")
        return None
    except ET.ParseError as exc:
        line, column = exc.position
        fail(f"{where}: malformed XML (line {line}, column {column})")
        return None
    except OSError as exc:
        fail(f"{where}: unreadable annotation ({exc})")
        return None
    if root.tag != "annotation":
        fail(f"{where}: malformed XML: root element is <{root.tag}>, expected <annotation>")
        return None

    size = root.find("size")
    dims = []
    for tag in ("width", "height"):
        text = _xml_text(size, tag) if size is not None else None
        try:
            value = int(float(text)) if text is not None else None
        except (ValueError, OverflowError):  # not a number, nan, inf
            value = None
        if value is None or value <= 0:
            fail(f"{where}: malformed XML: missing or invalid <size><{tag}> ({text!r})")
            return None
        dims.append(value)
    width, height = dims
    if image_size is not None and (height, width) != tuple(image_size):
        fail(f"{where}: <size> {width}x{height} differs from the image size {image_size[1]}x{image_size[0]} (WxH)")

    objects = []
    for number, element in enumerate(root.findall("object"), start=1):
        try:
            objects.append(_parse_object(element, number, (height, width), where))
        except WsssError as exc:
            fail(str(exc))
    return VOCAnnotation(width=width, height=height, objects=objects)
