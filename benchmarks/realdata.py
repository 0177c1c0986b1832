"""Benchmark of the CAM-free point / scribble / box pipelines on the real VOC photos of ``shared/realdata``.

    python -m benchmarks.realdata                       # prints the table, writes results/realdata_bench/
    python -m benchmarks.realdata --out results/realdata_bench_try --propagate "propagation.zeta_global=0.03"

Images: the PASCAL VOC 2012 photos with *official* class masks (``datum/VOC2012``: 2007_000032,
2007_000033; ``icevision/VOC2012``: 2007_000063); ``--unofficial`` adds labelme's three VOC photos
(their masks are the labelme author's polygons). Ground truth: ``SegmentationClass`` (255 ignored).

Weak labels, derived deterministically:

* **boxes**: the VOC XML (``Annotations/<id>.xml``); images without XML (2007_000033) are left out
  of the box rows;
* **points**: every 8-connected component of every class of the ground truth (background included,
  void excluded) with at least ``--min-area`` pixels gets one point, at the pixel farthest from the
  component's border (Euclidean distance transform; ties: first in raster order). Background points
  are written with ``class_index = -1`` (the point reader's background extension);
* **scribbles**: for each such component, the straight segment along its principal axis (PCA of its
  pixel coordinates, through the centroid), sampled every pixel, reduced to the longest run of
  samples lying in the component's interior (distance to the border ≥ max(2, ¼ of the component's
  largest distance)); a component without such a run of ≥ 3 samples gets a one-vertex scribble at
  its point. Written as ScribbleSup XML (one ``<polygon>`` per component, background tagged
  ``background``).

These are written into a temporary VOC-layout root (``Points/``, ``Scribbles/``, the official
folders linked) and read back through the project's readers.

Pipelines (the stages' code and configs, composed with Hydra as the stages compose them): the CAM-free
APro recipe, ``conf/recipe/apro_camfree.yaml``: ``make_seeds`` (its seed rule) → ``propagate`` (its
propagator) → ``refine_crf`` (its CRF kernels, and ``keep_seeds`` when the recipe sets it), with the overrides the DAG gives
those stages.
Baselines (seeds only): boxes → filled boxes (smaller on top, background outside); points → every
pixel takes the class of its nearest point; scribbles → of its nearest scribble pixel.

Scores: mIoU (%) per image and over all images (one confusion matrix), for the baseline, the seeds
(unlabelled pixels count as misses), the propagation and the final (CRF) masks. Written to
``<out>/bench.json`` with the label maps under ``<out>/<supervision>/<stage>/<id>.png``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from wsss.data.classes import VOC_CLASSES
from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX, load_label_png, save_json, save_label_png

REPO_ROOT = Path(__file__).resolve().parent.parent
REALDATA = REPO_ROOT.parent / "shared" / "realdata"
#: (folder under realdata, ids) of the VOC photos with official class masks
OFFICIAL = (("datum/VOC2012", ("2007_000032", "2007_000033")), ("icevision/VOC2012", ("2007_000063",)))
UNOFFICIAL = (("labelme/data_dataset_voc", ("2011_000003", "2011_000006", "2011_000025")),)
SUPERVISIONS = ("box", "scribble", "point")
#: the recipe benchmarked: CAM-free (no classifier can be trained on a handful of photos)
RECIPE = "apro_camfree"


# ------------------------------------------------------------ derived labels
@dataclass(frozen=True)
class Component:
    """One connected region of one class of a ground-truth mask."""

    class_id: int
    mask: np.ndarray
    depth: np.ndarray  # distance to the border, 0 outside


def components(gt: np.ndarray, min_area: int) -> list[Component]:
    """8-connected components of every class of ``gt (H,W)`` (255 skipped) with ≥ ``min_area`` pixels,
    ordered by class then by first pixel in raster order."""
    found = []
    for c in np.unique(gt):
        if c == IGNORE_INDEX:
            continue
        labels, count = ndimage.label(gt == c, structure=np.ones((3, 3), bool))
        for k in range(1, count + 1):
            mask = labels == k
            if mask.sum() >= min_area:
                found.append(Component(int(c), mask, ndimage.distance_transform_edt(mask)))
    return found


def component_point(component: Component) -> tuple[int, int]:
    """``(x, y)`` of the pixel farthest from the component's border (first in raster order on ties)."""
    y, x = np.unravel_index(int(np.argmax(component.depth)), component.depth.shape)
    return int(x), int(y)


