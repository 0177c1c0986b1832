"""The Snakemake DAG end to end on a tiny minivoc: runs, caches, reruns exactly what a change affects.

The repo's code and config are copied into a temporary folder so YAML edits and
results stay there; kernels are built once by the ``kernels_built`` fixture and
the built library is copied along.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.workflow_copy import copy_workflow
from wsss.config import imports_kernels

TINY = [
    'make_minivoc=n_train=6 n_val=2',
    'train_classifier=train.epochs=1 train.batch_size=3',
    'make_cam=scales=[1.0]',
    'train_affinity=train.epochs=1 train.batch_size=3',
    'train_boundary=train.epochs=1 train.batch_size=3',
]
#: per recipe: a short walk, a short A2GNN training (written into the copied recipes' ``overrides:``)
TINY_RECIPES = {"psa": "propagation.steps=8", "irn": "propagation.steps=8", "random_walk": "propagation.steps=8",
                "a2gnn": "propagation.epochs=2", "retab": "propagation.steps=8"}
TARGET = "minivoc_image_pseudolabels"
STAGES = ["make_minivoc", "train_classifier", "make_cam", "make_seeds", "train_affinity", "propagate",
          "refine_crf", "export_pseudolabels"]

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, extra_config: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir), "WSSS_PROGRESS_INTERVAL": "1"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--config", *TINY, *extra_config]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the jobs a dry run lists ('rule NAME:' blocks)."""
    return set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M)) - {TARGET}


def digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.png")):
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, kernels_built) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("dag"),
                            {name: {"propagate": override} for name, override in TINY_RECIPES.items()})
    result = snakemake(workdir, TARGET)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def test_pipeline_writes_every_stage_with_metrics(pipeline):
    results = pipeline / "results" / "minivoc"
    for folder in ("cam/labels", "image/seeds/default", "image/psa/propagate", "image/psa/crf", "image/psa/pseudolabels"):
        assert (results / folder / "metrics.json").is_file(), folder
    assert len(list((results / "image" / "psa" / "pseudolabels").glob("*.png"))) == 6
    assert (results / "image" / "psa" / "crf" / ".hydra" / "config.yaml").is_file()
    log = (pipeline / "logs" / "minivoc" / "train_classifier.log").read_text()
    assert re.search(r"\d+\.\d+ batches/s", log), log[-500:]


def test_unchanged_rerun_has_nothing_to_do(pipeline):
    result = snakemake(pipeline, "-n", TARGET)
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_rules(result) == set(), result.stdout[-2000:]


def test_override_of_one_stage_reruns_it_and_what_follows(pipeline):
    result = snakemake(pipeline, "-n", TARGET, extra_config=("refine_crf=crf.iterations=3",))
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_rules(result) == {"refine_crf", "export_pseudolabels"}


def test_yaml_edit_of_one_stage_reruns_it_and_what_follows(pipeline):
    # the CRF stage's kernels live in conf/crf/<dataset>.yaml, chosen by conf/refine_crf.yaml
    conf = pipeline / "conf" / "crf" / "minivoc.yaml"
    original = conf.read_text()
    try:
        assert "iterations: 10" in original
        conf.write_text(original.replace("iterations: 10", "iterations: 4"))
        result = snakemake(pipeline, "-n", TARGET)
        assert result.returncode == 0, result.stderr[-2000:]
        assert planned_rules(result) == {"refine_crf", "export_pseudolabels"}
        seeds_conf = pipeline / "conf" / "make_seeds.yaml"
        seeds_original = seeds_conf.read_text()
        seeds_conf.write_text(seeds_original.replace("alpha_high: 32.0", "alpha_high: 24.0"))
        try:
            result = snakemake(pipeline, "-n", TARGET)
            assert planned_rules(result) == {"make_seeds", "train_affinity", "propagate", "refine_crf",
                                             "export_pseudolabels"}
        finally:
            seeds_conf.write_text(seeds_original)
    finally:
        conf.write_text(original)


def test_bad_override_fails_at_dry_run_naming_the_key(pipeline):
    result = snakemake(pipeline, "-n", TARGET, extra_config=("refine_crf=crf.iteratoins=3",))
    assert result.returncode != 0
    assert "iteratoins" in result.stdout + result.stderr


def test_unknown_snakemake_config_key_fails(pipeline):
    result = snakemake(pipeline, "-n", TARGET, extra_config=("refine_cfr=crf.iterations=3",))
    assert result.returncode != 0
    assert "refine_cfr" in result.stdout + result.stderr


