"""The inspection gallery: stage discovery, the page and its data, the report files, the stage CLI,
and the page itself in headless Chromium (skipped where no chromium binary is installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.synthetic_run import make_synthetic_run, open_synthetic_dataset
from wsss.config import REPO_ROOT
from wsss.errors import WsssError
from wsss.io import load_label_png, save_json, save_label_png
from wsss.superpixel.files import save_superpixel_png
from wsss.viz.gallery import GallerySettings, build_gallery, metrics_table_html, pick_samples, read_gallery_data
from wsss.viz.render import (BOUNDARY_COLOR, Tile, colorize, composite, heat_colors, legend_entries, overlay,
                             resize_image, superpixel_overlay)
from wsss.viz.stages import bilinear_cam_folder, discover_label_stages, order_stage_names

ORDER = ["cam", "seeds", "random_walk", "a2gnn", "crf", "pseudolabels"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A synthetic run of 5 images (a2gnn lacks one PNG) and its gallery, pages of 2 images."""
    root = tmp_path_factory.mktemp("run")
    run = make_synthetic_run(root, n_images=5, missing={"a2gnn": "2007_000003"})
    stages = discover_label_stages(run.stages_dir, run.cam_dir)
    out = run.stages_dir / "gallery"
    build_gallery(open_synthetic_dataset(run), stages, out, run.cam_dir,
                  GallerySettings(thumb_size=64, page_size=2, report_samples=3, title="toy run"),
                  {"dataset": "minivoc", "supervision": "image"})
    return run, out


# ------------------------------------------------------------------------------------- discovery
def test_stage_order_known_first_unknown_at_star():
    assert order_stage_names(["pseudolabels", "zeta", "crf", "seeds", "alpha", "cam"]) == \
        ["cam", "seeds", "alpha", "zeta", "crf", "pseudolabels"]
    assert order_stage_names(["b", "a", "seeds"], ["seeds"]) == ["seeds", "a", "b"]


def test_discovery_is_generic_and_skips_models_and_the_gallery(tmp_path):
    run = make_synthetic_run(tmp_path, n_images=2)
    (run.stages_dir / "gallery").mkdir()
    save_json(run.stages_dir / "gallery" / "metrics.json", {"miou": 1.0})  # never a stage
    (run.stages_dir / "my_tree").mkdir()  # a new propagator's folder: PNGs only, no metrics yet
    save_label_png(run.stages_dir / "my_tree" / f"{run.ids[0]}.png", np.zeros((72, 96), np.uint8))
    stages = discover_label_stages(run.stages_dir, run.cam_dir)
    assert [s.name for s in stages] == ["cam", "seeds", "random_walk", "a2gnn", "my_tree", "crf", "pseudolabels"]
    assert stages[0].folder == run.cam_dir / "labels"
    my_tree = stages[4]
    assert my_tree.metrics is None and my_tree.per_image == {}
    assert stages[-1].metrics["miou"] == pytest.approx(json.loads((run.stages_dir / "pseudolabels" /
                                                                   "metrics.json").read_text())["miou"])


def test_discovery_takes_named_folders_outside_the_run(tmp_path):
    """A recipe's gallery: its own folder holds propagate/crf/pseudolabels; the shared seeds live elsewhere."""
    run = make_synthetic_run(tmp_path, n_images=2)
    recipe = run.stages_dir / "myrecipe"
    for name in ("random_walk", "crf", "pseudolabels"):
        shutil.move(str(run.stages_dir / name), str(recipe / ("propagate" if name == "random_walk" else name)))
    stages = discover_label_stages(recipe, run.cam_dir, extra={"seeds": run.stages_dir / "seeds",
                                                               "nothing": tmp_path / "missing"})
    assert [s.name for s in stages] == ["cam", "seeds", "propagate", "crf", "pseudolabels"]
    assert stages[1].folder == run.stages_dir / "seeds" and stages[1].metrics is not None


