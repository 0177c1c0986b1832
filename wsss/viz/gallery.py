"""The inspection gallery: a static HTML page over every label stage of a run, and the report figures.

:func:`build_gallery` writes into ``out_dir``::

    index.html            the page (metrics table and legend inline; opens from file://, no server, no CDN)
    gallery.css, gallery.js
    data.js               ``window.WSSS_GALLERY = {...};`` — every image's per-stage IoU, classes, thumbnails
    thumbs/photo/<id>.jpg         the photo, longest side ``thumb_size``
    thumbs/superpixels/<id>.jpg   the photo thumbnail with its superpixel boundaries (``superpixel_dir`` given)
    thumbs/gt/<id>.png            ground truth (VOC palette, nearest-neighbour shrunk)
    thumbs/heat/<id>_<c>.jpg      CAM of class c over the greyed photo
    thumbs/labels/<stage>/<id>.png   each label stage
    report/metrics.html           the per-stage metrics table, standalone (Snakemake report)
    report/sample_<k>_<id>.png    a handful of images, worst to best final IoU, every stage side by side
    curves/<label>.png    the training curves of the run's training stages (``curves``), copied from their folders

The page renders one page of ``page_size`` images at a time from ``data.js``
(sort by any stage's per-image IoU or by its change over the previous stage,
filter by IoU range, class and id; state kept in the URL's ``#``), and every
``<img>`` is ``loading="lazy"``, so splits of thousands of images stay usable.
``index.html`` is written last: a killed build leaves no page that looks complete.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX, atomic_path, load_json, load_label_png, load_npy
from wsss.metrics import SegmentationScorer
from wsss.progress import Progress
from wsss.viz.render import (Tile, composite, fit_size, heat_overlay, legend_entries, overlay, resize_image,
                             resize_score, save_jpeg, save_label_thumbnail, save_png, superpixel_overlay)
from wsss.params import GallerySettings
from wsss.viz.curves import copy_curves, curves_html
from wsss.viz.stages import LabelStage, metrics_summary, stage_title

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: files copied from :data:`ASSETS_DIR` into every gallery (index.html is rendered from its template)
ASSET_FILES: tuple[str, ...] = ("gallery.css", "gallery.js")
DATA_PREFIX = "window.WSSS_GALLERY = "


def asset_files() -> list[str]:
    """Paths of the page's static assets (HTML template, CSS, JS), for Snakemake ``input:``."""
    return sorted(str(p) for p in ASSETS_DIR.iterdir() if p.is_file() and not p.name.startswith("."))


def read_gallery_data(path: str | Path) -> dict[str, Any]:
    """Parse a gallery's ``data.js`` back into its record (for tests and tools)."""
    text = Path(path).read_text()
    if not text.startswith(DATA_PREFIX):
        raise WsssError(f"{path}: not a gallery data file (expected it to start with '{DATA_PREFIX.strip()}')")
    return json.loads(text[len(DATA_PREFIX):].rstrip().rstrip(";"))


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()


def _num(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 2)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


