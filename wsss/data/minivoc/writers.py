"""minivoc's file writers: VOC XML, ScribbleSup XML, point files, fixed-settings JPEG, label PNGs, ImageSets lists."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from wsss.data.classes import NUM_FOREGROUND, VOC_CLASSES
from wsss.data.minivoc.params import MinivocParams
from wsss.data.minivoc.sample import Sample
from wsss.io import atomic_path, save_label_png

FOLDER_NAME = "minivoc"


def voc_xml(image_id: str, sample: Sample) -> str:
    """The VOC 2012 ``Annotations/<id>.xml`` text of a sample."""
    h, w = sample.labels.shape
    lines = [
        "<annotation>",
        f"\t<folder>{FOLDER_NAME}</folder>",
        f"\t<filename>{escape(image_id)}.jpg</filename>",
        "\t<source>",
        "\t\t<database>minivoc (synthetic, wsss)</database>",
        "\t\t<annotation>PASCAL VOC2012 layout</annotation>",
        "\t\t<image>generated</image>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>1</segmented>",
    ]
    for obj in sample.objects:
        x0, y0, x1, y1 = obj.box
        lines += [
            "\t<object>",
            f"\t\t<name>{obj.name}</name>",
            f"\t\t<pose>{obj.pose}</pose>",
            f"\t\t<truncated>{int(obj.truncated)}</truncated>",
            "\t\t<difficult>0</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{x0}</xmin>",
            f"\t\t\t<ymin>{y0}</ymin>",
            f"\t\t\t<xmax>{x1}</xmax>",
            f"\t\t\t<ymax>{y1}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def scribble_xml(image_id: str, sample: Sample) -> str:
    """The ScribbleSup (PASCAL) ``<id>.xml`` text: one ``<polygon>`` polyline per object, then background ones."""
    h, w = sample.labels.shape
    lines = [
        "<annotation>",
        f"\t<folder>{FOLDER_NAME}</folder>",
        f"\t<filename>{escape(image_id)}.jpg</filename>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
    ]
    strokes = [(obj.name, obj.scribble) for obj in sample.objects]
    strokes += [("background", s) for s in sample.background_scribbles]
    for tag, points in strokes:
        lines += ["\t<polygon>", f"\t\t<tag>{tag}</tag>"]
        for x, y in points:
            lines += ["\t\t<point>", f"\t\t\t<X>{x}</X>", f"\t\t\t<Y>{y}</Y>", "\t\t</point>"]
        lines.append("\t</polygon>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def points_txt(sample: Sample) -> str:
    """BESTIE/P2Seg point file: ``x y class_index confidence`` per instance (class_index 0-based over 20)."""
    return "".join(f"{o.point[0]} {o.point[1]} {o.class_id - 1} 1.0\n" for o in sample.objects)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Write an RGB JPEG with fixed settings (no metadata, 4:2:0, baseline) atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="JPEG", quality=quality, subsampling=2,
                                                optimize=False, progressive=False)


def write_sample(root: Path, image_id: str, sample: Sample, params: MinivocParams) -> None:
    """Write every file of one sample under ``root`` (VOC layout)."""
    _write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", sample.image, params.jpeg_quality)
    save_label_png(root / "SegmentationClass" / f"{image_id}.png", sample.labels)
    save_label_png(root / "SegmentationObject" / f"{image_id}.png", sample.instances)
    _write_text(root / "Annotations" / f"{image_id}.xml", voc_xml(image_id, sample))
    _write_text(root / "Points" / f"{image_id}.txt", points_txt(sample))
    _write_text(root / "Scribbles" / f"{image_id}.xml", scribble_xml(image_id, sample))


def _write_lists(root: Path, splits: dict[str, list[str]], present: dict[str, set[int]]) -> None:
    """ImageSets/Segmentation and ImageSets/Main lists (Main also per class, ``1`` present / ``-1`` absent)."""
    lists = dict(splits)
    lists["trainval"] = sorted(splits["train"] + splits["val"])
    for name, ids in lists.items():
        text = "".join(f"{i}\n" for i in ids)
        _write_text(root / "ImageSets" / "Segmentation" / f"{name}.txt", text)
        _write_text(root / "ImageSets" / "Main" / f"{name}.txt", text)
        for cid in range(1, NUM_FOREGROUND + 1):
            rows = "".join(f"{i} {1 if cid in present[i] else -1:2d}\n" for i in ids)
            _write_text(root / "ImageSets" / "Main" / f"{VOC_CLASSES[cid]}_{name}.txt", rows)
