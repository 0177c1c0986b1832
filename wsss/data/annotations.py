"""Readers of the weak annotations: points, scribbles and boxes, each validated against its image.

Formats (one file per image, under ``<dataset root>/<supervision.annotations>/``):

* **points** ``Points/<id>.txt`` (BESTIE/P2Seg ``Center_points``): one line per point,
  ``x y class_index confidence`` with ``x, y`` 0-based pixel coordinates (integers or
  decimals, rounded to the nearest pixel), ``class_index`` 0-based over the object classes
  (0..19 on VOC: class id = ``class_index + 1``) and ``confidence`` in [0, 1] (1.0 for
  annotated points). Extension: ``class_index = -1`` marks a *background* point (class id 0);
  BESTIE never writes it, the real-data benchmark's derived points use it. Blank lines are skipped.
* **scribbles** ``Scribbles/<id>.xml`` (ScribbleSup's PASCAL format)::

      <annotation> [<size><width/><height/></size>]
        <polygon><tag>dog</tag><point><X>12</X><Y>40</Y></point> ... </polygon>
        <polygon><tag>background</tag> ... </polygon>
      </annotation>

  one polyline per ``<polygon>``, vertices in 0-based pixel coordinates (decimals rounded),
  ``tag`` a class name (``background`` = class 0). ``<size>``, when present, must match the image.
* **boxes**: the dataset's own boxes: VOC XML ``Annotations/<id>.xml`` through
  :meth:`VOCDataset.load_annotation` (validated there), or a COCO json's ``bbox`` through
  :meth:`COCODataset.load_annotation`. Boxes are 0-based inclusive ``(x0, y0, x1, y1)``.

Every problem (missing or malformed file, unknown class, a point/vertex/box outside the image)
is a one-line :class:`WsssError` naming the file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from wsss.data.classes import VOC_CLASSES, class_id
from wsss.data.reader import CocoJsonReader, DatasetReader, VOCLayoutReader
from wsss.data.validate import check_box, check_point_in_image
from wsss.errors import WsssError
from wsss.io import load_text

SUPERVISIONS_WITH_FILES = ("point", "scribble", "box")


@dataclass(frozen=True)
class PointAnnotation:
    """One clicked point: pixel ``(x, y)`` (0-based), ``class_id`` (0 background, 1..K) and ``confidence``."""

    x: int
    y: int
    class_id: int
    confidence: float = 1.0


@dataclass(frozen=True)
class ScribbleAnnotation:
    """One scribble: a polyline through ``vertices`` (``(x, y)`` 0-based pixels) of class ``class_id`` (0 = background)."""

    class_id: int
    vertices: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BoxAnnotation:
    """One box: 0-based inclusive ``(x0, y0, x1, y1)`` of class ``class_id`` (1..K)."""

    class_id: int
    box: tuple[int, int, int, int]
    difficult: bool = False

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return (x1 - x0 + 1) * (y1 - y0 + 1)


@dataclass(frozen=True)
class WeakAnnotation:
    """The weak label of one image of one supervision kind (only the matching list is filled)."""

    kind: str
    size: tuple[int, int]
    points: list[PointAnnotation] = field(default_factory=list)
    scribbles: list[ScribbleAnnotation] = field(default_factory=list)
    boxes: list[BoxAnnotation] = field(default_factory=list)

    def classes(self) -> np.ndarray:
        """Sorted object class ids (1..K) the annotation names: the classes present in the image. ``(K',)`` int64."""
        ids = [p.class_id for p in self.points] + [s.class_id for s in self.scribbles] + [b.class_id for b in self.boxes]
        return np.array(sorted({i for i in ids if i > 0}), dtype=np.int64)


def _finite_number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------ points
def read_points(
    path: str | Path, image_size: tuple[int, int], num_foreground: int = len(VOC_CLASSES) - 1,
) -> list[PointAnnotation]:
    """Parse a point file (module docstring) for an image of ``image_size = (H, W)``.

    Returns the points in file order. Errors name the file and line: a missing
    file, a line without exactly 4 fields, a non-numeric field, a non-integer or
    unknown ``class_index`` (outside ``-1..num_foreground-1``), a confidence
    outside [0, 1], or a point outside the image.
    """
    path = Path(path)
    text = load_text(path, "point file")
    points = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}: line {number}"
        if len(fields) != 4:
            raise WsssError(f"{where}: malformed point line {line.strip()!r} (expected 'x y class_index confidence')")
        x, y, index, confidence = (_finite_number(f) for f in fields)
        if x is None or y is None or index is None or confidence is None:
            raise WsssError(f"{where}: malformed point line {line.strip()!r} (fields must be finite numbers)")
        if index != int(index) or not -1 <= int(index) < num_foreground:
            raise WsssError(f"{where}: unknown class_index {fields[2]!r} (expected 0..{num_foreground - 1}, or -1 for background)")
        if not 0.0 <= confidence <= 1.0:
            raise WsssError(f"{where}: confidence {fields[3]!r} outside [0, 1]")
        check_point_in_image(x, y, image_size, where)
        points.append(PointAnnotation(int(round(x)), int(round(y)), int(index) + 1, float(confidence)))
    return points