class _ImageRenderer:
    """Per-image work: thumbnails of every column and the image's record for ``data.js``."""

    def __init__(self, dataset, stages: Sequence[LabelStage], cam_dir: Path | None, keys: dict[str, list[int]],
                 out_dir: Path, settings: GallerySettings, superpixel_dir: Path | None = None) -> None:
        self.dataset = dataset
        self.superpixel_dir = superpixel_dir
        self.stages = stages
        self.cam_dir = cam_dir
        self.keys = keys
        self.out = out_dir
        self.settings = settings
        self.num_classes = int(getattr(dataset, "num_classes", 21))
        self.class_names = tuple(getattr(dataset, "class_names", ()))

    def gt(self, image_id: str) -> np.ndarray | None:
        return self.dataset.load_class_mask(image_id) if self.dataset.has_class_mask(image_id) else None

    def label(self, stage: LabelStage, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        path = stage.label_path(image_id)
        if not path.is_file():
            return None
        label = load_label_png(path)
        if label.shape != tuple(size):
            raise WsssError(f"{path}: size {label.shape[1]}x{label.shape[0]} differs from its image {size[1]}x{size[0]}")
        return label

    def superpixels(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        """The image's superpixel ids (``<superpixel_dir>/labels/<id>.png``), None without a folder or a PNG."""
        if self.superpixel_dir is None:
            return None
        from wsss.superpixel.files import LABELS_DIR, load_superpixel_png

        path = self.superpixel_dir / LABELS_DIR / f"{image_id}.png"
        if not path.is_file():
            return None
        ids = load_superpixel_png(self.superpixel_dir, image_id)
        if ids.shape != tuple(size):
            raise WsssError(f"{path}: size {ids.shape[1]}x{ids.shape[0]} differs from its image {size[1]}x{size[0]}")
        return ids

    def cams(self, image_id: str, size: tuple[int, int]) -> tuple[list[int], np.ndarray | None]:
        if self.cam_dir is None or image_id not in self.keys:
            return [], None
        path = self.cam_dir / "highres" / f"{image_id}.npy"
        if not path.is_file():
            return [], None
        cam = load_npy(path)
        keys = [int(k) for k in self.keys[image_id]]
        if cam.ndim != 3 or cam.shape[0] != len(keys) or tuple(cam.shape[1:]) != tuple(size):
            raise WsssError(f"{path}: shape {tuple(cam.shape)} does not match keys.json ({len(keys)} classes) "
                            f"and the image size {size[1]}x{size[0]}")
        return keys, cam

    def image_iou(self, stage: LabelStage, image_id: str, label: np.ndarray | None, gt: np.ndarray | None
                  ) -> float | None:
        if image_id in stage.per_image:
            return _num(stage.per_image[image_id])
        if label is None or gt is None:
            return None
        names = self.class_names if len(self.class_names) == self.num_classes else None
        scorer = SegmentationScorer(self.num_classes, names) if names else SegmentationScorer()
        return _num(scorer.add(label, gt, name=str(stage.label_path(image_id))))

    def render(self, image_id: str) -> dict[str, Any]:
        s = self.settings
        photo = self.dataset.load_image(image_id)
        size = photo.shape[:2]
        thumb = fit_size(*size, s.thumb_size)
        small = resize_image(photo, thumb)
        save_jpeg(self.out / "thumbs" / "photo" / f"{image_id}.jpg", small, s.jpeg_quality)
        record: dict[str, Any] = {"id": image_id, "size": list(size), "thumb": list(thumb),
                                  "photo": _rel(self.dataset.image_path(image_id), self.out)}
        if self.superpixel_dir is not None:
            ids = self.superpixels(image_id, size)
            if ids is not None:  # 1-pixel lines: 4:4:4 chroma, or JPEG smears them into the photo
                save_jpeg(self.out / "thumbs" / "superpixels" / f"{image_id}.jpg", superpixel_overlay(small, ids),
                          s.jpeg_quality, full_chroma=True)
            record["superpixels"] = 1 if ids is not None else 0
        gt = self.gt(image_id)
        if gt is not None:
            save_label_thumbnail(self.out / "thumbs" / "gt" / f"{image_id}.png", gt, thumb)
            present = np.unique(gt)
            record["classes"] = [int(c) for c in present if 0 < c < self.num_classes]
            if hasattr(self.dataset, "class_mask_path"):
                record["gt"] = _rel(self.dataset.class_mask_path(image_id), self.out)
        else:
            record["classes"] = []
        keys, cam = self.cams(image_id, size)
        record["tags"] = keys
        shown = []
        if cam is not None:
            # strongest classes first when there are more than max_cams
            order = sorted(range(len(keys)), key=lambda k: -float(np.asarray(cam[k], np.float32).mean()))
            for k in sorted(order[: max(0, s.max_cams)]):
                heat = heat_overlay(small, resize_score(np.asarray(cam[k], np.float32), thumb))
                save_jpeg(self.out / "thumbs" / "heat" / f"{image_id}_{keys[k]}.jpg", heat, s.jpeg_quality)
                shown.append(keys[k])
        record["cams"] = shown
        ious, has = [], []
        for stage in self.stages:
            label = self.label(stage, image_id, size)
            if label is not None:
                save_label_thumbnail(self.out / "thumbs" / "labels" / stage.name / f"{image_id}.png", label, thumb)
            has.append(1 if label is not None else 0)
            ious.append(self.image_iou(stage, image_id, label, gt))
        record["iou"] = ious
        record["has"] = has
        return record

    def sample_figure(self, image_id: str, final_iou: float | None) -> np.ndarray:
        """Report figure of one image: photo, its superpixels, ground truth, CAMs, then every stage as an overlay."""
        photo = self.dataset.load_image(image_id)
        size = photo.shape[:2]
        tiles = [Tile("photo", photo)]
        ids = self.superpixels(image_id, size)
        if ids is not None:  # drawn at the tile's size (composite would average full-resolution lines away)
            tile = resize_image(photo, fit_size(*size, self.settings.report_tile))
            tiles.append(Tile("superpixels", superpixel_overlay(tile, ids)))
        present: set[int] = set()
        gt = self.gt(image_id)
        if gt is not None:
            tiles.append(Tile("ground truth", overlay(photo, gt)))
            present.update(int(c) for c in np.unique(gt))
        keys, cam = self.cams(image_id, size)
        if cam is not None:
            for k, class_id in enumerate(keys[: max(0, self.settings.max_cams)]):
                name = self.class_names[class_id] if class_id < len(self.class_names) else str(class_id)
                tiles.append(Tile(f"CAM {name}", heat_overlay(photo, np.asarray(cam[k], np.float32))))
        for stage in self.stages:
            label = self.label(stage, image_id, size)
            if label is None:
                continue
            present.update(int(c) for c in np.unique(label))
            iou = self.image_iou(stage, image_id, label, gt)
            tiles.append(Tile(stage_title(stage) + (f" {iou:.1f}" if iou is not None else ""), overlay(photo, label)))
        names = self.class_names or None
        legend = legend_entries(sorted(c for c in present if c != IGNORE_INDEX), names=names,
                                include_ignore=IGNORE_INDEX in present) if names else []
        heading = f"{image_id}" + (f": final mIoU {final_iou:.1f}" if final_iou is not None else "")
        return composite(tiles, legend, heading=heading, tile_size=self.settings.report_tile)


def metrics_table_html(stages: Sequence[LabelStage], class_names: Sequence[str]) -> str:
    """The per-stage metrics as an HTML ``<table>``: mIoU, precision, recall, coverage, images, per-class IoU.

    The best value of each column is marked ``class="best"``; classes without a value in any stage are left out.
    """
    columns = [("miou", "mIoU"), ("precision", "precision"), ("recall", "recall"), ("coverage", "coverage"),
               ("n_images", "images")]
    if any("miou_novel" in (metrics_summary(stage.metrics) or {}) for stage in stages):  # weak-shot: by class set
        columns += [("miou_base", "base mIoU"), ("miou_novel", "novel mIoU")]
    per_class = [(metrics_summary(stage.metrics) or {}).get("per_class_iou") or {} for stage in stages]
    # classes no stage has a value for (absent from the split's ground truth) would be empty columns
    class_names = [name for name in class_names if any(scores.get(name) is not None for scores in per_class)]
    rows = []
    for stage in stages:
        summary = metrics_summary(stage.metrics) or {}
        values = [summary.get(key) for key, _ in columns]
        values += [(summary.get("per_class_iou") or {}).get(name) for name in class_names]
        rows.append((stage, values))
    best = []
    for column in range(len(columns) + len(class_names)):
        numbers = [v[column] for _, v in rows if isinstance(v[column], (int, float))]
        best.append(max(numbers) if numbers and column != 4 else None)  # no "best" image count
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    head += "".join(f'<th class="cls"><span>{html.escape(name)}</span></th>' for name in class_names)
    body = []
    for stage, values in rows:
        cells = []
        for column, value in enumerate(values):
            if value is None:
                cells.append('<td class="na">–</td>')
                continue
            text = str(int(value)) if column == 4 else f"{float(value):.1f}"
            mark = ' class="best"' if best[column] is not None and value == best[column] and len(rows) > 1 else ""
            cells.append(f"<td{mark}>{text}</td>")
        body.append(f'<tr data-stage="{html.escape(stage.name)}"><th scope="row">{html.escape(stage_title(stage))}</th>'
                    f"{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{1 + len(columns) + len(class_names)}">no label stage found</td></tr>')
    return (f'<table class="metrics"><thead><tr><th>stage</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def legend_html(class_names: Sequence[str]) -> str:
    """The class legend (VOC palette swatches) as HTML."""
    items = "".join(f'<li data-class="{e.id}"><span class="sw" style="background:{e.color}"></span>'
                    f"{html.escape(e.name)}</li>" for e in legend_entries(names=class_names))
    return f'<ul class="legend">{items}</ul>'


def _report_page(title: str, table: str) -> str:
    css = (ASSETS_DIR / "gallery.css").read_text(encoding="utf-8")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)} — metrics</title><style>{css}</style></head>"
            f"<body class=\"report\"><h1>{html.escape(title)}</h1>{table}</body></html>\n")


def pick_samples(records: Sequence[dict[str, Any]], n: int) -> list[int]:
    """Indices of ``n`` records spread from the worst to the best final IoU (records without one come last)."""
    if n <= 0 or not records:
        return []

    def final(record: dict[str, Any]) -> float:
        scored = [v for v in record["iou"] if v is not None]
        return scored[-1] if scored else math.inf

    ranked = sorted(range(len(records)), key=lambda i: (final(records[i]), records[i]["id"]))
    if n >= len(ranked):
        return ranked
    return [ranked[int(round(k * (len(ranked) - 1) / (n - 1)))] for k in range(n)] if n > 1 else [ranked[0]]


def build_gallery(dataset, stages: Sequence[LabelStage], out_dir: str | Path, cam_dir: str | Path | None = None,
                  settings: GallerySettings = GallerySettings(), meta: dict[str, Any] | None = None,
                  curves: Mapping[str, str | Path] | None = None, superpixel_dir: str | Path | None = None) -> Path:
    """Write the gallery of ``dataset`` (its split's images) over ``stages`` into ``out_dir``; returns index.html.

    ``cam_dir`` is a ``make_cam`` folder (``highres/<id>.npy``, ``keys.json``) or None.
    ``meta`` (dataset, supervision, split …) is shown in the page header and stored in ``data.js``.
    ``curves``: label → training stage folder whose ``curves.png`` the page shows (one that is not there is
    skipped; one without the PNG is named in a line).
    ``superpixel_dir``: a ``train_superpixel`` folder (``labels/<id>.png``) or None: a ``superpixels`` column
    (and report tile) with the boundaries over the photo; an image without a PNG shows a placeholder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if settings.thumb_size < 16:
        raise WsssError(f"thumb_size: must be at least 16 pixels, got {settings.thumb_size}")
    if settings.page_size < 1:
        raise WsssError(f"page_size: must be positive, got {settings.page_size}")
    cam = Path(cam_dir) if cam_dir else None
    keys: dict[str, list[int]] = {}
    if cam is not None and (cam / "keys.json").is_file():
        raw = load_json(cam / "keys.json")
        if not isinstance(raw, dict):
            raise WsssError(f"{cam / 'keys.json'}: must map image ids to lists of class ids")
        keys = {str(k): [int(c) for c in v] for k, v in raw.items()}
    class_names = list(getattr(dataset, "class_names", ()))
    ids = list(dataset.ids)
    if settings.max_images > 0:
        ids = ids[: settings.max_images]
    superpixels = Path(superpixel_dir) if superpixel_dir else None
    if superpixels is not None and not superpixels.is_dir():
        raise WsssError(f"{superpixels}: superpixel folder not found (run train_superpixel first)")
    renderer = _ImageRenderer(dataset, stages, cam, keys, out, settings, superpixels)
    records = [renderer.render(image_id) for image_id in Progress(ids, desc="make_gallery", unit="images")]

    data = {
        "version": 1,
        "title": settings.title,
        "meta": dict(meta or {}),
        "page_size": settings.page_size,
        "thumb_size": settings.thumb_size,
        "classes": [{"id": e.id, "name": e.name, "color": e.color} for e in legend_entries(names=class_names)],
        "stages": [{"name": st.name, "title": stage_title(st), "href": _rel(st.folder, out),
                    "miou": _num((st.metrics or {}).get("miou"))} for st in stages],
        "cam_column": bool(keys),
        "superpixel_column": superpixels is not None,
        "pairwise": settings.pairwise,
        "images": records,
    }
    _write_text(out / "data.js", DATA_PREFIX + json.dumps(data, separators=(",", ":")) + ";\n")
    for name in ASSET_FILES:
        _write_text(out / name, (ASSETS_DIR / name).read_text(encoding="utf-8"))

    table = metrics_table_html(stages, class_names)
    report = out / "report"
    _write_text(report / "metrics.html", _report_page(settings.title, table))
    for rank, index in enumerate(pick_samples(records, settings.report_samples), start=1):
        record = records[index]
        scored = [v for v in record["iou"] if v is not None]
        figure = renderer.sample_figure(record["id"], scored[-1] if scored else None)
        save_png(report / f"sample_{rank}_{record['id']}.png", figure)

    shown, missing = copy_curves(curves or {}, out)
    meta_text = " · ".join(f"{k} {v}" for k, v in (meta or {}).items())
    page = (ASSETS_DIR / "index.html").read_text(encoding="utf-8")
    page = (page.replace("{{TITLE}}", html.escape(settings.title))
                .replace("{{META}}", html.escape(meta_text))
                .replace("{{METRICS}}", table)
                .replace("{{CURVES}}", curves_html(shown, missing))
                .replace("{{LEGEND}}", legend_html(class_names)))
    _write_text(out / "index.html", page)
    print(f"[make_gallery] {len(records)} images × {len(stages)} label stages → {out / 'index.html'}", flush=True)
    return out / "index.html"
