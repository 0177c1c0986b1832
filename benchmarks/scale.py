"""Scale: planning time with many shards, and every per-image stage's cost and memory from 1,000 to 10,000 images.

    python -m benchmarks.scale                                   # 10,000 images (1,000 of them as a second split)
    python -m benchmarks.scale --images 200 2000 --shards 1 16 64 --out results/benchmarks/scale_small.json
    python -m benchmarks.scale --root scratch/scale --keep          # keep (and reuse) the generated dataset
    python -m benchmarks.scale --root scratch/scale --keep --only planning   # (or --only stages) one part

Prints a table and writes one JSON (default ``results/benchmarks/scale.json``, atomically).

**Dataset.** ``max(--images)`` small images (width 56–72, height 48–60, the minivoc generator with seed 0 and
every weak label) in VOC layout; each smaller count is the first images of the split, as its own split file
(``train<N>``), so the counts share their images. The classifier and the AffinityNet are untrained, built and
saved as ``benchmarks.stages`` does (a network's cost does not depend on its weights; nothing downloaded).

**Planning.** ``snakemake -n <dataset>_image_pseudolabels --config shards=S`` for each ``--shards`` value, the
dataset named with ``--config datasets=...`` and the results in a scratch folder, so every job is planned:
the command's wall time (a fresh process each: Python, Snakemake, the config compositions, the DAG), median and
slowest of ``--repeats`` runs.

**Stages.** The per-image stages of the main job (recipe ``psa``: ``make_cam``, ``make_seeds``, ``propagate``,
``refine_crf``, ``export_pseudolabels``), each a fresh ``python -m stages.<stage>`` process over the split of
each count, single-threaded (``num_threads=1``, ``workers=1``), inputs from the same stage chain at that count.
Per (stage, count): wall seconds of the process, ``seconds_per_image`` = wall / images, and
``marginal_seconds_per_image`` between counts (the slope, start-up excluded); ``peak_rss_mib`` of the process
(``ru_maxrss`` of the reaped child). Linear cost: the per-image slope equals the per-image cost at the small
count minus its start-up share; flat memory: the peak at 10,000 images close to that at 1,000. Within one run,
``first_fifth_s_per_image`` / ``last_fifth_s_per_image`` (from the stage's progress lines) compare the cost of the
first and the last images: equal when nothing grows with the images done, whatever else loads the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("results/benchmarks/scale.json")
DATASET = "scale"
RECIPE = "psa"
#: the per-image stages of the main job, in order, and the folders each reads (key -> producing stage)
STAGES: tuple[tuple[str, dict[str, str]], ...] = (
    ("make_cam", {}),
    ("make_seeds", {"cam_dir": "make_cam"}),
    ("propagate", {"seeds_dir": "make_seeds", "cam_dir": "make_cam"}),
    ("refine_crf", {"scores_dir": "propagate", "seeds_dir": "make_seeds"}),
    ("export_pseudolabels", {"source_dir": "refine_crf"}),
)


def prepare_dataset(root: Path, images: Sequence[int]) -> dict[str, Any]:
    """Generate ``max(images)`` images and the untrained networks (unless ``root`` has them from an earlier run
    with the same count), and a split file ``train<N>`` per count."""
    from benchmarks.stages import Size, prepare_size

    largest = max(images)
    marker = root / "prepared.json"
    if marker.is_file() and json.loads(marker.read_text()).get("images") == largest:
        info = json.loads(marker.read_text())
    else:
        start = time.perf_counter()
        info = prepare_size(Size(DATASET, "minivoc", (56, 72), (48, 60)), largest, root)
        info.pop("_host", None)
        info.update(images=largest, generate_seconds=round(time.perf_counter() - start, 1))
        marker.write_text(json.dumps(info))
    ids = (root / "data" / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    for count in images:
        (root / "data" / "ImageSets" / "Segmentation" / f"train{count}.txt").write_text("\n".join(ids[:count]) + "\n")
    return info


def planning_seconds(root: Path, shards: int, repeats: int = 3) -> dict[str, Any]:
    """Wall seconds of ``snakemake -n`` of the image pipeline on the generated dataset with ``shards`` shards:
    the median and the slowest of ``repeats`` runs (a fresh process each)."""
    runs = [_plan_once(root, shards) for _ in range(repeats)]
    seconds = sorted(run["seconds"] for run in runs)
    return {"shards": shards, "seconds": seconds[len(seconds) // 2], "max_seconds": seconds[-1], "runs": seconds,
            "jobs": runs[0]["jobs"]}


def _plan_once(root: Path, shards: int) -> dict[str, Any]:
    target = f"{DATASET}_image_pseudolabels"
    config = [f"datasets={{{DATASET}: {root / 'data'}}}", f"shards={shards}",
              f"overrides=paths.results={root / 'plan_results'}"]
    command = [sys.executable, "-m", "snakemake", "-n", "--nolock", target, "--config", *config]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: {shlex.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    totals = [int(line.split()[1]) for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[0] == "total" and line.split()[1].isdigit()]
    return {"seconds": round(seconds, 2), "jobs": totals[-1] if totals else None}


def stage_command(stage: str, count: int, root: Path) -> list[str]:
    """``python -m stages.<stage>`` with the recipe's overrides on split ``train<count>``."""
    from wsss.workflow.recipes import load_recipe

    recipe = load_recipe(RECIPE)
    out = root / "out" / str(count)
    from wsss.workflow.plan import stage_has_supervision

    overrides = ["dataset=minivoc", f"dataset.root={root / 'data'}", f"split=train{count}", "num_threads=1",
                 "device=cpu", "seed=0", f"out_dir={out / stage}", *recipe.stage_overrides(stage)]
    if stage_has_supervision(stage):
        overrides.append("supervision=image")
    if stage == "make_seeds":
        overrides.append(f"seeds={recipe.seeds}")
    if stage in ("make_cam", "make_seeds", "refine_crf"):
        overrides.append("workers=1")
    if stage == "make_cam":
        overrides.append(f"classifier_dir={root / 'classifier'}")
    if stage == "propagate":
        overrides.append(f"affinity_dir={root / 'affinity'}")
    overrides += [f"{key}={out / source}" for key, source in dict(STAGES)[stage].items()]
    return [sys.executable, "-m", f"stages.{stage}", *overrides]


