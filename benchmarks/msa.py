"""MSA's ablation on one dataset: the classifier with each of MSA's parts alone, all of them and none, each CAM
set upsampled both bilinearly and through the superpixel network, in one run.

    python -m benchmarks.msa                                    # minivoc, the classifier's own schedule
    python -m benchmarks.msa --epochs 10 --out results/benchmarks/msa_e10
    python -m benchmarks.msa --variants plain all --threads 1

For each variant (``plain``: every part off; ``dcr``, ``ap``, ``ipc``: that part alone; ``all``: MSA) it runs
``stages.train_classifier`` with ``msa.<part>=true`` (and ``train.epochs`` when given) into
``<out>/<variant>/classifier``, then ``stages.make_cam`` with ``upsample=superpixel`` into ``<out>/<variant>/cam``,
which scores the same CAMs upsampled through the superpixels (``labels/``) and bilinearly (``bilinear/labels/``).
Every variant starts from the same seed and schedule and reads the same superpixel network (``--superpixel``, a
``train_superpixel`` folder: ``snakemake results/minivoc/superpixel``). A variant whose folders are complete is not
run again (delete them to rerun). Prints a Markdown table, writes ``<out>/msa.json`` and ``<out>/msa.md``.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

from wsss.config import REPO_ROOT
from wsss.io import load_json, save_json, save_text

#: variant -> the parts it turns on
VARIANTS = {"plain": (), "dcr": ("dcr",), "ap": ("ap",), "ipc": ("ipc",), "all": ("dcr", "ap", "ipc")}


def _run(module: str, overrides: list[str], log: Path) -> float:
    """``python -m stages.<module> <overrides>``, its output in ``log``; seconds of wall time. Fails loudly."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as stream:
        done = subprocess.run([sys.executable, "-m", f"stages.{module}", *overrides], cwd=REPO_ROOT, stdout=stream,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"benchmarks.msa: stages.{module} failed ({log}): {tail[0]}")
    return time.perf_counter() - start


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Train and score one variant (or read its finished folders): its row of the table."""
    out = Path(args.out) / name
    parts = VARIANTS[name]
    common = [f"dataset={args.dataset}", f"num_threads={args.threads}"]
    classifier, cams = out / "classifier", out / "cam"
    record_path = out / "timing.json"
    timing = load_json(record_path) if record_path.is_file() else {}
    if not (classifier / "model.pt").is_file():
        overrides = [*common, *(f"msa.{part}=true" for part in parts), f"superpixel_dir={args.superpixel}",
                     f"out_dir={classifier}", f"work_dir={Path(args.out) / '.work' / name}"]
        if args.epochs:
            overrides.append(f"train.epochs={args.epochs}")
        timing["train_seconds"] = _run("train_classifier", overrides, out / "train_classifier.log")
        save_json(record_path, timing)
    if not (cams / "bilinear" / "labels" / "metrics.json").is_file():
        overrides = [*common, "upsample=superpixel", f"classifier_dir={classifier}", f"superpixel_dir={args.superpixel}",
                     f"out_dir={cams}"]
        timing["cam_seconds"] = _run("make_cam", overrides, out / "make_cam.log")
        save_json(record_path, timing)
    history = load_json(classifier / "history.json")
    last = history[-1] if history else {}
    return {
        "variant": name, "parts": list(parts), "epochs": len(history),
        "cam_miou_bilinear": load_json(cams / "bilinear" / "labels" / "metrics.json")["miou"],
        "cam_miou_superpixel": load_json(cams / "labels" / "metrics.json")["miou"],
        "val_map": (last.get("val") or {}).get("map"), "train_loss": last.get("loss"),
        "train_seconds": timing.get("train_seconds"), "cam_seconds": timing.get("cam_seconds"),
        "folder": str(out),
    }


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict], superpixels: dict | None) -> str:
    lines = ["| classifier | epochs | CAM mIoU, bilinear | CAM mIoU, superpixel | superpixel − bilinear | val mAP | "
             "train s | CAM s |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        gain = row["cam_miou_superpixel"] - row["cam_miou_bilinear"]
        lines.append(f"| {row['variant']} | {row['epochs']} | {_fmt(row['cam_miou_bilinear'])} | "
                     f"{_fmt(row['cam_miou_superpixel'])} | {gain:+.2f} | {_fmt(row['val_map'], 1)} | "
                     f"{_fmt(row['train_seconds'], 0)} | {_fmt(row['cam_seconds'], 0)} |")
    if superpixels:
        lines += ["", "| superpixels | boundary recall | undersegmentation error | ASA | per image |",
                  "|---|---|---|---|---|"]
        for method, record in superpixels.get("methods", {}).items():
            lines.append(f"| {method} | {_fmt(record['boundary_recall'])} | {_fmt(record['undersegmentation_error'])} | "
                         f"{_fmt(record['asa'])} | {_fmt(record['superpixels_per_image'], 1)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="minivoc")
    parser.add_argument("--superpixel", default=None, help="train_superpixel folder (default results/<dataset>/superpixel)")
    parser.add_argument("--out", default=None, help="output folder (default results/benchmarks/msa)")
    parser.add_argument("--epochs", type=int, default=0, help="train.epochs of every variant (0: the dataset's schedule)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    args.superpixel = args.superpixel or f"results/{args.dataset}/superpixel"
    args.out = args.out or "results/benchmarks/msa"
    if not (Path(args.superpixel) / "model.pt").is_file():
        raise SystemExit(f"benchmarks.msa: {args.superpixel}/model.pt: no superpixel network "
                         f"(snakemake results/{args.dataset}/superpixel)")
    rows = [run_variant(name, args) for name in args.variants]
    spx_metrics = Path(args.superpixel) / "metrics.json"
    superpixels = load_json(spx_metrics) if spx_metrics.is_file() else None
    table = markdown(rows, superpixels)
    print(table)
    save_json(Path(args.out) / "msa.json", {"dataset": args.dataset, "epochs": args.epochs or None, "rows": rows,
                                            "superpixels": superpixels})
    save_text(Path(args.out) / "msa.md", table + "\n")


if __name__ == "__main__":
    main()