def test_same_seed_gives_byte_identical_pseudolabels(pipeline):
    labels = pipeline / "results" / "minivoc" / "image" / "psa" / "pseudolabels"
    before = digest(labels)
    result = snakemake(pipeline, TARGET, "--forcerun", "train_classifier")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert digest(labels) == before


def last_line(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).strip().splitlines()[-1]


def test_config_errors_end_the_plan_with_one_line(pipeline):
    result = snakemake(pipeline, "-n", TARGET, extra_config=("refine_crf=crf.iteratoins=3",))
    assert result.returncode == 1
    assert last_line(result).startswith("error: config refine_crf:") and "iteratoins" in last_line(result)
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr


def test_voc_target_without_root_fails_naming_the_key(pipeline):
    result = snakemake(pipeline, "-n", "voc_image_pseudolabels")
    assert result.returncode == 1
    assert last_line(result) == ('error: dataset \'voc\' has no root: set dataset.root, e.g. --config '
                                 'overrides="dataset.root=/path/to/VOC2012", or in conf/dataset/voc.yaml')
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr


def test_voc_target_with_a_missing_root_fails_before_any_job(pipeline, tmp_path):
    nowhere = tmp_path / "VOC2012"
    result = snakemake(pipeline, "voc_image_pseudolabels", extra_config=(f"overrides=dataset.root={nowhere}",))
    assert result.returncode == 1
    assert last_line(result) == (f"error: dataset.root={nowhere}: dataset root not found (dataset 'voc'; "
                                 'set it with --config overrides="dataset.root=...")')
    assert not (pipeline / "results" / "voc").exists()


def test_voc_target_runs_on_a_voc_layout_folder(pipeline, tmp_path):
    from tests.voc_fixture import make_tiny_voc

    root = make_tiny_voc(tmp_path / "VOC2012", n_train=4, n_val=2)
    small = (f"overrides=dataset.root={root}",
             "train_classifier=backbone.arch=resnet10 backbone.width=8 train.epochs=1 train.batch_size=2 "
             "train.crop=32 train.resize_long=[48,64]",
             "train_affinity=model.feature_dim=8 train.epochs=1 train.batch_size=2 train.crop=32 "
             "train.resize_long=[48,64]")
    result = snakemake(pipeline, "voc_image_pseudolabels", extra_config=small)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    labels = pipeline / "results" / "voc" / "image" / "psa" / "pseudolabels"
    assert sorted(p.stem for p in labels.glob("*.png")) == [f"2000_{i:06d}" for i in range(4)]
    assert (labels / "metrics.json").is_file()
    again = snakemake(pipeline, "-n", "voc_image_pseudolabels", extra_config=small)
    assert again.returncode == 0 and planned_rules(again) - {"voc_image_pseudolabels"} == set(), again.stdout[-2000:]


def test_point_gallery_of_a_real_run_in_headless_chromium(pipeline, tmp_path):
    """``minivoc_point_gallery`` on the real (tiny) point pipeline; the page, opened in headless Chromium,
    shows every stage of the run for each image with no console error."""
    from tests.test_gallery import _chromium, console_errors, parse_dom, run_chromium
    from wsss.viz.gallery import read_gallery_data

    result = snakemake(pipeline, "minivoc_point_gallery")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = pipeline / "results" / "minivoc" / "point" / "apro" / "gallery"
    data = read_gallery_data(out / "data.js")
    stages = [stage["name"] for stage in data["stages"]]
    assert stages == ["cam", "seeds", "propagate", "crf", "pseudolabels"], stages
    ids = sorted(p.stem for p in (pipeline / "results" / "minivoc" / "point" / "apro" / "pseudolabels").glob("*.png"))
    assert sorted(image["id"] for image in data["images"]) == ids and len(ids) == 6
    assert all(all(image["has"]) for image in data["images"])
    if _chromium() is None:
        pytest.skip("no chromium binary installed")
    dom_text, stderr = run_chromium((out / "index.html").as_uri() + "#size=50", tmp_path)
    assert not console_errors(stderr), console_errors(stderr)
    dom = parse_dom(dom_text)
    body = next(attrs for tag, attrs, _ in dom.elements if tag == "body")
    assert body.get("data-ready") == "1" and "data-errors" not in body, dom_text[:2000]
    rows = [attrs["data-id"] for tag, attrs, _ in dom.elements if tag == "tr" and "data-id" in attrs]
    assert sorted(rows) == ids
    for row in rows:
        cells = {attrs.get("data-stage") for tag, attrs, r in dom.elements if r == row and tag == "td"}
        assert set(stages) <= cells, f"{row}: stage columns {cells}"
        images = [attrs for tag, attrs, r in dom.elements if r == row and tag == "img"]
        labels = [attrs for attrs in images if attrs.get("class") == "lab"]
        assert len(labels) == 1 + len(stages)  # ground truth + every label stage
        assert [attrs for attrs in images if attrs.get("class") == "heat"]  # the CAMs of the image's tags
        assert all((out / attrs["src"]).is_file() for attrs in images)