_PROGRESS = re.compile(r"\] (\d+)/(\d+) images .* elapsed (?:(\d+)h)?(?:(\d+)m)?(\d+)s")


def progress_rates(log: Path) -> dict[str, float] | None:
    """Seconds per image over the first and the last fifth of a stage's run, from its progress lines
    (``[stage] 1449/10000 images (14.5%) ... elapsed 1m41s``): equal when the cost per image does not grow with
    the images already done (a steady machine load cancels out; start-up is outside both)."""
    points = []
    for line in log.read_text().splitlines():
        match = _PROGRESS.search(line)
        if match:
            done, total, hours, minutes, seconds = (int(v or 0) for v in match.groups())
            points.append((done, hours * 3600 + minutes * 60 + seconds, total))
    if len(points) < 4:
        return None
    total = points[0][2]

    def rate(lo: float, hi: float) -> float | None:
        inside = [(n, t) for n, t, _ in points if lo * total <= n <= hi * total]
        if len(inside) < 3 or inside[-1][0] == inside[0][0]:
            return None  # too short a run for a rate of its own (seconds are whole in the progress lines)
        (n0, t0), (n1, t1) = inside[0], inside[-1]
        return round((t1 - t0) / (n1 - n0), 5)

    first, last = rate(0.0, 0.2), rate(0.8, 1.0)
    return None if first is None or last is None else {"first_fifth_s_per_image": first,
                                                        "last_fifth_s_per_image": last}


def run_stage(stage: str, count: int, root: Path) -> dict[str, Any]:
    """Run one stage process; its wall seconds and peak resident set (the reaped child's ``ru_maxrss``)."""
    command = stage_command(stage, count, root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    log = root / "logs" / f"{stage}.{count}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {stage} on {count} images failed; see {log}")
    return {"stage": stage, "images": count, "seconds": round(seconds, 2),
            "seconds_per_image": round(seconds / count, 5), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            **(progress_rates(log) or {})}


def run_benchmark(images: Sequence[int], shards: Sequence[int], root: Path, only: str | None = None,
                  repeats: int = 3) -> dict[str, Any]:
    images = sorted(set(images))
    info = prepare_dataset(root, images)
    planning = [planning_seconds(root, count, repeats) for count in shards] if only != "stages" else []
    for row in planning:
        print(f"[scale] planning {row['jobs']} jobs ({row['shards']} shards): median {row['seconds']:.2f} s, "
              f"slowest {row['max_seconds']:.2f} s", flush=True)
    stages = []
    for count in (images if only != "planning" else []):
        for stage, _ in STAGES:
            row = run_stage(stage, count, root)
            print(f"[scale] {stage} on {count} images: {row['seconds']:.1f} s, peak {row['peak_rss_mib']:.0f} MiB",
                  flush=True)
            stages.append(row)
    for row in stages:  # the slope from the next smaller count
        smaller = [r for r in stages if r["stage"] == row["stage"] and r["images"] < row["images"]]
        if smaller:
            base = max(smaller, key=lambda r: r["images"])
            row["marginal_seconds_per_image"] = round((row["seconds"] - base["seconds"])
                                                      / (row["images"] - base["images"]), 5)
            row["peak_rss_ratio"] = round(row["peak_rss_mib"] / base["peak_rss_mib"], 3)
    return {"dataset": info, "images": images, "planning": planning, "stages": stages,
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}}


def format_table(result: dict[str, Any]) -> str:
    lines = ["| shards | jobs planned | `snakemake -n` seconds (median) | slowest |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['shards']} | {r['jobs']} | {r['seconds']:.2f} | {r['max_seconds']:.2f} |" for r in result["planning"]]
    lines += ["", "| stage | images | seconds | s/image | marginal s/image | peak RSS MiB | RSS vs smaller |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["stages"]:
        marginal = f"{r['marginal_seconds_per_image']:.4f}" if "marginal_seconds_per_image" in r else ""
        ratio = f"{r['peak_rss_ratio']:.2f}" if "peak_rss_ratio" in r else ""
        lines.append(f"| {r['stage']} | {r['images']} | {r['seconds']:.1f} | {r['seconds_per_image']:.4f} | "
                     f"{marginal} | {r['peak_rss_mib']:.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--root", type=Path, help="working folder (default: a temporary one, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", choices=["planning", "stages"], help="run one part (the dataset is made either way)")
    parser.add_argument("--repeats", type=int, default=3, help="planning runs per shard count (median and slowest)")
    args = parser.parse_args(argv)
    if min(args.images) < 1 or min(args.shards) < 1:
        parser.error("--images and --shards take whole numbers of at least 1")
    scratch = None
    root = args.root
    if root is None:
        scratch = tempfile.TemporaryDirectory(prefix="wsss-scale-")
        root = Path(scratch.name)
    root.mkdir(parents=True, exist_ok=True)
    try:
        result = run_benchmark(args.images, args.shards, root.resolve(), args.only, args.repeats)
    finally:
        if scratch is not None and not args.keep:
            scratch.cleanup()
    from wsss.io import save_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_json(args.out, result)
    print(format_table(result))
    print(f"[scale] written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