def component_scribble(component: Component) -> list[tuple[int, int]]:
    """Vertices ``[(x, y), ...]`` of the component's scribble (module docstring)."""
    ys, xs = np.nonzero(component.mask)
    centre = np.array([xs.mean(), ys.mean()])
    coords = np.stack([xs, ys], 1) - centre
    _, vectors = np.linalg.eigh(coords.T @ coords)
    axis = vectors[:, -1]
    height, width = component.mask.shape
    reach = float(np.hypot(height, width))
    steps = np.arange(-reach, reach + 1.0)
    samples = np.rint(centre[None] + steps[:, None] * axis[None]).astype(int)
    inside_image = (samples[:, 0] >= 0) & (samples[:, 0] < width) & (samples[:, 1] >= 0) & (samples[:, 1] < height)
    margin = max(2.0, 0.25 * float(component.depth.max()))
    interior = np.zeros(len(samples), bool)
    interior[inside_image] = component.depth[samples[inside_image, 1], samples[inside_image, 0]] >= margin
    best, start, run_start = (0, 0), None, None
    for i, flag in enumerate(np.append(interior, False)):
        if flag and run_start is None:
            run_start = i
        elif not flag and run_start is not None:
            if i - run_start > best[1] - best[0]:
                best = (run_start, i)
            run_start = None
    if best[1] - best[0] < 3:
        return [component_point(component)]
    first, last = samples[best[0]], samples[best[1] - 1]
    return [(int(first[0]), int(first[1])), (int(last[0]), int(last[1]))]


def points_text(found: Sequence[Component]) -> str:
    """The point file (class_index −1 = background)."""
    return "".join(f"{x} {y} {c.class_id - 1} 1.0\n" for c in found for x, y in [component_point(c)])


def scribbles_xml(found: Sequence[Component], size: tuple[int, int]) -> str:
    """The ScribbleSup XML of the components' scribbles."""
    height, width = size
    parts = [f"<annotation><size><width>{width}</width><height>{height}</height></size>"]
    for c in found:
        parts.append(f"<polygon><tag>{VOC_CLASSES[c.class_id]}</tag>")
        parts += [f"<point><X>{x}</X><Y>{y}</Y></point>" for x, y in component_scribble(c)]
        parts.append("</polygon>")
    parts.append("</annotation>")
    return "".join(parts)


