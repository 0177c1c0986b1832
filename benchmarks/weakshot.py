"""The weak-shot table: all / base / novel mIoU of each label stage, per fold, from finished runs.

    python -m benchmarks.weakshot results                       # one run folder (the fold its seeds were made for)
    python -m benchmarks.weakshot results_f0 results_f1 ...     # one folder per fold
    python -m benchmarks.weakshot results --dataset minivoc --out results/benchmarks/weakshot.json

A run folder is a ``paths.results`` holding ``<dataset>/weakshot/`` (``snakemake <dataset>_weakshot_pseudolabels``,
its fold from ``--config overrides="supervision.fold=K"``) and, for the baseline, ``<dataset>/image/psa/``
(``snakemake <dataset>_image_pseudolabels``). Rows, in pipeline order:

* ``CAM``: ``make_cam``'s labels (constant background), shared by every supervision;
* ``PSA random walk``: the image-level chain's walk (``image/psa/propagate``), the same CAMs, tags only;
* ``PSA walk + CRF``: that chain's CRF (``image/psa/crf``);
* ``RETAB stage 1`` / ``stage 2`` / ``+ CRF``: ``weakshot/retab/propagate/stage1``, ``propagate``, ``crf``;
* ``RETAB pseudo-labels``: ``weakshot/retab/pseudolabels`` (the base images' ground truth kept).

Base and novel mIoU come from each record's per-class IoU and the fold of the run's ``split.json`` (the image-level
rows are scored on the same class sets). Prints Markdown, writes JSON.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from wsss.io import load_json, save_json
from wsss.weakshot.folds import ClassSets, fold_scores_of_record, read_split

ROWS = (("CAM", "cam/labels"), ("PSA random walk", "image/psa/propagate"), ("PSA walk + CRF", "image/psa/crf"),
        ("RETAB stage 1", "weakshot/retab/propagate/stage1"), ("RETAB stage 2", "weakshot/retab/propagate"),
        ("RETAB stage 2 + CRF", "weakshot/retab/crf"), ("RETAB pseudo-labels (base: ground truth)",
                                                         "weakshot/retab/pseudolabels"))


def fold_table(results: Path, dataset: str) -> dict:
    """``{"fold", "novel_classes", "n_base_images", "n_novel_images", "rows": [{"stage", "folder", "miou_all",
    "miou_base", "miou_novel"}]}`` of one run folder (None values for stages it has not run)."""
    root = results / dataset
    split = read_split(root / "weakshot" / "seeds" / "default")
    sets: ClassSets = split.sets
    rows = []
    for name, folder in ROWS:
        path = root / folder / "metrics.json"
        scores = fold_scores_of_record(load_json(path), sets) if path.is_file() else {}
        rows.append({"stage": name, "folder": str(root / folder),
                     **{key: scores.get(key) for key in ("miou_all", "miou_base", "miou_novel")}})
    return {"fold": sets.fold, "novel_classes": list(sets.novel), "n_base_images": len(split.base),
            "n_novel_images": len(split.novel), "results": str(results), "rows": rows}


def _fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def markdown(tables: list[dict]) -> str:
    lines = []
    for table in tables:
        lines += [f"### Fold {table['fold']} (novel classes {', '.join(map(str, table['novel_classes']))}; "
                  f"{table['n_base_images']} base images, {table['n_novel_images']} novel images)", "",
                  "| stage | all mIoU | base mIoU | novel mIoU |", "|---|---|---|---|"]
        lines += [f"| {row['stage']} | {_fmt(row['miou_all'])} | {_fmt(row['miou_base'])} | {_fmt(row['miou_novel'])} |"
                  for row in table["rows"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="run folders (paths.results), one per fold")
    parser.add_argument("--dataset", default="minivoc")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/weakshot.json"))
    args = parser.parse_args(argv)
    tables = sorted((fold_table(folder, args.dataset) for folder in args.results), key=lambda t: t["fold"])
    print(markdown(tables))
    save_json(args.out, {"dataset": args.dataset, "folds": tables})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