def test_discovery_leaves_out_retrained_models_instances_and_other_splits(tmp_path, capsys):
    run = make_synthetic_run(tmp_path, n_images=2)
    save_json(run.stages_dir / "deeplab" / "metrics.json", {"miou": 70.0, "protocol": {"split": "val"}})
    save_label_png(run.stages_dir / "deeplab" / "predictions" / f"{run.ids[0]}.png", np.zeros((72, 96), np.uint8))
    save_json(run.stages_dir / "boxes_ap" / "metrics.json", {"ap50": 30.0})  # an instance record: no miou
    save_json(run.stages_dir / "val_walk" / "metrics.json", {"miou": 50.0, "protocol": {"split": "val"}})
    save_label_png(run.stages_dir / "val_walk" / f"{run.ids[0]}.png", np.zeros((72, 96), np.uint8))
    names = [s.name for s in discover_label_stages(run.stages_dir, run.cam_dir, split="train")]
    assert names == ORDER
    assert "val_walk: left out, scored on split 'val', not 'train'" in capsys.readouterr().out
    assert "val_walk" in [s.name for s in discover_label_stages(run.stages_dir, run.cam_dir)]


def test_bad_metrics_is_a_one_line_error_naming_the_file(tmp_path):
    run = make_synthetic_run(tmp_path, n_images=1)
    (run.stages_dir / "crf" / "metrics.json").write_text("{not json")
    with pytest.raises(WsssError, match=r"crf/metrics\.json: malformed JSON"):
        discover_label_stages(run.stages_dir, run.cam_dir)
    save_json(run.stages_dir / "crf" / "metrics.json", [1, 2])
    with pytest.raises(WsssError, match=r"crf/metrics\.json: not a metrics record"):
        discover_label_stages(run.stages_dir, run.cam_dir)


def test_label_of_wrong_size_is_an_error(tmp_path):
    run = make_synthetic_run(tmp_path, n_images=1)
    save_label_png(run.stages_dir / "crf" / f"{run.ids[0]}.png", np.zeros((10, 10), np.uint8))
    stages = discover_label_stages(run.stages_dir, run.cam_dir)
    with pytest.raises(WsssError, match=r"crf/2007_000000\.png: size 10x10 differs from its image 96x72"):
        build_gallery(open_synthetic_dataset(run), stages, tmp_path / "g", run.cam_dir)
    assert not (tmp_path / "g" / "index.html").exists()


# ------------------------------------------------------------------------------------- rendering
def test_render_primitives():
    label = np.array([[0, 1], [15, 255]], np.uint8)
    rgb = colorize(label)
    assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 1]) == (128, 0, 0) and tuple(rgb[1, 1]) == (224, 224, 192)
    image = np.full((2, 2, 3), 200, np.uint8)
    assert tuple(overlay(image, label, alpha=0.0)[0, 0]) == (200, 200, 200)
    heat = heat_colors(np.array([0.0, 1.0]))
    assert heat[0, 2] > heat[0, 0] and heat[1, 0] > heat[1, 2]  # cold is blue, hot is red
    legend = legend_entries([0, 12])
    assert [(e.id, e.name, e.color) for e in legend] == [(0, "background", "#000000"), (12, "dog", "#400080"),
                                                        (255, "ignore", "#e0e0c0")]
    figure = composite([Tile("a", np.zeros((40, 80, 3), np.uint8))] * 7, legend, heading="x", tile_size=32, per_row=3)
    assert figure.shape[1] == 3 * 32 + 4 * 6 and figure.dtype == np.uint8


def test_pick_samples_spans_worst_to_best():
    records = [{"id": str(i), "iou": [None, v]} for i, v in enumerate([50.0, 10.0, 90.0, 30.0, None])]
    picked = pick_samples(records, 3)
    assert picked[0] == 1 and picked[-1] == 4  # worst first, the unscored one last
    assert pick_samples(records, 10) == [1, 3, 0, 2, 4]
    assert pick_samples(records, 0) == []


def test_metrics_table_marks_best_and_drops_empty_classes(built):
    run, _ = built
    stages = discover_label_stages(run.stages_dir, run.cam_dir)
    table = metrics_table_html(stages, open_synthetic_dataset(run).class_names)
    assert [m for m in re.findall(r'<tr data-stage="([^"]+)"', table)] == ORDER
    assert 'class="best"' in table
    assert ">aeroplane<" not in table  # no stage saw an aeroplane
    assert ">dog<" in table or ">bird<" in table


