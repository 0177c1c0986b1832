"""Crash-and-resume harness through Snakemake: every stage of the DAG killed with SIGKILL at seeded moments, the
workflow rerun by Snakemake, the outputs compared byte for byte with a run that was never interrupted.

    python -m tests.crash_harness            # the tiny minivoc (as the test runs it), a report on stdout
    python -m tests.crash_harness --full     # full size: the main job at its real settings, every job killed
    python -m tests.crash_harness --out crash.json --seed 7 --targets minivoc_image_pseudolabels

1. **Reference**: the targets run uninterrupted in ``<base>/tree``; every atomic write is logged
   (``WSSS_WRITE_LOG``, :mod:`wsss.faults`) with its stage, job and time. The tree is then moved aside.
2. **Kills**: a fresh copy at the same path (so configs that hold paths agree) runs the same targets under a kill
   plan (``WSSS_CRASH_PLAN``) placed from the reference's writes, seeded: per job (one job of each stage, or every
   job with ``--every-job``) three kills. A per-image stage dies with one of its files complete but not renamed
   (a seeded n-th write), at the rename of its last file, and at a seeded moment in time; a training stage dies
   while writing a checkpoint (the second, so one is there), just after one, and at the rename of its last file.
   Snakemake reruns each killed job (``--retries``: it deletes the job's outputs, as a rerun does; a training
   stage's ``work_dir`` and its checkpoint stay). On top, Snakemake itself and every job it runs are killed
   (SIGKILL to the process group) at seeded moments; the next run unlocks the folder and carries on.
3. **Comparison**: every file under ``results/`` and ``data/`` of both trees, byte for byte; the training
   stages' logs must say from which checkpoint they resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.workflow_copy import copy_workflow

#: the tiny settings (Snakemake ``--config``): 6 train / 2 val images, a few steps of every training stage
TINY_CONFIG = (
    "make_minivoc=n_train=6 n_val=2",
    "train_classifier=train.epochs=2 train.batch_size=3",
    "make_cam=scales=[1.0]",
    "train_affinity=train.epochs=2 train.batch_size=3",
    "train_deeplab=model.arch=resnet10 model.init_from_classifier=false train.iterations=4 train.batch_size=2 "
    "train.crop=32 train.checkpoint_every=1 crf.iterations=2",
    "train_maskrcnn=model.arch=resnet10 model.init_from_classifier=false model.fpn_channels=16 "
    "model.representation_size=32 model.mask_layers=[16] model.min_size_train=[48] model.min_size_test=48 "
    "model.max_size=64 train.iterations=4 train.batch_size=2 train.warmup_iterations=1 train.checkpoint_every=1",
)
TINY_RECIPES = {"psa": {"propagate": "propagation.steps=8"}, "irn": {"propagate": "propagation.steps=8"},
                "random_walk": {"propagate": "propagation.steps=8"}, "a2gnn": {"propagate": "propagation.epochs=2"}}
#: every stage of the DAG: the point recipes side by side (CAMs, both seed rules, AffinityNet, every propagator,
#: CRF, export, comparison), a gallery, both retrainings (with the instance export) and the dataset check
TARGETS = ("minivoc_point_compare", "minivoc_point_gallery", "minivoc_point_deeplab", "minivoc_point_maskrcnn",
           "results/minivoc/check_dataset")
FULL_TARGETS = ("minivoc_image_pseudolabels",)
#: what the comparison leaves out: Snakemake's own state, training scratch (empty once a job ends), the
#: comparison page's table and chart, which report each job's measured seconds and memory, and the training
#: stages' TensorBoard event files, whose names and records hold the wall-clock time and the host name
#: (their curves.png, drawn from the same history, is compared)
NOT_COMPARED = (".snakemake/", "results/.work/", "/compare/table.", "/compare/chart.png", "/tensorboard/")


@dataclass
class Job:
    """One stage job of the reference run: its atomic writes in order, with seconds since the stage started."""

    stage: str
    out_dir: str
    writes: list[tuple[float, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.writes[-1][0] if self.writes else 0.0


def read_write_log(path: Path) -> list[Job]:
    jobs: dict[tuple[str, str], Job] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stage, out_dir, seconds, written = line.split("\t")
        if stage:
            jobs.setdefault((stage, out_dir), Job(stage, out_dir)).writes.append((float(seconds), written))
    return list(jobs.values())


def kill_plan(jobs: list[Job], rng: random.Random, every_job: bool = False) -> list[dict]:
    """Three kills per chosen job (see the module docstring), as ``WSSS_CRASH_PLAN`` entries."""
    chosen: dict[str, Job] = {}
    for job in jobs:
        if every_job:
            chosen[f"{job.stage}:{job.out_dir}"] = job
        else:
            chosen.setdefault(job.stage, job)
    plan = []
    for job in chosen.values():
        # a folder a stage builds under a temporary name (make_minivoc's) is named anew by every run: a glob
        paths = [re.sub(r"[^/]*\.tmp[^/]*", "*", written) for _, written in job.writes]
        base = {"stage": job.stage, "job": job.out_dir}
        checkpoints = [p for p in paths if Path(p).name.startswith("checkpoint")]
        if checkpoints:
            plan += [{**base, "at": f"before_rename:{checkpoints[0]}:{min(2, len(checkpoints))}",
                      "what": "during a checkpoint write"},
                     {**base, "at": f"after_rename:{checkpoints[0]}:1", "what": "just after a checkpoint"}]
        else:
            nth = rng.randrange(max(1, len(paths) - 1))
            plan += [{**base, "at": f"before_rename:{paths[nth]}:1", "what": f"write {nth + 1}/{len(paths)} not renamed"},
                     {**base, "after_s": round(rng.uniform(0.2, 0.9) * job.seconds, 3),
                      "what": "a seeded moment"}]
        plan.append({**base, "at": f"before_rename:{paths[-1]}:1", "what": "the last rename"})
    return plan


def snakemake(tree: Path, targets: tuple[str, ...], config: tuple[str, ...], env: dict[str, str],
              extra: tuple[str, ...] = (), kill_after: float | None = None, timeout: float = 7200,
              cores: int = 2) -> tuple[int, str]:
    """Run Snakemake in ``tree``; ``kill_after``: SIGKILL it and all its jobs (its process group) then."""
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra, *targets]
    if config:
        command += ["--config", *config]
    process = subprocess.Popen(command, cwd=tree, env={**os.environ, **env, "PYTHONPATH": str(tree)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=kill_after if kill_after is not None else timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        return -signal.SIGKILL, out
    return process.returncode, out


def tree_files(tree: Path) -> dict[str, Path]:
    found = {}
    for top in ("results", "data"):
        for path in sorted((tree / top).rglob("*")):
            rel = str(path.relative_to(tree))
            if path.is_file() and not any(skip in f"/{rel}" if skip.startswith("/") else rel.startswith(skip)
                                          for skip in NOT_COMPARED):
                found[rel] = path
    return found


def run_harness(base: Path, targets: tuple[str, ...] = TARGETS, config: tuple[str, ...] = TINY_CONFIG,
                recipes: dict | None = None, seed: int = 19, every_job: bool = False,
                snakemake_kills: int = 2) -> dict:
    """The harness (module docstring) in ``base``; returns the report (kills, files compared, differences)."""
    recipes = TINY_RECIPES if recipes is None else recipes
    rng = random.Random(seed)
    tree, reference = base / "tree", base / "reference"
    for folder in (tree, reference):
        shutil.rmtree(folder, ignore_errors=True)
    progress = {"WSSS_PROGRESS_INTERVAL": "60"}

    copy_workflow(tree, recipes)
    write_log = base / "writes.log"
    write_log.unlink(missing_ok=True)
    start = time.monotonic()
    code, out = snakemake(tree, targets, config, {**progress, "WSSS_WRITE_LOG": str(write_log)})
    reference_seconds = time.monotonic() - start
    if code != 0:
        raise RuntimeError(f"the reference run failed:\n{out[-4000:]}")
    tree.rename(reference)
    jobs = read_write_log(write_log)

    plan = kill_plan(jobs, rng, every_job)
    plan_file = base / "plan.json"
    shutil.rmtree(f"{plan_file}.fired", ignore_errors=True)
    plan_file.write_text(json.dumps(plan, indent=1))
    copy_workflow(tree, recipes)
    env = {**progress, "WSSS_CRASH_PLAN": str(plan_file)}
    retries = ("--retries", str(max(3, 3 * every_job + 1)))
    moments = sorted(round(rng.uniform(0.1, 0.7) * reference_seconds, 1) for _ in range(snakemake_kills))
    runs = []
    for moment in moments:
        code, out = snakemake(tree, targets, config, env, retries, kill_after=moment)
        runs.append({"killed_after_s": moment, "returncode": code})
        if code == 0:
            break
        unlock, out = snakemake(tree, targets, config, env, ("--unlock",))
        if unlock != 0:
            raise RuntimeError(f"snakemake --unlock failed:\n{out[-3000:]}")
    start = time.monotonic()
    code, out = snakemake(tree, targets, config, env, retries)
    runs.append({"killed_after_s": None, "returncode": code, "seconds": round(time.monotonic() - start, 1)})
    if code != 0:
        raise RuntimeError(f"the rerun failed:\n{out[-4000:]}")

    fired = {int(p.name) for p in Path(f"{plan_file}.fired").glob("*")} if Path(f"{plan_file}.fired").is_dir() else set()
    expected, produced = tree_files(reference), tree_files(tree)
    differing = sorted(rel for rel in expected.keys() & produced.keys()
                       if expected[rel].read_bytes() != produced[rel].read_bytes())
    kinds: dict[str, int] = defaultdict(int)
    for rel in expected:
        kinds[Path(rel).suffix or Path(rel).name] += 1
    resumed = {}
    for log in sorted((tree / "logs").rglob("*.log")):
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if "resuming from" in line]
        if lines:
            resumed[str(log.relative_to(tree))] = lines[-1]
    return {
        "seed": seed, "targets": list(targets), "reference_seconds": round(reference_seconds, 1),
        "jobs": len(jobs), "stages": sorted({job.stage for job in jobs}),
        "kills": [{**kill, "fired": index in fired} for index, kill in enumerate(plan)],
        "snakemake_runs": runs,
        "files_compared": len(expected), "file_kinds": dict(sorted(kinds.items())),
        "missing": sorted(expected.keys() - produced.keys()), "extra": sorted(produced.keys() - expected.keys()),
        "differing": differing, "resumed": resumed, "not_compared": list(NOT_COMPARED),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=Path("results/.crash_harness"), help="scratch folder")
    parser.add_argument("--full", action="store_true", help="the main job at its real settings, every job killed")
    parser.add_argument("--targets", nargs="+", help="Snakemake targets (default: every stage, or the main job)")
    parser.add_argument("--every-job", action="store_true", help="kill every job, not one job of each stage")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, help="also save the report as JSON here")
    args = parser.parse_args(argv)
    targets = tuple(args.targets or (FULL_TARGETS if args.full else TARGETS))
    report = run_harness(args.base.resolve(), targets, () if args.full else TINY_CONFIG, {} if args.full else None,
                         args.seed, args.every_job or args.full)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = not (report["missing"] or report["extra"] or report["differing"])
    print(f"{'PASS' if ok else 'FAIL'}: {sum(k['fired'] for k in report['kills'])} stage kills, "
          f"{len(report['snakemake_runs']) - 1} Snakemake kills, {report['files_compared']} files compared, "
          f"{len(report['differing'])} differ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
