"""Does the thread count change the bytes? Two answers, one run:

1. **End to end**: the targets run with ``--cores 1`` and with ``--cores 2`` (each stage gets ``num_threads``
   from its job's threads); every file under ``results/`` and ``data/`` compared, per stage folder.
2. **Stage by stage**: each rule of the chain rerun alone with ``--cores 2`` (``--forcerun R``, its folder the
   target) on the inputs the 1-core run gave it, and its files compared with the 1-core run's. A stage that differs here
   depends on the thread count itself; one that differs only end to end merely inherits its inputs'.

    python -m tests.thread_determinism                             # the tiny minivoc of the crash harness
    python -m tests.thread_determinism --full --out threads.json   # the main job at its real settings
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from tests.crash_harness import NOT_COMPARED, TINY_CONFIG, TINY_RECIPES, snakemake, tree_files
from tests.workflow_copy import copy_workflow
from wsss.workflow import layout

#: the image-level chain of the main job
TARGETS = ("minivoc_image_pseudolabels",)
#: the wildcards of the main job's run (image tags, recipe psa, default seeds)
_RUN = {"dataset": "minivoc", "supervision": "image", "seeds": "default", "recipe": "psa"}
#: its rules in DAG order, each with its output folder (what the stage-by-stage part reruns one at a time)
RULES = {"make_minivoc": "data/minivoc",
         **{rule: f"results/{pattern.format(**_RUN)}" for rule, pattern in (
             ("train_classifier", layout.CLASSIFIER), ("make_cam", layout.CAM), ("make_seeds", layout.SEEDS),
             ("train_affinity", layout.AFFINITY), ("propagate", layout.recipe_folder("{recipe}", "propagate")),
             ("refine_crf", layout.recipe_folder("{recipe}", "crf")),
             ("export_pseudolabels", layout.recipe_folder("{recipe}", "pseudolabels")))}}
_PER_IMAGE_SUBFOLDERS = ("scores", "highres", "stride4", "labels", ".hydra", "thumbs", "JPEGImages",
                         "SegmentationClass", "SegmentationObject", "Annotations", "ImageSets")


def stage_folder(rel: str) -> str:
    """The artifact folder a file belongs to (its folder, less per-image sub-folders such as scores/)."""
    parts = Path(rel).parent.parts
    for sub in _PER_IMAGE_SUBFOLDERS:
        if sub in parts:
            parts = parts[: parts.index(sub)]
    return "/".join(parts)


#: left out beside the crash harness's :data:`NOT_COMPARED`: the configs a stage ran with, which name
#: ``num_threads`` (the one thing meant to differ)
CONFIGS = "/.hydra/"


def compare_trees(first: Path, second: Path) -> dict[str, dict[str, int]]:
    """``{stage folder: {"files": n, "differ": n}}`` over every compared file of both trees (configs aside)."""
    files = [{rel: path for rel, path in tree_files(tree).items() if CONFIGS not in f"/{rel}"}
             for tree in (first, second)]
    folders: dict[str, dict] = defaultdict(lambda: {"files": 0, "differ": 0, "examples": []})
    for rel in sorted(files[0].keys() | files[1].keys()):
        folder = folders[stage_folder(rel)]
        folder["files"] += 1
        one, two = files[0].get(rel), files[1].get(rel)
        if one is None or two is None or one.read_bytes() != two.read_bytes():
            folder["differ"] += 1
            if len(folder["examples"]) < 4:
                folder["examples"].append(_difference(rel, one, two))
    return dict(sorted(folders.items()))


def _difference(rel: str, one: Path | None, two: Path | None) -> str:
    """``rel``, with the largest absolute difference of a score map or the share of differing pixels of a
    label PNG."""
    if one is None or two is None:
        return f"{rel} (only in one tree)"
    try:
        if rel.endswith(".npy"):
            import numpy as np

            a, b = np.load(one), np.load(two)
            if a.shape == b.shape:
                return f"{rel} (max |difference| {float(np.abs(a.astype(np.float64) - b).max()):.2e})"
        if rel.endswith(".png"):
            import numpy as np
            from PIL import Image

            a, b = np.asarray(Image.open(one)), np.asarray(Image.open(two))
            if a.shape == b.shape:
                return f"{rel} ({100 * float((a != b).mean()):.3f} % of pixels differ)"
    except Exception:  # a file that does not load: its name is enough
        pass
    return rel


def _run(tree: Path, targets, config, cores: int, extra: tuple[str, ...] = ()) -> None:
    code, out = snakemake(tree, targets, config, {"WSSS_PROGRESS_INTERVAL": "60"}, extra, cores=cores)
    if code != 0:
        raise RuntimeError(f"snakemake --cores {cores} {' '.join(extra)} failed:\n{out[-4000:]}")


def _restore(source: Path, dest: Path) -> None:
    """Make ``dest``'s results/ and data/ those of ``source`` again (times kept, so nothing looks outdated)."""
    for top in ("results", "data"):
        shutil.rmtree(dest / top, ignore_errors=True)
        if (source / top).exists():
            shutil.copytree(source / top, dest / top, symlinks=True)


def compare_thread_counts(base: Path, targets=TARGETS, config=TINY_CONFIG, recipes=None, rules=RULES) -> dict:
    recipes = TINY_RECIPES if recipes is None else recipes
    trees = {}
    for cores in (1, 2):
        trees[cores] = tree = base / f"cores{cores}"
        shutil.rmtree(tree, ignore_errors=True)
        # every tree is built at the same path (``base/tree``) so configs that hold paths agree
        shutil.rmtree(base / "tree", ignore_errors=True)
        copy_workflow(base / "tree", recipes)
        _run(base / "tree", targets, config, cores)
        (base / "tree").rename(tree)
    end_to_end = compare_trees(trees[1], trees[2])

    by_stage = {}
    shutil.rmtree(base / "tree", ignore_errors=True)
    shutil.copytree(trees[1], base / "tree", symlinks=True)
    for rule, folder in rules.items():
        # the rule's own folder as the target: it reruns, nothing downstream does
        _run(base / "tree", (folder,), config, 2, ("--forcerun", rule))
        by_stage[rule] = {folder: counts for folder, counts in compare_trees(trees[1], base / "tree").items()
                          if counts["differ"]}
        _restore(trees[1], base / "tree")
    return {"targets": list(targets), "not_compared": [*NOT_COMPARED, CONFIGS], "end_to_end": end_to_end,
            "rerun_alone_at_2_threads": by_stage}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=Path("results/.thread_determinism"))
    parser.add_argument("--full", action="store_true", help="the main job at its real settings")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = compare_thread_counts(args.base.resolve(), TARGETS, () if args.full else TINY_CONFIG,
                                   {} if args.full else None)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    differ = [name for name, folder in report["end_to_end"].items() if folder["differ"]]
    own = [rule for rule, folders in report["rerun_alone_at_2_threads"].items() if folders]
    print("end to end: " + ("identical at 1 and 2 threads" if not differ else f"differ: {', '.join(differ)}"),
          file=sys.stderr)
    print("stages that differ on identical inputs: " + (", ".join(own) or "none"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