def build_root(root: Path, sources: Sequence[tuple[Path, Sequence[str]]], min_area: int) -> list[str]:
    """A VOC-layout root at ``root`` with the images of ``sources`` linked and Points/Scribbles derived
    from their masks. Returns the ids (split ``train``)."""
    from wsss.data.voc import read_image_size

    for folder in ("JPEGImages", "SegmentationClass", "Annotations", "Points", "Scribbles", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ids = []
    for source, names in sources:
        for image_id in names:
            image = source / "JPEGImages" / f"{image_id}.jpg"
            mask = source / "SegmentationClass" / f"{image_id}.png"
            if not image.is_file() or not mask.is_file():
                raise WsssError(f"{source}: real-data image or mask of {image_id} missing")
            (root / "JPEGImages" / image.name).symlink_to(image)
            (root / "SegmentationClass" / mask.name).symlink_to(mask)
            xml = source / "Annotations" / f"{image_id}.xml"
            if xml.is_file():
                (root / "Annotations" / xml.name).symlink_to(xml)
            gt = load_label_png(mask)
            found = components(gt, min_area)
            (root / "Points" / f"{image_id}.txt").write_text(points_text(found))
            (root / "Scribbles" / f"{image_id}.xml").write_text(scribbles_xml(found, read_image_size(image)))
            ids.append(image_id)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    return ids


# ------------------------------------------------------------------ running
STAGES = ("baseline", "seeds", "propagation", "final")


def run(out: Path, unofficial: bool = False, min_area: int = 100, seeds_overrides: Sequence[str] = (),
        propagate_overrides: Sequence[str] = (), crf_overrides: Sequence[str] = ()) -> dict:
    """Run the benchmark; returns (and writes to ``out/bench.json``) the record."""
    from omegaconf import OmegaConf

    from wsss.config import compose
    from wsss.crf import CRFParams, crf_from_probs, keep_confident_seeds
    from wsss.data import open_dataset
    from wsss.data.annotations import load_weak_annotation
    from wsss.metrics import SegmentationScorer
    from wsss.propagation.run import Propagator, propagation_input
    from wsss.seeds.box import filled_box_labels
    from wsss.seeds.point import nearest_point_labels
    from wsss.seeds.scribble import nearest_seed_labels
    from wsss.seeds.weak import WeakSeedBuilder
    from wsss.workflow.recipes import load_recipe

    recipe = load_recipe(RECIPE)

    groups = OFFICIAL + (UNOFFICIAL if unofficial else ())
    sources = [(REALDATA / folder, names) for folder, names in groups]
    record: dict = {"images": {}, "overall": {}, "settings": {}}
    with tempfile.TemporaryDirectory(prefix="wsss_realdata_") as tmp:
        root = Path(tmp) / "VOC2012"
        ids = build_root(root, sources, min_area)
        base = ["dataset=voc", f"dataset.root={root}"]
        for kind in SUPERVISIONS:
            seeds_cfg = compose("make_seeds", base + [f"supervision={kind}", f"seeds={recipe.seeds}", *seeds_overrides])
            prop_cfg = compose("propagate", base + [f"supervision={kind}", *recipe.stage_overrides("propagate"),
                                                    *propagate_overrides])
            crf_cfg = compose("refine_crf", base + [f"supervision={kind}", *recipe.stage_overrides("refine_crf"),
                                                    "scores_dir=-", *crf_overrides])
            record["settings"][kind] = {"make_seeds": OmegaConf.to_container(seeds_cfg[kind]),
                                        "propagation": OmegaConf.to_container(prop_cfg.propagation),
                                        "crf": OmegaConf.to_container(crf_cfg.crf),
                                        "keep_seeds": bool(crf_cfg.keep_seeds)}
            builder = WeakSeedBuilder.from_config(seeds_cfg)
            propagator = Propagator(OmegaConf.to_container(prop_cfg.propagation), kind, False, None)
            crf = CRFParams(**crf_cfg.crf)
            dataset = open_dataset(seeds_cfg.dataset, "train")
            scorers = {stage: SegmentationScorer() for stage in STAGES}
            for image_id in ids:
                if kind == "box" and not dataset.has_annotation(image_id):
                    continue
                started = time.monotonic()
                image = dataset.load_image(image_id)
                gt = dataset.load_class_mask(image_id)
                annotation = load_weak_annotation(dataset, kind, str(seeds_cfg.supervision.annotations), image_id)
                seeds = builder.seeds(image, annotation)
                if kind == "box":
                    baseline = filled_box_labels(annotation.boxes, gt.shape)
                elif kind == "point":
                    baseline = nearest_point_labels(annotation.points, gt.shape)
                else:
                    baseline = nearest_seed_labels(seeds)
                data = propagation_input(dataset, kind, str(seeds_cfg.supervision.annotations), image_id, image, seeds)
                scores = propagator(data)
                final = data.label(crf_from_probs(image, scores, crf))
                if crf_cfg.keep_seeds:  # as refine_crf does
                    final = keep_confident_seeds(final, seeds)
                labels = {"baseline": baseline, "seeds": seeds, "propagation": data.label(scores), "final": final}
                row = {}
                for stage, label in labels.items():
                    row[stage] = scorers[stage].add(label, gt, name=image_id)
                    save_label_png(out / kind / stage / f"{image_id}.png", label)
                row["seconds"] = round(time.monotonic() - started, 2)
                record["images"].setdefault(image_id, {})[kind] = row
            record["overall"][kind] = {stage: scorers[stage].record({})["miou"] for stage in STAGES}
            record["overall"][kind]["n_images"] = scorers["final"].n_images
    record["protocol"] = {"images": {folder: list(names) for folder, names in groups}, "min_area": min_area,
                          "gt": "SegmentationClass", "ignore_index": 255, "cam": "none", "propagation": "apro"}
    save_json(out / "bench.json", record)
    return record


def table(record: dict) -> str:
    """The record as a plain-text table (mIoU %)."""
    lines = [f"{'image':<14} {'supervision':<9} " + " ".join(f"{s:>11}" for s in STAGES) + "  final>baseline"]
    for image_id, rows in record["images"].items():
        for kind, row in rows.items():
            better = "yes" if row["final"] > row["baseline"] else "NO"
            lines.append(f"{image_id:<14} {kind:<9} " + " ".join(f"{row[s]:>11.2f}" for s in STAGES) + f"  {better}")
    for kind, row in record["overall"].items():
        better = "yes" if row["final"] > row["baseline"] else "NO"
        lines.append(f"{'overall':<14} {kind:<9} " + " ".join(f"{row[s]:>11.2f}" for s in STAGES) +
                     f"  {better}  ({row['n_images']} images)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realdata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "realdata_bench"), help="output folder")
    parser.add_argument("--unofficial", action="store_true", help="add labelme's three VOC photos (not official masks)")
    parser.add_argument("--min-area", type=int, default=100, help="smallest component (pixels) that gets a point/scribble")
    parser.add_argument("--make-seeds", default="", help="Hydra overrides for make_seeds, e.g. 'point.radius=5'")
    parser.add_argument("--propagate", default="", help="Hydra overrides for propagate, e.g. 'propagation.zeta_global=0.03'")
    parser.add_argument("--refine-crf", default="", help="Hydra overrides for refine_crf, e.g. 'crf.iterations=5'")
    args = parser.parse_args(argv)
    if not REALDATA.is_dir():
        print(f"error: {REALDATA}: real-data folder not found", file=sys.stderr)
        return 1
    try:
        record = run(Path(args.out), args.unofficial, args.min_area, shlex.split(args.make_seeds),
                     shlex.split(args.propagate), shlex.split(args.refine_crf))
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(record))
    print(f"written: {Path(args.out) / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
