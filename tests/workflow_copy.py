"""A copy of the repository's workflow (Snakefile, rules, conf, code, built kernels) in a temporary folder, so
YAML edits and results stay there; recipes can be given extra per-stage overrides (a short walk, a short
A2GNN training) written into the copied recipes' ``overrides:``."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ("Snakefile", "rules", "conf", "stages", "wsss", "kernels", "profiles")


def copy_workflow(dest: Path, recipe_overrides: dict[str, dict[str, str]] | None = None) -> Path:
    """Copy the workflow into ``dest``; ``recipe_overrides``: recipe -> {stage: override} appended to its own."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "cuda_check"))
        elif source.is_file():
            shutil.copy2(source, dest / name)
    for recipe_name, stages in (recipe_overrides or {}).items():
        recipe = dest / "conf" / "recipe" / f"{recipe_name}.yaml"
        fields = yaml.safe_load(recipe.read_text())
        overrides = fields.pop("overrides", None) or {}
        for stage, override in stages.items():
            overrides.setdefault(stage, []).append(override)
        recipe.write_text(yaml.safe_dump(fields, sort_keys=False)
                          + f"overrides: {yaml.safe_dump(overrides, default_flow_style=True).strip()}\n")
    return dest
