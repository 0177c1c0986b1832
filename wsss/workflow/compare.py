"""The comparison of recipes on one dataset and supervision, from the files their runs left.

For each recipe, each stage its pseudo-labels come from (:func:`wsss.workflow.layout.chain_stages`):
the label metrics (``metrics.json``: mIoU, precision, recall, coverage) and the cost (Snakemake's
``benchmark.tsv``: wall seconds, seconds per image, peak resident memory). Stages shared by several
recipes (classifier, CAMs, seeds, AffinityNet) appear in each with ``shared`` naming the others.
:func:`comparison_table` builds the record; :func:`table_markdown` renders it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from wsss.errors import WsssError
from wsss.io import load_json
from wsss.workflow.layout import chain_stages, training_folders
from wsss.weakshot.folds import ClassSets, fold_scores_of_record
from wsss.workflow.recipes import Recipe

def read_benchmark(path: Path) -> dict[str, float] | None:
    """``{"seconds", "max_rss_mb"}`` of a Snakemake ``benchmark.tsv`` (its last run), None when absent."""
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "s" not in rows[-1]:
        raise WsssError(f"{path}: not a Snakemake benchmark file (expected a header with 's' and 'max_rss')")
    row = rows[-1]

    def number(key: str) -> float | None:
        value = row.get(key)
        try:
            return None if value in (None, "", "-", "NA") else float(value)
        except ValueError:
            raise WsssError(f"{path}: column '{key}' must be a number, got {value!r}") from None

    return {"seconds": number("s"), "max_rss_mb": number("max_rss")}


def _metrics(folder: Path) -> dict[str, Any] | None:
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    record = load_json(path)
    if not isinstance(record, dict) or "miou" not in record:
        raise WsssError(f"{path}: not a metrics record (expected a JSON object with 'miou')")
    return record


def comparison_table(results: str | Path, logs: str | Path, dataset: str, supervision: str,
                     recipes: Sequence[Recipe], fold: ClassSets | None = None) -> dict[str, Any]:
    """The comparison record of ``recipes`` (see the module docstring). Weak-shot ``fold``: every stage with label
    metrics (the shared CAMs too) and the final labels also get ``miou_base`` and ``miou_novel`` (the record's
    ``fold`` says which classes).

    ``{"dataset", "supervision", "recipes": [{"name", "description", "final": {miou, precision, recall},
    "per_class_iou": {...}, "stages": [{"stage", "rule", "folder", "miou", "precision", "recall", "coverage",
    "n_images", "seconds", "seconds_per_image", "max_rss_mb", "shared"}, ...]}, ...]}``; values a run has not
    written yet are None.
    """
    results, logs = Path(results), Path(logs)
    chains = {recipe.name: chain_stages(dataset, supervision, recipe) for recipe in recipes}
    users: dict[str, list[str]] = {}
    for name, chain in chains.items():
        for _, _, folder, _ in chain:
            users.setdefault(folder, []).append(name)
    rows = []
    for recipe in recipes:
        stages = []
        final: Mapping[str, Any] = {}
        n_images = None
        for rule, scope, folder, label_folder in chains[recipe.name]:
            metrics = _metrics(results / label_folder) if label_folder is not None else None
            bench = read_benchmark(logs / scope / f"{rule}.benchmark.tsv") or {}
            if metrics and metrics.get("n_images"):
                n_images = metrics["n_images"]
            stages.append({
                "stage": rule, "folder": folder,
                **{key: (metrics or {}).get(key) for key in ("miou", "precision", "recall", "coverage", "n_images")},
                **_set_scores(metrics, fold),
                "seconds": bench.get("seconds"), "max_rss_mb": bench.get("max_rss_mb"),
                "shared": sorted(set(users[folder]) - {recipe.name}),
            })
            if rule == "export_pseudolabels" and metrics:
                final = metrics
        for stage in stages:
            seconds, count = stage["seconds"], stage["n_images"] or n_images
            stage["seconds_per_image"] = None if seconds is None or not count else seconds / count
        rows.append({
            "name": recipe.name, "description": recipe.description,
            "final": {**{key: final.get(key) for key in ("miou", "precision", "recall")},
                      **_set_scores(final or None, fold)},
            "per_class_iou": dict(final.get("per_class_iou") or {}),
            "seconds": sum(s["seconds"] or 0.0 for s in stages),
            "stages": stages,
        })
    record = {"dataset": dataset, "supervision": supervision, "recipes": rows}
    if fold is not None:
        record["fold"] = fold.as_dict()
    return record


def _set_scores(metrics: Mapping[str, Any] | None, fold: ClassSets | None) -> dict[str, Any]:
    """``{"miou_base", "miou_novel"}`` of a metrics record for a weak-shot fold (None values without metrics); {}
    without a fold."""
    if fold is None:
        return {}
    if not metrics:
        return {"miou_base": None, "miou_novel": None}
    scores = fold_scores_of_record(metrics, fold)
    return {"miou_base": scores["miou_base"], "miou_novel": scores["miou_novel"]}


def training_curves(results: str | Path, dataset: str, supervision: str, recipes: Sequence[Recipe]) -> dict[str, Path]:
    """``{folder relative to results: folder}`` of every training stage the recipes' labels depend on, each
    once (the classifier and an AffinityNet are shared), for the page's training curves. Only stages upstream
    of the page's inputs: the page's bytes must not depend on which other jobs happened to run first."""
    folders: dict[str, Path] = {}
    for recipe in recipes:
        for folder in training_folders(dataset, supervision, recipe).values():
            folders.setdefault(folder, Path(results) / folder)
    return folders


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table_markdown(table: Mapping[str, Any]) -> str:
    """The record of :func:`comparison_table` as Markdown: one summary table, then one per recipe."""
    fold = table.get("fold")
    sets_head = " base mIoU | novel mIoU |" if fold else ""
    sets_rule = "---|---|" if fold else ""

    def sets(row: Mapping[str, Any]) -> str:
        return f" {_fmt(row.get('miou_base'), 2)} | {_fmt(row.get('miou_novel'), 2)} |" if fold else ""

    lines = [f"# Recipes on {table['dataset']} / {table['supervision']}", ""]
    if fold:
        lines += [f"Fold {fold['fold']}: novel classes {', '.join(map(str, fold['novel_classes']))}; the others and "
                  "the background are base.", ""]
    lines += [f"| recipe | final mIoU |{sets_head} precision | recall | seconds (whole chain) | method |",
              f"|---|---|{sets_rule}---|---|---|---|"]
    ranked = sorted(table["recipes"], key=lambda r: -(r["final"]["miou"] if r["final"]["miou"] is not None else -1))
    for row in ranked:
        final = row["final"]
        lines.append(f"| {row['name']} | {_fmt(final['miou'], 2)} |{sets(final)} {_fmt(final['precision'])} | "
                     f"{_fmt(final['recall'])} | {_fmt(row['seconds'], 0)} | {row['description']} |")
    for row in table["recipes"]:
        lines += ["", f"## {row['name']}", "",
                  f"| stage | mIoU |{sets_head} precision | recall | coverage | s | s / image | peak MB | shared with |",
                  f"|---|---|{sets_rule}---|---|---|---|---|---|---|"]
        for stage in row["stages"]:
            lines.append(
                f"| {stage['stage']} | {_fmt(stage['miou'], 2)} |{sets(stage)} {_fmt(stage['precision'])} | "
                f"{_fmt(stage['recall'])} | {_fmt(stage['coverage'])} | {_fmt(stage['seconds'], 0)} | "
                f"{_fmt(stage['seconds_per_image'], 3)} | {_fmt(stage['max_rss_mb'], 0)} | {', '.join(stage['shared']) or '–'} |")
    return "\n".join(lines) + "\n"