# --------------------------------------------------------------- scribbles
def read_scribbles(
    path: str | Path, image_size: tuple[int, int], class_names: Sequence[str] = VOC_CLASSES,
) -> list[ScribbleAnnotation]:
    """Parse a ScribbleSup XML file (module docstring) for an image of ``image_size = (H, W)``.

    Returns the polylines in file order. Errors name the file: missing or
    malformed XML, a ``<polygon>`` without ``<tag>`` or without points, a
    ``<point>`` without numeric ``<X>``/``<Y>``, an unknown class tag, a vertex
    outside the image, or a ``<size>`` that differs from the image's.
    """
    path = Path(path)
    where = str(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise WsssError(f"{where}: scribble file not found") from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise WsssError(f"{where}: malformed XML (line {line}, column {column})") from None
    except OSError as exc:
        raise WsssError(f"{where}: unreadable scribble file ({exc})") from None
    if root.tag != "annotation":
        raise WsssError(f"{where}: malformed scribble XML: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is not None:
        width = _finite_number(size.findtext("width"))
        height = _finite_number(size.findtext("height"))
        if width is None or height is None:
            raise WsssError(f"{where}: malformed scribble XML: <size> needs numeric <width> and <height>")
        if (int(height), int(width)) != tuple(image_size):
            raise WsssError(f"{where}: <size> {int(width)}x{int(height)} differs from the image size "
                            f"{image_size[1]}x{image_size[0]} (WxH)")
    names = tuple(class_names)
    scribbles = []
    for number, polygon in enumerate(root.findall("polygon"), start=1):
        tag = (polygon.findtext("tag") or "").strip()
        if not tag:
            raise WsssError(f"{where}: malformed scribble XML: polygon {number} has no <tag>")
        cid = class_id(tag, where=f"{where}: polygon {number}", names=names)
        vertices = []
        for k, point in enumerate(polygon.findall("point"), start=1):
            x, y = _finite_number(point.findtext("X")), _finite_number(point.findtext("Y"))
            if x is None or y is None:
                raise WsssError(f"{where}: malformed scribble XML: polygon {number} point {k} needs numeric <X> and <Y>")
            check_point_in_image(x, y, image_size, where, what=f"polygon {number} ({tag}) point {k}")
            vertices.append((int(round(x)), int(round(y))))
        if not vertices:
            raise WsssError(f"{where}: malformed scribble XML: polygon {number} ({tag}) has no <point>")
        scribbles.append(ScribbleAnnotation(cid, tuple(vertices)))
    return scribbles


# ------------------------------------------------------------------- boxes
def read_boxes(dataset: DatasetReader, image_id: str) -> list[BoxAnnotation]:
    """Boxes of one image from the dataset's own annotation (VOC XML or COCO json), validated against the image.

    ``dataset`` is a :class:`~wsss.data.voc.VOCDataset` or :class:`~wsss.data.coco.COCODataset`
    (its :meth:`load_annotation` already validates names, boxes and size); each box is
    checked once more against the image size so a COCO box can never leave the image.
    """
    annotation = dataset.load_annotation(image_id)
    size = (annotation.height, annotation.width)
    if isinstance(dataset, VOCLayoutReader):
        where = str(dataset.annotation_path(image_id))
    elif isinstance(dataset, CocoJsonReader):
        where = str(dataset.annotation_file)
    else:
        where = image_id
    boxes = []
    for number, obj in enumerate(annotation.objects, start=1):
        check_box(obj.box, size, where, what=f"object {number} ({obj.name}) box (0-based)")
        boxes.append(BoxAnnotation(int(obj.class_id), tuple(int(v) for v in obj.box), bool(obj.difficult)))
    return boxes


# ------------------------------------------------------------------ facade
def annotation_path(dataset: DatasetReader, folder: str, image_id: str, kind: str) -> Path:
    """``<root>/<folder>/<id>.txt`` (points) or ``.xml`` (scribbles, VOC boxes)."""
    suffix = ".txt" if kind == "point" else ".xml"
    return Path(dataset.root) / folder / f"{image_id}{suffix}"


def load_weak_annotation(dataset: DatasetReader, kind: str, folder: str, image_id: str) -> WeakAnnotation:
    """The ``kind`` (``point``, ``scribble`` or ``box``) annotation of ``image_id``, read from ``<root>/<folder>/``.

    Boxes come from the dataset reader itself (``folder`` is its annotation folder, already set
    when the dataset was opened). The image size is read from the image header.
    """
    size = dataset.image_size(image_id)
    if kind == "point":
        points = read_points(annotation_path(dataset, folder, image_id, kind), size, dataset.num_classes - 1)
        return WeakAnnotation(kind, size, points=points)
    if kind == "scribble":
        scribbles = read_scribbles(annotation_path(dataset, folder, image_id, kind), size, dataset.class_names)
        return WeakAnnotation(kind, size, scribbles=scribbles)
    if kind == "box":
        return WeakAnnotation(kind, size, boxes=read_boxes(dataset, image_id))
    raise WsssError(f"supervision.name: '{kind}' has no annotation files (expected one of {', '.join(SUPERVISIONS_WITH_FILES)})")