# ------------------------------------------------------------------ recipes side by side
def planned_outputs(result: subprocess.CompletedProcess) -> list[str]:
    """The ``output:`` folders of the jobs a dry run lists."""
    return re.findall(r"^\s+output: (\S+)", result.stdout, flags=re.M)


def test_two_recipes_coexist_and_share_their_common_stages(pipeline):
    results = pipeline / "results" / "minivoc" / "image"
    psa_before = digest(results / "psa" / "pseudolabels")
    plan = snakemake(pipeline, "-n", "minivoc_image_irn_pseudolabels")
    # IRN's seeds differ from PSA's: new seeds, AffinityNet and the recipe's own stages; classifier and CAMs shared
    assert planned_rules(plan) == {"make_seeds", "train_affinity", "propagate", "refine_crf", "export_pseudolabels",
                                   "minivoc_image_irn_pseudolabels"}, plan.stdout[-2000:]
    result = snakemake(pipeline, "minivoc_image_irn_pseudolabels")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list((results / "irn" / "pseudolabels").glob("*.png"))) == 6
    assert (results / "seeds" / "irn" / "metrics.json").is_file() and (results / "affinity" / "irn" / "model.pt").is_file()
    assert digest(results / "psa" / "pseudolabels") == psa_before  # the other recipe's results untouched
    both = snakemake(pipeline, "-n", "minivoc_image_pseudolabels", "minivoc_image_irn_pseudolabels",
                     "minivoc_image_psa_pseudolabels")
    assert planned_rules(both) - {"minivoc_image_irn_pseudolabels", "minivoc_image_psa_pseudolabels"} == set()


@contextlib.contextmanager
def edited(path: Path, old: str, new: str):
    """``path`` with ``old`` replaced by ``new`` for the duration of the block."""
    original = path.read_text()
    assert old in original, f"{path}: no '{old}'"
    path.write_text(original.replace(old, new))
    try:
        yield
    finally:
        path.write_text(original)


def test_editing_one_recipe_reruns_only_its_own_stages(pipeline):
    assert snakemake(pipeline, "minivoc_image_irn_pseudolabels").returncode == 0
    with edited(pipeline / "conf" / "recipe" / "irn.yaml", "overrides: {", "overrides: {refine_crf: [crf.iterations=4], "):
        result = snakemake(pipeline, "-n", "minivoc_image_pseudolabels", "minivoc_image_irn_pseudolabels")
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_rules(result) - {"minivoc_image_irn_pseudolabels"} == {"refine_crf", "export_pseudolabels"}
    assert all("/image/irn/" in output for output in planned_outputs(result)), planned_outputs(result)


def test_switching_the_default_recipe_reruns_nothing_up_to_date(pipeline):
    assert snakemake(pipeline, "minivoc_image_irn_pseudolabels").returncode == 0
    with edited(pipeline / "conf" / "supervision" / "image.yaml", "recipe: psa", "recipe: irn"):
        result = snakemake(pipeline, "-n", "minivoc_image_pseudolabels", "minivoc_image_psa_pseudolabels")
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_rules(result) - {"minivoc_image_psa_pseudolabels"} == set(), result.stdout[-2000:]


