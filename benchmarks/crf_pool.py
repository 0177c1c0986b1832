"""Benchmark of refine_crf's worker pool (:func:`wsss.parallel.ordered_map`) against the single-process loop.

    python -m benchmarks.crf_pool                            # 40 images per size, pools of 1 and 2 workers
    python -m benchmarks.crf_pool --n 8 --workers 1 2 4 --sizes voc --out results/crf_pool_try

Images, generated (seed ``--seed``): per size, ``--n`` images with ``2..4`` classes present out of VOC's 20
(+ background), scores smooth random fields (a coarse grid, bilinearly upsampled) stored as the stage
stores them (float16 ``(K+1,H,W)``, ``keys.json`` order), and an image whose colours follow the scores'
argmax, with smooth shading and noise, so the bilateral kernel has edges to follow. Sizes: ``minivoc``
(170x135, minivoc's kernels ``conf/crf/minivoc.yaml``) and ``voc`` (500x375, ``conf/crf/voc.yaml``).

Runs, in the same process, on the same images, each the stage's per-image work
(:func:`wsss.crf.refine_image`: scores in, CRF over the classes present, argmax, refined scores out):
``loop`` (``workers=1``, in this process), then ``pool<w>`` for every ``--workers`` value (a
``spawn`` pool of ``w`` processes, its start-up included in the time: each worker imports this module,
which imports the stage's, as the stage's workers do). Each run writes its own output
folder; the labels and the refined score files must equal the loop's, byte for byte (exit status 1 if not).

Printed: seconds, images/s and the ratio to the loop per run and size; written to ``<out>/bench.json``
with the machine's core count. Timings need an idle machine: nothing else running on its cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

import stages.refine_crf  # noqa: F401  spawn workers import the main module: the stage's (torch), timed as it pays it
from wsss.io import save_json, save_npy

REPO_ROOT = Path(__file__).resolve().parent.parent
#: name -> ((H, W), CRF kernels file under conf/crf/)
SIZES = {"minivoc": ((135, 170), "minivoc"), "voc": ((375, 500), "voc")}
NUM_FOREGROUND = 20


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """A smooth random field in [0, 1) of ``shape``: a coarse grid of ``cell``-px cells, bilinearly upsampled."""
    from scipy import ndimage

    coarse = rng.random((shape[0] // cell + 2, shape[1] // cell + 2))
    fine = ndimage.zoom(coarse, cell, order=1)
    return fine[: shape[0], : shape[1]]


def make_images(folder: Path, n: int, shape: tuple[int, int], seed: int) -> tuple[list, dict[str, np.ndarray]]:
    """``n`` images ``(id, (H,W,3) uint8)`` in memory and their scores under ``folder/<id>.npy``; returns the
    images and the keys (class ids of channels 1..K)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 226, size=(NUM_FOREGROUND + 1, 3))
    images, keys = [], {}
    for index in range(n):
        image_id = f"bench_{index:05d}"
        classes = np.sort(rng.choice(np.arange(1, NUM_FOREGROUND + 1), size=int(rng.integers(2, 5)), replace=False))
        scores = np.stack([_smooth(rng, shape, 24) ** 2 for _ in range(len(classes) + 1)])
        scores[0] += 0.3  # background a little more likely, as propagated scores are
        winner = np.concatenate([[0], classes])[scores.argmax(axis=0)]
        shading = _smooth(rng, shape, 48)[..., None] * 40 - 20
        pixels = palette[winner] + shading + rng.normal(0, 8, size=(*shape, 3))
        images.append((image_id, np.clip(pixels, 0, 255).astype(np.uint8)))
        save_npy(folder / f"{image_id}.npy", scores.astype(np.float16))
        keys[image_id] = classes.astype(np.int64)
    return images, keys


def crf_params(name: str):
    """The CRF kernels of ``conf/crf/<name>.yaml``."""
    from omegaconf import OmegaConf

    from wsss.crf import CRFParams

    return CRFParams(**OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "crf" / f"{name}.yaml")))


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "scores").glob("*.npy"))}


def run(out: Path, n: int = 40, workers: Sequence[int] = (1, 2), sizes: Sequence[str] = tuple(SIZES),
        seed: int = 0) -> dict:
    """Run the benchmark; returns (and writes to ``out/bench.json``) the record."""
    from wsss.crf import RefineJob, refine_image
    from wsss.parallel import START_METHOD, ordered_map

    record: dict = {"settings": {"n": n, "workers": list(workers), "seed": seed, "start_method": START_METHOD,
                                 "cores": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count()},
                    "sizes": {}, "identical": True}
    with tempfile.TemporaryDirectory(prefix="wsss_crf_pool_") as tmp:
        for size in sizes:
            shape, kernels = SIZES[size]
            base = Path(tmp) / size
            images, keys = make_images(base / "propagate" / "scores", n, shape, seed)
            params = crf_params(kernels)
            # warm-up: pydensecrf's import and first allocation stay out of the loop's time
            warm = RefineJob(base / "propagate" / "scores", base / "warm", keys, params)
            refine_image(warm, images[0])
            runs = [("loop", 1, False)] + [(f"pool{w}", w, True) for w in workers]
            rows: dict[str, dict] = {}
            reference: tuple[list, dict] | None = None
            for name, count, pool in runs:
                job = RefineJob(base / "propagate" / "scores", base / name, keys, params)
                started = time.perf_counter()
                results = list(ordered_map(refine_image, iter(images), workers=count, context=job,
                                           desc="crf_pool", pool=pool))
                seconds = time.perf_counter() - started
                labels = [label for _, label in results]
                files = _outputs(base / name)
                if reference is None:
                    reference = (labels, files)
                same = (len(labels) == len(reference[0]) and all(np.array_equal(a, b) for a, b in zip(labels, reference[0]))
                        and files == reference[1] and [i for i, _ in results] == [i for i, _ in images])
                record["identical"] &= same
                rows[name] = {"workers": count, "pool": pool, "seconds": round(seconds, 3),
                              "images_per_s": round(n / seconds, 3), "identical_to_loop": same}
            for row in rows.values():
                row["speedup_vs_loop"] = round(rows["loop"]["seconds"] / row["seconds"], 3)
            record["sizes"][size] = {"height": shape[0], "width": shape[1], "crf": kernels, "runs": rows}
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "bench.json", record)
    return record


def table(record: dict) -> str:
    """The record as a plain-text table."""
    lines = [f"{'size':<8} {'run':<7} {'seconds':>8} {'images/s':>9} {'vs loop':>8}  identical"]
    for size, entry in record["sizes"].items():
        for name, row in entry["runs"].items():
            lines.append(f"{size:<8} {name:<7} {row['seconds']:>8.2f} {row['images_per_s']:>9.2f} "
                         f"{row['speedup_vs_loop']:>7.2f}x  {'yes' if row['identical_to_loop'] else 'NO'}")
    settings = record["settings"]
    lines.append(f"({settings['n']} images per size, {settings['cores']} cores usable, start method "
                 f"{settings['start_method']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crf_pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "crf_pool_bench"), help="output folder")
    parser.add_argument("--n", type=int, default=40, help="images per size")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="pool sizes to run after the loop")
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES), help="image sizes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    args = parser.parse_args(argv)
    if args.n < 1 or min(args.workers) < 1:
        parser.error("--n and --workers must be positive")
    record = run(Path(args.out), args.n, args.workers, args.sizes, args.seed)
    print(table(record))
    print(f"written: {Path(args.out) / 'bench.json'}")
    if not record["identical"]:
        print("error: a pool's outputs differ from the loop's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