# ------------------------------------------------------------------------------------- the gallery
def test_gallery_data_matches_the_run(built):
    run, out = built
    data = read_gallery_data(out / "data.js")
    assert [s["name"] for s in data["stages"]] == ORDER
    assert [r["id"] for r in data["images"]] == run.ids
    assert data["page_size"] == 2 and data["cam_column"] is True
    # no superpixel folder, no bilinear CAMs: no superpixel column, the stage titles are their names
    assert data["superpixel_column"] is False and not (out / "thumbs" / "superpixels").exists()
    assert all("superpixels" not in r for r in data["images"])
    assert [s["title"] for s in data["stages"]] == ORDER
    assert {c["id"] for c in data["classes"]} == set(range(21)) | {255}
    for index, stage in enumerate(data["stages"]):
        folder = (out / stage["href"]).resolve()
        assert folder.is_dir() and not Path(stage["href"]).is_absolute()
        per_image = json.loads((folder / "per_image.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert stage["miou"] == pytest.approx(metrics["miou"], abs=0.01)
        for record in data["images"]:
            if record["has"][index]:
                assert record["iou"][index] == pytest.approx(per_image[record["id"]], abs=0.01)
    missing = next(r for r in data["images"] if r["id"] == "2007_000003")
    assert missing["has"][ORDER.index("a2gnn")] == 0
    assert not (out / "thumbs" / "labels" / "a2gnn" / "2007_000003.png").exists()


def test_gallery_thumbnails_are_small_and_in_the_voc_palette(built):
    run, out = built
    data = read_gallery_data(out / "data.js")
    for record in data["images"]:
        image_id = record["id"]
        h, w = record["thumb"]
        assert max(h, w) == 64 and (h, w) == (48, 64)
        with Image.open(out / "thumbs" / "photo" / f"{image_id}.jpg") as photo:
            assert photo.format == "JPEG" and photo.size == (w, h)
        assert (out / record["photo"]).resolve() == (run.data_root / "JPEGImages" / f"{image_id}.jpg").resolve()
        gt = load_label_png(run.data_root / "SegmentationClass" / f"{image_id}.png")
        assert record["classes"] == sorted(int(c) for c in np.unique(gt) if 0 < c < 21)
        for index, stage in enumerate(data["stages"]):
            thumb = out / "thumbs" / "labels" / stage["name"] / f"{image_id}.png"
            if not record["has"][index]:
                continue
            with Image.open(thumb) as small:
                assert small.mode == "P" and small.size == (w, h)
                assert small.getpalette()[3:6] == [128, 0, 0]
            full = load_label_png(out / stage["href"] / f"{image_id}.png")
            assert set(np.unique(load_label_png(thumb))) <= set(np.unique(full))
        assert record["cams"] == record["tags"][:4]
        for class_id in record["cams"]:
            assert (out / "thumbs" / "heat" / f"{image_id}_{class_id}.jpg").is_file()


def test_gallery_page_is_static_and_self_contained(built):
    _, out = built
    page = (out / "index.html").read_text()
    assert "{{" not in page and "<title>toy run</title>" in page
    assert re.findall(r'<tr data-stage="([^"]+)"', page) == ORDER  # metrics table inline, no JS needed
    assert 'class="legend"' in page and "tvmonitor" in page
    assert '<script src="data.js"' in page and '<script src="gallery.js"' in page
    for name in ("index.html", "gallery.js", "gallery.css"):
        text = (out / name).read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), f"{name} loads something remote"
        assert "@import" not in text and "fetch(" not in text  # nothing that fails from file://
    script = (out / "gallery.js").read_text()
    assert "loading: 'lazy'" in script
    assert (out / "data.js").read_text().startswith("window.WSSS_GALLERY = {")


def test_report_files(built):
    _, out = built
    report = out / "report"
    assert re.findall(r'<tr data-stage="([^"]+)"', (report / "metrics.html").read_text()) == ORDER
    samples = sorted(report.glob("sample_*.png"))
    assert [p.name.split("_")[1] for p in samples] == ["1", "2", "3"]
    with Image.open(samples[0]) as figure:
        assert figure.mode == "RGB" and figure.size[0] > 3 * 64


# ------------------------------------------------------------------------------------- MSA: superpixels, bilinear CAMs
def test_superpixel_overlay_draws_1px_boundaries_where_ids_change():
    ids = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
    image = np.full((3, 4, 3), 50, np.uint8)
    drawn = superpixel_overlay(image, ids)
    edge = np.array([[0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)  # left/upper side of every change
    assert (drawn[edge] == BOUNDARY_COLOR).all() and (drawn[~edge] == 50).all()
    # a map larger than the image: shrunk by nearest neighbour first, the lines stay 1 px wide
    big = np.repeat(np.repeat(ids, 10, axis=0), 10, axis=1)
    assert (superpixel_overlay(image, big) == drawn).all()


def _msa_run(tmp_path):
    """A synthetic run whose CAMs are MSA's: cam upsampled by superpixels, bilinear/labels beside it, and a
    superpixel folder with the PNGs of two of its three images (vertical stripes 24 px wide, horizontal halves)."""
    run = make_synthetic_run(tmp_path, n_images=3)
    labels = run.cam_dir / "labels"
    shutil.copytree(labels, run.cam_dir / "bilinear" / "labels")
    metrics = json.loads((labels / "metrics.json").read_text())
    save_json(labels / "metrics.json", {**metrics, "protocol": {**metrics["protocol"], "upsample": "superpixel"}})
    superpixels = tmp_path / "superpixel"
    rows, cols = np.mgrid[:72, :96]
    stripes, halves = 1000 + cols // 24, 300 * (rows // 36)  # ids beyond 8 bits: the 16-bit PNG
    save_superpixel_png(superpixels, run.ids[0], stripes)
    save_superpixel_png(superpixels, run.ids[1], halves)
    return run, superpixels, {run.ids[0]: stripes, run.ids[1]: halves}


def _expected_edges(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Where the nearest-shrunk id map changes to the right or below (computed here independently)."""
    r = ((np.arange(size[0]) + 0.5) * ids.shape[0] / size[0]).astype(int)
    c = ((np.arange(size[1]) + 0.5) * ids.shape[1] / size[1]).astype(int)
    small = ids[r][:, c]
    edge = np.zeros(size, bool)
    edge[:, :-1] |= small[:, :-1] != small[:, 1:]
    edge[:-1] |= small[:-1] != small[1:]
    return edge


def test_msa_gallery_shows_superpixels_and_bilinear_cams(tmp_path):
    run, superpixels, ids = _msa_run(tmp_path)
    stages = discover_label_stages(run.stages_dir, run.cam_dir, extra={"cam_bilinear": bilinear_cam_folder(run.cam_dir)})
    assert [s.name for s in stages] == ["cam", "cam_bilinear", *ORDER[1:]]
    out, dataset = tmp_path / "gallery", open_synthetic_dataset(run)
    build_gallery(dataset, stages, out, run.cam_dir, GallerySettings(thumb_size=64, report_samples=3),
                  superpixel_dir=superpixels)
    data = read_gallery_data(out / "data.js")
    assert data["superpixel_column"] is True
    assert [r["superpixels"] for r in data["images"]] == [1, 1, 0]  # the third: a placeholder, not an error
    assert not (out / "thumbs" / "superpixels" / f"{run.ids[2]}.jpg").exists()
    assert [s["title"] for s in data["stages"][:2]] == ["cam (superpixel-upsampled)", "cam_bilinear"]
    assert data["stages"][1]["href"] == "../results/minivoc/cam/bilinear/labels"
    for image_id, full in ids.items():
        record = next(r for r in data["images"] if r["id"] == image_id)
        h, w = record["thumb"]
        with Image.open(out / "thumbs" / "superpixels" / f"{image_id}.jpg") as thumb:
            assert thumb.size == (w, h)
            drawn = np.asarray(thumb.convert("RGB"), np.int16)
        plain = resize_image(dataset.load_image(image_id), (h, w)).astype(np.int16)  # the photo thumbnail, pre-JPEG
        edge = _expected_edges(full, (h, w))
        assert 0 < edge.sum() < edge.size / 5  # 1-pixel lines, not bands
        assert np.abs(drawn[edge] - BOUNDARY_COLOR).max(axis=-1).mean() < 25  # yellow where the ids change
        near = edge.copy()  # JPEG rings next to a sharp line: compare the photo one pixel away from the lines
        near[1:] |= edge[:-1]; near[:-1] |= edge[1:]; near[:, 1:] |= edge[:, :-1]; near[:, :-1] |= edge[:, 1:]
        assert np.abs(drawn[~near] - plain[~near]).mean() < 8  # the photo elsewhere (JPEG noise of a noisy photo)
        assert (np.abs(drawn[~near] - BOUNDARY_COLOR).max(axis=-1) > 60).all()  # and no line
    assert "cam (superpixel-upsampled)" in (out / "report" / "metrics.html").read_text()
    assert len(list((out / "report").glob("sample_*.png"))) == 3  # superpixel tile or not, every figure is drawn


def test_superpixel_png_of_wrong_size_is_an_error(tmp_path):
    run, superpixels, _ = _msa_run(tmp_path)
    save_superpixel_png(superpixels, run.ids[0], np.zeros((10, 10), np.int32))
    with pytest.raises(WsssError, match=r"superpixel/labels/2007_000000\.png: size 10x10 differs from its image 96x72"):
        build_gallery(open_synthetic_dataset(run), discover_label_stages(run.stages_dir, run.cam_dir), tmp_path / "g",
                      run.cam_dir, superpixel_dir=superpixels)
    with pytest.raises(WsssError, match="superpixel folder not found"):
        build_gallery(open_synthetic_dataset(run), [], tmp_path / "g", None, superpixel_dir=tmp_path / "nope")


def test_only_superpixel_recipes_give_the_gallery_a_superpixel_folder():
    from wsss.workflow.layout import recipe_superpixels
    from wsss.workflow.plan import Plan

    wildcards = {"dataset": "minivoc", "supervision": "image"}
    assert recipe_superpixels(Plan({}), {**wildcards, "recipe": "msa"}) == "minivoc/superpixel"
    assert recipe_superpixels(Plan({}), {**wildcards, "recipe": "psa"}) is None


@pytest.mark.slow
def test_make_gallery_stage_command(tmp_path):
    """The stage as Snakemake calls it: Hydra overrides in, gallery + recorded config out, log lines."""
    run = make_synthetic_run(tmp_path, n_images=3)
    out = tmp_path / "out" / "gallery"
    log = tmp_path / "make_gallery.log"
    command = [sys.executable, "-m", "stages.make_gallery", f"dataset.root={run.data_root}",
               f"paths.results={run.results}", f"stages_dir={run.stages_dir}", f"out_dir={out}", "thumb_size=48",
               "report_samples=2"]
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, timeout=120)
    text = log.read_text()
    assert result.returncode == 0, text
    assert (out / "index.html").is_file() and (out / ".hydra" / "config.yaml").is_file()
    assert [s["name"] for s in read_gallery_data(out / "data.js")["stages"]] == ORDER
    assert re.search(r"^\[make_gallery\] 3/3 images \(100\.0%\) [\d.]+ images/s", text, re.M)
    # a typo'd stage folder is a one-line error
    bad = subprocess.run([*command[:5], "stages_dir=/nonexistent/run", f"out_dir={tmp_path / 'bad'}"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: /nonexistent/run")


@pytest.mark.slow
def test_make_gallery_stage_command_msa(tmp_path):
    """The stage with ``superpixel_dir`` and a CAM folder holding ``bilinear/labels``: both columns appear."""
    run, superpixels, _ = _msa_run(tmp_path)
    out = tmp_path / "out" / "gallery"
    result = subprocess.run([sys.executable, "-m", "stages.make_gallery", f"dataset.root={run.data_root}",
                             f"paths.results={run.results}", f"stages_dir={run.stages_dir}", f"out_dir={out}",
                             f"superpixel_dir={superpixels}", "thumb_size=48", "report_samples=1"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = read_gallery_data(out / "data.js")
    assert [s["name"] for s in data["stages"]] == ["cam", "cam_bilinear", *ORDER[1:]]
    assert data["superpixel_column"] is True and (out / "thumbs" / "superpixels" / f"{run.ids[0]}.jpg").is_file()


# ------------------------------------------------------------------------------------- headless Chromium
def _chromium() -> str | None:
    for name in (os.environ.get("WSSS_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no chromium binary installed")


def run_chromium(url: str, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """Open ``url`` headless; return the DOM after the scripts ran and Chromium's stderr (console lines)."""
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    profile.mkdir()
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1400,1000",
               "--virtual-time-budget=10000", "--dump-dom", *extra, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.stdout, result.stderr


class _Dom(HTMLParser):
    """Elements of a dumped DOM as (tag, attrs, id of the enclosing gallery row)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self.row: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "tr":
            self.row = attributes.get("data-id")
        self.elements.append((tag, attributes, self.row))


def parse_dom(html: str) -> _Dom:
    dom = _Dom()
    dom.feed(html)
    return dom


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line and re.search(r"Uncaught|Error|error|Failed|failed", line)]


@needs_chromium
def test_gallery_in_headless_chromium(built, tmp_path):
    run, out = built
    dom_text, stderr = run_chromium((out / "index.html").as_uri(), tmp_path)
    assert not console_errors(stderr), console_errors(stderr)
    dom = parse_dom(dom_text)
    body = next(attrs for tag, attrs, _ in dom.elements if tag == "body")
    assert body.get("data-ready") == "1" and "data-errors" not in body, dom_text[:2000]
    errors_box = next(attrs for tag, attrs, _ in dom.elements if attrs.get("id") == "errors")
    assert "hidden" in errors_box
    rows = [attrs["data-id"] for tag, attrs, _ in dom.elements if tag == "tr" and "data-id" in attrs]
    data = read_gallery_data(out / "data.js")
    by_id = {r["id"]: r for r in data["images"]}
    final = sorted(run.ids, key=lambda i: (by_id[i]["iou"][-1], i))
    assert rows == final[:2]  # default view: page 1 of 2 images, the final stage's worst first
    for row in rows:
        cells = {attrs.get("data-stage") for tag, attrs, r in dom.elements if r == row and tag == "td"}
        assert set(ORDER) <= cells, f"{row}: stage columns {cells}"
        labels = [attrs for tag, attrs, r in dom.elements if r == row and tag == "img" and attrs.get("class") == "lab"]
        assert len(labels) == 1 + sum(by_id[row]["has"])  # ground truth + every stage that has this image
        for tag, attrs, r in dom.elements:
            if r == row and tag == "img":
                assert attrs.get("loading") == "lazy"
                assert (out / attrs["src"]).is_file(), attrs["src"]
        heat = [a for t, a, r in dom.elements if r == row and t == "img" and a.get("class") == "heat"]
        assert len(heat) == len(by_id[row]["cams"]) > 0


@needs_chromium
def test_gallery_sort_filter_and_pagination_from_the_url(built, tmp_path):
    run, out = built
    data = read_gallery_data(out / "data.js")
    crf = ORDER.index("crf")

    def rows(fragment: str) -> list[str]:
        dom_text, stderr = run_chromium((out / "index.html").as_uri() + "#" + fragment, tmp_path)
        assert not console_errors(stderr), console_errors(stderr)
        dom = parse_dom(dom_text)
        body = next(attrs for tag, attrs, _ in dom.elements if tag == "body")
        assert body.get("data-ready") == "1" and "data-errors" not in body
        return [attrs["data-id"] for tag, attrs, _ in dom.elements if tag == "tr" and "data-id" in attrs]

    by_crf = sorted(data["images"], key=lambda r: (-r["iou"][crf], r["id"]))
    assert rows("sort=iou:crf&order=desc&size=10") == [r["id"] for r in by_crf]
    assert rows("sort=id&page=2") == run.ids[2:4]
    dog_or_any = [r["id"] for r in data["images"] if 12 in r["classes"] or 12 in r["tags"]]
    assert rows("sort=id&cls=12&size=10") == dog_or_any
    threshold = sorted(r["iou"][crf] for r in data["images"])[2]
    assert rows(f"sort=iou:crf&min={threshold}&size=10") == \
        [r["id"] for r in sorted(data["images"], key=lambda r: (r["iou"][crf], r["id"])) if r["iou"][crf] >= threshold]


@needs_chromium
def test_msa_gallery_in_headless_chromium(tmp_path):
    """The superpixels column right after the photo (a placeholder where an image has none), the bilinear CAMs
    right after the superpixel-upsampled ones, titled so."""
    run, superpixels, _ = _msa_run(tmp_path)
    stages = discover_label_stages(run.stages_dir, run.cam_dir, extra={"cam_bilinear": bilinear_cam_folder(run.cam_dir)})
    out = tmp_path / "gallery"
    build_gallery(open_synthetic_dataset(run), stages, out, run.cam_dir,
                  GallerySettings(thumb_size=64, report_samples=0), superpixel_dir=superpixels)
    dom_text, stderr = run_chromium((out / "index.html").as_uri() + "#sort=id", tmp_path)
    assert not console_errors(stderr), console_errors(stderr)
    dom = parse_dom(dom_text)
    heads = [attrs["data-col"] for tag, attrs, row in dom.elements if tag == "th" and row is None and "data-col" in attrs]
    assert heads[:5] == ["photo", "superpixels", "gt", "cam", "stage:cam"] and heads[5] == "stage:cam_bilinear"
    assert "cam (superpixel-upsampled)" in dom_text
    for image_id in run.ids:
        images = [a["src"] for t, a, r in dom.elements if r == image_id and t == "img" and a.get("class") == "superpixels"]
        assert images == ([f"thumbs/superpixels/{image_id}.jpg"] if image_id != run.ids[2] else [])
        assert all((out / src).is_file() for src in images)
    assert dom_text.count("no superpixels") == 1