def test_point_compare_runs_every_recipe_and_writes_table_chart_and_page(pipeline):
    from wsss.viz.gallery import read_gallery_data

    result = snakemake(pipeline, "minivoc_point_compare")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = pipeline / "results" / "minivoc" / "point" / "compare"
    table = json.loads((out / "table.json").read_text())
    assert [row["name"] for row in table["recipes"]] == ["a2gnn", "apro", "apro_camfree", "random_walk"]
    for row in table["recipes"]:
        assert row["final"]["miou"] is not None and row["stages"][-1]["stage"] == "export_pseudolabels"
        assert all(stage["seconds"] is not None for stage in row["stages"]), row
    camfree = next(row for row in table["recipes"] if row["name"] == "apro_camfree")
    assert [stage["stage"] for stage in camfree["stages"]] == ["make_seeds", "propagate", "refine_crf",
                                                               "export_pseudolabels"]
    walk = next(row for row in table["recipes"] if row["name"] == "random_walk")
    assert next(s for s in walk["stages"] if s["stage"] == "train_affinity")["shared"] == ["a2gnn"]
    assert "| random_walk |" in (out / "table.md").read_text()
    with Image.open(out / "chart.png") as chart:
        assert chart.format == "PNG" and chart.width >= 640
    data = read_gallery_data(out / "data.js")
    assert [stage["name"] for stage in data["stages"]] == ["a2gnn", "apro", "apro_camfree", "random_walk"]
    assert data["pairwise"] is True and len(data["images"]) == 6
    again = snakemake(pipeline, "-n", "minivoc_point_compare", "minivoc_point_pseudolabels",
                      *[f"minivoc_point_{name}_pseudolabels" for name in ("a2gnn", "apro", "apro_camfree", "random_walk")])
    targets = {"minivoc_point_compare", *(f"minivoc_point_{n}_pseudolabels" for n in ("a2gnn", "apro", "apro_camfree",
                                                                                      "random_walk"))}
    assert planned_rules(again) - targets == set(), again.stdout[-2000:]


WEAKSHOT_STAGES = {"make_seeds", "train_boundary", "train_affinity", "propagate", "refine_crf", "export_pseudolabels"}


def test_weakshot_retab_reports_base_and_novel_and_a_fold_change_reruns_only_its_own_stages(pipeline):
    from wsss.io import load_label_png

    targets = ("minivoc_weakshot_pseudolabels", "minivoc_weakshot_compare")
    plan = snakemake(pipeline, "-n", *targets)
    # the classifier and CAMs of the image run are shared: only the weak-shot chain runs
    assert planned_rules(plan) - set(targets) == WEAKSHOT_STAGES | {"compare"}, plan.stdout[-2000:]
    result = snakemake(pipeline, *targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = pipeline / "results" / "minivoc" / "weakshot"
    split = json.loads((results / "seeds" / "default" / "split.json").read_text())
    assert split["fold"] == 0 and split["novel_classes"] == [1, 2, 3, 4, 5]
    base = (results / "seeds" / "default" / "split" / "base.txt").read_text().split()
    novel = (results / "seeds" / "default" / "split" / "novel.txt").read_text().split()
    assert len(base) == split["n_base_images"] and len(base) + len(novel) == 6
    for folder in ("seeds/default", "retab/propagate", "retab/propagate/stage1", "retab/crf", "retab/pseudolabels"):
        scores = json.loads((results / folder / "metrics.json").read_text())["weakshot"]
        assert scores["fold"] == 0 and {"miou_all", "miou_base", "miou_novel"} <= set(scores), folder
    boundary = results / "boundary" / "default"
    maps = [path for path in boundary.glob("*.png") if path.name != "curves.png"]
    assert len(maps) == 6 and "boundary" in json.loads((boundary / "metrics.json").read_text())
    truth = pipeline / "data" / "minivoc" / "SegmentationClass"
    for image_id in base:  # the base images are exported with their ground truth
        assert (load_label_png(results / "retab" / "pseudolabels" / f"{image_id}.png")
                == load_label_png(truth / f"{image_id}.png")).all()
    table = json.loads((results / "compare" / "table.json").read_text())
    assert table["fold"]["fold"] == 0 and table["recipes"][0]["final"]["miou_novel"] is not None
    cam = next(stage for stage in table["recipes"][0]["stages"] if stage["stage"] == "make_cam")
    assert cam["miou_novel"] is not None  # the shared CAMs scored on the fold's class sets too
    assert "novel mIoU" in (results / "compare" / "table.md").read_text()
    again = snakemake(pipeline, "-n", *targets)
    assert planned_rules(again) - set(targets) == set(), again.stdout[-2000:]
    other_fold = snakemake(pipeline, "-n", *targets, extra_config=("overrides=supervision.fold=2",))
    assert other_fold.returncode == 0, other_fold.stderr[-2000:]
    assert planned_rules(other_fold) - set(targets) == WEAKSHOT_STAGES | {"compare"}, other_fold.stdout[-2000:]
    image_chain = snakemake(pipeline, "-n", TARGET, extra_config=("overrides=supervision.fold=2",))
    assert planned_rules(image_chain) == set(), image_chain.stdout[-2000:]  # tags-only chains do not read the fold


def test_every_stage_whose_code_uses_the_kernels_waits_for_their_build(tmp_path):
    # train_affinity (wsss::pair_affinity) once lacked the stamp: under --cores 1 it ran before build_kernels
    from wsss.workflow.rules import KERNELS_STAMP

    workdir = copy_workflow(tmp_path, {})
    result = snakemake(workdir, "-n", "minivoc_image_pseudolabels", "minivoc_point_pseudolabels")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    inputs = {name: text for name, text in re.findall(r"^rule (\w+):\n    input: ([^\n]*)", result.stdout, flags=re.M)}
    using = {name for name in inputs if name in STAGES and imports_kernels(f"stages.{name}")}
    assert {"train_affinity", "propagate"} <= using and "make_minivoc" not in using
    for name, text in inputs.items():
        assert (KERNELS_STAMP in text) == (name in using), (name, text)


def stage_files(folder: Path) -> dict[str, bytes]:
    """Every file of a stage folder but its recorded configs (``.hydra/``: a shard's records its shard)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.relative_to(folder).parts}


def test_sharded_run_writes_the_unsharded_folders_byte_for_byte(pipeline, tmp_path):
    """``--config shards=3``: every per-image stage of the image chain, of weak-shot (split.json, stage1/, the
    base images' ground truth) and the instance export (COCO jsons, mAP scored again) as 3 shard jobs and a gather;
    each folder equals the unsharded run's file for file, PNGs and scores byte for byte, metrics.json from the
    summed confusion matrices; the shard folders are gone and a rerun has nothing to do."""
    targets = (TARGET, "minivoc_weakshot_pseudolabels", "results/minivoc/image/psa/instances")
    reference = snakemake(pipeline, *targets)  # the weak-shot chain when its test did not run, the instances
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]
    workdir = tmp_path / "sharded"
    copy_workflow(workdir, {name: {"propagate": override} for name, override in TINY_RECIPES.items()})
    # the unsharded run's trained networks are reused: its folders hard-linked (every write replaces a file, none
    # changes one in place), Snakemake's records and the built kernels (with their sources' times) copied
    subprocess.run(["rm", "-r", str(workdir / "kernels")], check=True)
    for name, flags in (("data", "-al"), ("results", "-al"), (".snakemake", "-a"), ("kernels", "-a")):
        subprocess.run(["cp", flags, str(pipeline / name), str(workdir / name)], check=True)
    plan = snakemake(workdir, "-n", *targets, extra_config=("shards=3",))
    per_image = {"make_cam", "make_seeds", "propagate", "refine_crf", "export_pseudolabels", "export_instances"}
    assert {f"{name}_shard" for name in per_image} | per_image <= planned_rules(plan), plan.stdout[-2000:]
    assert not {"train_classifier", "make_minivoc"} & planned_rules(plan)
    result = snakemake(workdir, *targets, extra_config=("shards=3",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = Path("results") / "minivoc"
    folders = ["cam", "image/seeds/default", "image/psa/propagate", "image/psa/crf", "image/psa/pseudolabels",
               "weakshot/seeds/default", "weakshot/retab/propagate", "weakshot/retab/crf", "weakshot/retab/pseudolabels",
               "image/psa/instances"]
    for folder in folders:
        reference, sharded = stage_files(pipeline / results / folder), stage_files(workdir / results / folder)
        assert any(name.endswith("metrics.json") for name in reference), folder
        assert sorted(reference) == sorted(sharded), folder
        for name, content in reference.items():
            assert sharded[name] == content, f"{folder}/{name}"
    assert (workdir / results / "weakshot/retab/propagate/stage1/metrics.json").is_file()
    assert (workdir / results / "cam" / ".hydra" / "shards" / "2" / "config.yaml").is_file()
    assert not [p for p in (workdir / "results" / ".shards").rglob("*") if p.is_file()]  # temporary, gathered
    again = snakemake(workdir, "-n", *targets, extra_config=("shards=3",))
    assert planned_rules(again) - set(targets) == set(), again.stdout[-2000:]
    bad = snakemake(workdir, "-n", TARGET, extra_config=("shards=0",))
    assert bad.returncode != 0 and last_line(bad) == ("error: snakemake --config shards=0: expected a whole number "
                                                       "of at least 1")
