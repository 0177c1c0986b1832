"""Recipes (conf/recipe/): resolution and validation, their stage overrides, the plan's targets and datasets,
and the comparison table built from a run's files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from wsss.config import REPO_ROOT
from wsss.errors import WsssError
from wsss.io import save_json
from wsss.workflow import recipes as recipes_module
from wsss.workflow.recipes import load_recipe, recipe_names, recipes_for, resolve_recipe


# ------------------------------------------------------------------ resolution
def test_each_supervision_names_an_applicable_default():
    assert resolve_recipe("image").name == "psa"
    assert resolve_recipe("point").name == "apro"  # geodesic point seeds: no AffinityNet needed
    for supervision in ("scribble", "box"):
        assert resolve_recipe(supervision).name == "random_walk"


def test_explicit_recipes_and_what_applies():
    assert [r.name for r in recipes_for("image")] == ["a2gnn", "apro", "irn", "msa", "psa"]
    assert [r.name for r in recipes_for("point")] == ["a2gnn", "apro", "apro_camfree", "p2seg", "random_walk"]
    camfree = resolve_recipe("box", "apro_camfree")
    assert (camfree.cam, camfree.seeds, camfree.propagation, camfree.crf) == ("none", "camfree", "apro", "a2gnn")
    assert not camfree.uses_classifier and not camfree.uses_affinity
    assert resolve_recipe("image", "irn").seeds == "irn" and resolve_recipe("image", "psa").uses_affinity


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(WsssError, match=r"recipe 'nope': no such recipe .*valid for point: a2gnn, apro, apro_camfree, "
                                        r"p2seg, random_walk$"):
        resolve_recipe("point", "nope")


def test_inapplicable_recipe_is_rejected():
    with pytest.raises(WsssError, match=r"recipe 'apro_camfree': 'apro_camfree' does not apply to supervision 'image' "
                                        r".*valid for image: a2gnn, apro, irn, msa, psa"):
        resolve_recipe("image", "apro_camfree")
    with pytest.raises(WsssError, match="does not apply to supervision 'point'"):
        resolve_recipe("point", "psa")


def test_stage_overrides_of_a_recipe():
    psa = load_recipe("psa")
    assert psa.stage_overrides("propagate") == ["propagation=cam_walk", "cam=classifier"]
    assert psa.stage_overrides("refine_crf") == ["keep_seeds=true"]  # the dataset's own kernels, seeds kept
    assert load_recipe("a2gnn").stage_overrides("refine_crf") == ["crf=a2gnn"]
    assert load_recipe("apro_camfree").stage_overrides("propagate") == ["propagation=apro", "cam=none"]


def test_a_box_trained_recipe_is_a_mask_rcnn_then_its_box_masks():
    from wsss.workflow.layout import chain_folders, chain_stages, training_folders

    apro = load_recipe("apro_boxinst")
    assert apro.box_trained and not apro.uses_classifier and not apro.uses_affinity
    assert apro.stage_overrides("train_maskrcnn") == ["mask_loss.kind=apro"]
    assert load_recipe("filled_boxes").stage_overrides("train_maskrcnn") == ["mask_loss.kind=filled_box"]
    assert load_recipe("psa").stage_overrides("train_maskrcnn") == []
    assert chain_folders("minivoc", "box", apro) == {"boxmasks": "minivoc/box/apro_boxinst/boxmasks",
                                                      "pseudolabels": "minivoc/box/apro_boxinst/pseudolabels"}
    assert [stage[0] for stage in chain_stages("minivoc", "box", apro)] == ["train_maskrcnn", "segment_boxes",
                                                                            "export_pseudolabels"]
    assert training_folders("minivoc", "box", apro) == {"train_maskrcnn": "minivoc/box/apro_boxinst/maskrcnn"}
    assert "apro_boxinst" in [r.name for r in recipes_for("box")] and "apro_boxinst" not in [r.name for r in recipes_for("point")]


def test_p2seg_reads_another_recipes_labels_and_makes_its_instances():
    from wsss.workflow.layout import chain_folders, chain_stages, training_folders
    from wsss.workflow.recipes import label_recipes_for

    p2seg, source = load_recipe("p2seg"), load_recipe("apro_camfree")
    assert (p2seg.labels_from, p2seg.instances, p2seg.labels_recipe) == ("apro_camfree", "p2seg", "apro_camfree")
    assert p2seg.products == ("maskrcnn",)
    assert source.labels_recipe == "apro_camfree" and source.instances == "cues" and "pseudolabels" in source.products
    # its chain, its training stages and its comparison row are its source's
    assert chain_folders("minivoc", "point", p2seg) == chain_folders("minivoc", "point", source)
    assert chain_stages("minivoc", "point", p2seg) == chain_stages("minivoc", "point", source)
    assert training_folders("minivoc", "point", p2seg) == training_folders("minivoc", "point", source)
    assert "p2seg" not in [r.name for r in label_recipes_for("point")]
    with pytest.raises(WsssError, match="does not apply to supervision 'box'"):
        resolve_recipe("box", "p2seg")


def test_msa_reads_its_own_cam_network_and_psas_chain_after_it():
    from wsss.workflow.layout import CAM_NETWORKS, chain_folders, chain_stages, training_folders
    from wsss.workflow.recipes import load_camnet

    msa, psa = load_recipe("msa"), load_recipe("psa")
    assert (msa.cam, msa.seeds, msa.propagation) == ("msa", "msa", "cam_walk") and msa.uses_classifier and msa.uses_affinity
    assert msa.stage_overrides("propagate") == ["propagation=cam_walk", "cam=msa"]
    # its CAMs, seeds and AffinityNet are its own; the rest of the chain is PSA's
    assert chain_folders("minivoc", "image", msa) == {
        "cam": "minivoc/msa/cam", "seeds": "minivoc/image/seeds/msa", "propagate": "minivoc/image/msa/propagate",
        "crf": "minivoc/image/msa/crf", "pseudolabels": "minivoc/image/msa/pseudolabels"}
    assert [stage[0] for stage in chain_stages("minivoc", "image", msa)] == [
        "train_superpixel", "train_classifier_msa", "make_cam_msa", "make_seeds", "train_affinity", "propagate",
        "refine_crf", "export_pseudolabels"]
    assert chain_stages("minivoc", "image", msa)[2][3] == "minivoc/msa/cam/labels"
    assert training_folders("minivoc", "image", msa) == {
        "train_superpixel": "minivoc/superpixel", "train_classifier_msa": "minivoc/msa/classifier",
        "train_affinity": "minivoc/image/affinity/msa"}
    assert [stage[0] for stage in chain_stages("minivoc", "image", psa)][:2] == ["train_classifier", "make_cam"]
    assert CAM_NETWORKS["msa"].rule("make_cam") == "make_cam_msa" and CAM_NETWORKS["classifier"].rule("make_cam") == "make_cam"
    camnet = load_camnet("msa")
    assert set(camnet["train_classifier"]) == {"msa.dcr=true", "msa.ap=true", "msa.ipc=true"}
    assert camnet["make_cam"] == ("upsample=superpixel",)


@pytest.fixture
def conf_copy(tmp_path, monkeypatch) -> Path:
    """A copy of conf/ that the recipe loader reads (its caches cleared before and after)."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf)
    monkeypatch.setattr(recipes_module, "CONF_DIR", conf)
    load_recipe.cache_clear()
    recipes_module.default_recipe_name.cache_clear()
    yield conf
    load_recipe.cache_clear()
    recipes_module.default_recipe_name.cache_clear()


@pytest.mark.parametrize("text, message", [
    ("supervisions: [image]\npropagation: cam_walk\nwalk: 3\n", r"conf/recipe/bad.yaml: Key 'walk' not in 'RecipeFile'"),
    ("supervisions: [image]\npropagation: teleport\n", r"propagation: unknown propagator 'teleport'"),
    ("supervisions: [point]\nseeds: camfree\npropagation: a2gnn\n", r"CAM-free but propagator 'a2gnn' needs the classifier"),
    ("supervisions: [image, point]\nseeds: camfree\npropagation: apro\n", r"image tags need the CAMs"),
    ("supervisions: [pixels]\npropagation: apro\n", r"supervisions: unknown pixels"),
    ("supervisions: [point]\nseeds: magic\npropagation: apro\n", r"seeds: no conf/seeds/magic.yaml"),
    ("supervisions: [point]\npropagation: apro\ncrf: sharp\n", r"crf: no conf/crf/sharp.yaml"),
    ("supervisions: [point]\npropagation: apro\noverrides: {make_cam: [flip=false]}\n",
     r"overrides: 'make_cam' is not a stage of the recipe"),
    ("supervisions: [box]\nmask_loss: dice\ncrf: none\n", r"mask_loss: must be one of filled_box, apro"),
    ("supervisions: [box, point]\nmask_loss: apro\ncrf: none\n", r"a mask_loss recipe trains from boxes, so only \[box\]"),
    ("supervisions: [box]\nmask_loss: apro\n", r"crf: a mask_loss recipe's labels are the network's masks"),
    ("supervisions: [point]\nlabels_from: apro\ninstances: magic\ncrf: none\n", r"instances: must be one of cues, p2seg"),
    ("supervisions: [point]\ninstances: p2seg\ncrf: none\n", r"instances: p2seg learns from points and another"),
    ("supervisions: [point]\nlabels_from: p2seg\ninstances: p2seg\ncrf: none\n",
     r"labels_from: 'p2seg' is not a recipe with pseudo-labels of its own"),
    ("supervisions: [point]\nlabels_from: psa\ninstances: p2seg\ncrf: none\n", r"labels_from: recipe 'psa' does not apply to point"),
    ("supervisions: [point]\nlabels_from: apro\ninstances: p2seg\n", r"crf: a labels_from recipe makes no labels"),
])
def test_a_broken_recipe_file_is_one_line_naming_it(conf_copy, text, message):
    (conf_copy / "recipe" / "bad.yaml").write_text(text)
    with pytest.raises(WsssError, match=message) as error:
        load_recipe("bad")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("train_classifier: [msa.dcr=true]\nmake_seeds: [cam=msa]\n", r"'make_seeds' is not a stage of a CAM network"),
    ("train_classifier: msa.dcr=true\n", r"train_classifier: expected a list of Hydra overrides"),
])
def test_a_broken_camnet_file_is_one_line_naming_it(conf_copy, text, message):
    (conf_copy / "camnet" / "msa.yaml").write_text(text)
    recipes_module.load_camnet.cache_clear()
    try:
        with pytest.raises(WsssError, match=r"^conf/camnet/msa.yaml: " + message) as error:
            recipes_module.load_camnet("msa")
        assert "\n" not in str(error.value)
    finally:
        recipes_module.load_camnet.cache_clear()


def test_a_reserved_name_cannot_be_a_recipe(conf_copy):
    (conf_copy / "recipe" / "seeds.yaml").write_text("supervisions: [point]\npropagation: apro\n")
    with pytest.raises(WsssError, match="'seeds' cannot name a recipe"):
        load_recipe("seeds")
    assert "seeds" in recipe_names()


# ------------------------------------------------------------------ the plan (dry runs on the repo's Snakefile)
def dry_run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def last_line(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).strip().splitlines()[-1]


@pytest.mark.slow
def test_plan_rejects_an_inapplicable_or_unknown_recipe_target_in_one_line():
    result = dry_run("minivoc_point_psa_pseudolabels")
    assert result.returncode == 1
    assert last_line(result).startswith("error: recipe 'psa': 'psa' does not apply to supervision 'point'")
    assert "valid for point: a2gnn, apro, apro_camfree, p2seg, random_walk" in last_line(result)
    result = dry_run("minivoc_box_nope_gallery")
    assert result.returncode == 1 and "recipe 'nope': no such recipe" in last_line(result)
    assert "Traceback" not in result.stderr


def test_msa_plans_the_superpixel_net_its_classifier_and_cams_then_psas_chain_on_them():
    result = dry_run("-p", "minivoc_image_msa_pseudolabels")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M))
    assert {"train_superpixel", "train_classifier_msa", "make_cam_msa", "make_seeds", "train_affinity", "propagate",
            "refine_crf", "export_pseudolabels"} <= planned
    assert not planned & {"train_classifier", "make_cam"}  # the plain classifier is not needed

    def command(stage: str) -> str:
        return next(line for line in result.stdout.splitlines() if f"-m stages.{stage} " in line)
    classifier = command("train_classifier")
    assert {"msa.dcr=true", "msa.ap=true", "msa.ipc=true", "superpixel_dir=results/minivoc/superpixel",
            "out_dir=results/minivoc/msa/classifier"} <= set(classifier.split())
    assert {"upsample=superpixel", "classifier_dir=results/minivoc/msa/classifier",
            "superpixel_dir=results/minivoc/superpixel", "out_dir=results/minivoc/msa/cam"} <= set(command("make_cam").split())
    assert {"seeds=msa", "cam_dir=results/minivoc/msa/cam", "out_dir=results/minivoc/image/seeds/msa"} <= set(
        command("make_seeds").split())
    assert "classifier_dir=results/minivoc/msa/classifier" in command("train_affinity").split()
    assert {"cam=msa", "cam_dir=results/minivoc/msa/cam"} <= set(command("propagate").split())
    # the plain classifier's CAMs upsampled by superpixels: the superpixel net becomes an input of make_cam
    result = dry_run("-p", "results/minivoc/cam", "--config", "make_cam=upsample=superpixel")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"train_superpixel", "train_classifier", "make_cam"} <= set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M))


def test_a_box_trained_recipe_plans_no_seeds_and_trains_from_the_boxes():
    result = dry_run("-p", "minivoc_box_apro_boxinst_pseudolabels", "minivoc_box_apro_boxinst_maskrcnn")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M))
    assert {"train_maskrcnn", "segment_boxes", "export_pseudolabels", "build_kernels"} <= planned
    assert not planned & {"make_cam", "make_seeds", "train_affinity", "propagate", "refine_crf", "export_instances"}
    command = next(line for line in result.stdout.splitlines() if "-m stages.train_maskrcnn" in line)
    assert "mask_loss.kind=apro" in command and "instances_dir=" not in command
    assert "model_dir=results/minivoc/box/apro_boxinst/maskrcnn" in next(
        line for line in result.stdout.splitlines() if "-m stages.segment_boxes" in line)


def test_p2seg_plans_its_network_on_the_source_labels_then_its_instances_and_mask_rcnn():
    result = dry_run("-p", "--forceall", "minivoc_point_p2seg_maskrcnn")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    planned = set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M))
    assert {"export_pseudolabels", "train_p2seg", "export_instances", "train_maskrcnn"} <= planned
    network = next(line for line in lines if "-m stages.train_p2seg" in line)
    assert "labels_dir=results/minivoc/point/apro_camfree/pseudolabels" in network
    assert "out_dir=results/minivoc/point/p2seg/p2seg" in network
    export = next(line for line in lines if "-m stages.export_instances" in line)
    assert "model_dir=results/minivoc/point/p2seg/p2seg" in export and "out_dir=results/minivoc/point/p2seg/instances" in export
    assert "instances_dir=results/minivoc/point/p2seg/instances" in next(
        line for line in lines if "-m stages.train_maskrcnn" in line)
    result = dry_run("minivoc_point_p2seg_pseudolabels")
    assert result.returncode == 1
    assert last_line(result) == ("error: no target 'minivoc_point_p2seg_pseudolabels': recipe 'p2seg' reads the "
                                 "pseudo-labels of 'apro_camfree' and makes only maskrcnn")


@pytest.mark.slow
def test_coco_and_a_named_folder_are_planned_as_targets(tmp_path):
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    # the plan checks that the train split's annotation file is there (its contents are read by the stages)
    (coco / "annotations" / "instances_train2017.json").write_text('{"images": [], "annotations": [], "categories": []}')
    result = dry_run("coco_image_pseudolabels", "--config", f"overrides=dataset.root={coco}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "output: results/coco/image/psa/pseudolabels" in result.stdout
    folder = tmp_path / "MyVOC"
    folder.mkdir()
    result = dry_run("-p", "mine_point_a2gnn_pseudolabels", "mine_point_compare", "--config",
                     f"datasets={{mine: {folder}}}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "output: results/mine/point/a2gnn/pseudolabels" in result.stdout
    (seeds,) = [line for line in result.stdout.splitlines() if "-m stages.make_seeds " in line][:1]
    assert f"dataset=folder dataset.name=mine dataset.root={folder}" in seeds
    missing = dry_run("other_image_pseudolabels", "--config", f"datasets={{other: {tmp_path / 'nowhere'}}}")
    assert missing.returncode == 1 and "dataset root not found" in last_line(missing)


@pytest.mark.slow
def test_paths_results_moves_every_folder(tmp_path):
    result = dry_run("--forceall", "minivoc_point_apro_camfree_pseudolabels", "--config",
                     f"overrides=paths.results={tmp_path}/res paths.data={tmp_path}/dat")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    outputs = re.findall(r"^\s+output: (\S+)", result.stdout, flags=re.M)
    assert f"{tmp_path}/dat/minivoc" in outputs
    assert all(o.startswith((f"{tmp_path}/res/", f"{tmp_path}/dat/")) for o in outputs if "kernels" not in o), outputs


# ------------------------------------------------------------------ the comparison table
def _benchmark(path: Path, seconds: float, rss: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t1\t1\n")


def test_comparison_table_from_hand_made_files(tmp_path):
    from wsss.workflow.compare import comparison_table, table_markdown

    results, logs = tmp_path / "results", tmp_path / "logs"
    walk, camfree = load_recipe("random_walk"), load_recipe("apro_camfree")
    record = lambda miou: {"miou": miou, "precision": miou + 1, "recall": miou - 1, "coverage": 100.0,  # noqa: E731
                           "n_images": 4, "per_class_iou": {"background": miou, "dog": miou / 2}}
    save_json(results / "minivoc/cam/labels/metrics.json", record(40.0))
    save_json(results / "minivoc/point/seeds/default/metrics.json", record(50.0))
    save_json(results / "minivoc/point/seeds/camfree/metrics.json", record(45.0))
    for name, value in (("random_walk", 60.0), ("apro_camfree", 58.0)):
        for stage in ("propagate", "crf", "pseudolabels"):
            save_json(results / f"minivoc/point/{name}/{stage}/metrics.json", record(value + (stage != "propagate")))
    _benchmark(logs / "minivoc/train_classifier.benchmark.tsv", 100.0, 900.0)
    _benchmark(logs / "minivoc/point/seeds_default/make_seeds.benchmark.tsv", 8.0, 300.0)
    _benchmark(logs / "minivoc/point/random_walk/propagate.benchmark.tsv", 2.0, 500.0)
    table = comparison_table(results, logs, "minivoc", "point", [walk, camfree])
    rows = {row["name"]: row for row in table["recipes"]}
    assert rows["random_walk"]["final"] == {"miou": 61.0, "precision": 62.0, "recall": 60.0}
    assert rows["apro_camfree"]["per_class_iou"] == {"background": 59.0, "dog": 29.5}
    stages = {s["stage"]: s for s in rows["random_walk"]["stages"]}
    assert list(stages) == ["train_classifier", "make_cam", "make_seeds", "train_affinity", "propagate", "refine_crf",
                            "export_pseudolabels"]
    assert stages["train_classifier"]["miou"] is None and stages["train_classifier"]["seconds"] == 100.0
    assert stages["train_classifier"]["seconds_per_image"] == 25.0  # 4 images in the chain
    assert stages["make_cam"]["miou"] == 40.0 and stages["make_seeds"]["max_rss_mb"] == 300.0
    assert stages["propagate"]["seconds_per_image"] == 0.5 and stages["refine_crf"]["seconds"] is None
    assert stages["make_seeds"]["shared"] == []  # the CAM-free recipe has its own seeds
    assert [s["stage"] for s in rows["apro_camfree"]["stages"]] == ["make_seeds", "propagate", "refine_crf",
                                                                    "export_pseudolabels"]
    assert rows["random_walk"]["seconds"] == 110.0
    markdown = table_markdown(table)
    summary = markdown.split("\n## ")[0]
    assert summary.index("| random_walk | 61.00 |") < summary.index("| apro_camfree | 59.00 |")  # best first
    assert "| propagate | 60.00 | 61.0 | 59.0 | 100.0 | 2 | 0.500 | 500 | – |" in markdown


def test_comparison_table_reports_a_broken_benchmark_file(tmp_path):
    from wsss.workflow.compare import read_benchmark

    path = tmp_path / "x.benchmark.tsv"
    path.write_text("s\tmax_rss\nfast\t1\n")
    with pytest.raises(WsssError, match=r"x.benchmark.tsv: column 's' must be a number"):
        read_benchmark(path)
    assert read_benchmark(tmp_path / "absent.tsv") is None


def test_comparison_chart_is_a_png_with_a_bar_per_recipe(tmp_path):
    from wsss.viz.chart import COLORS, comparison_chart

    path = comparison_chart(tmp_path / "chart.png", {"a": 80.0, "b": 20.0, "c": None},
                            {"a": {"background": 90.0, "dog": 70.0}, "b": {"background": 30.0}}, ["background", "dog"])
    with Image.open(path) as image:
        pixels = image.convert("RGB")
        colours = {colour for _, colour in pixels.getcolors(maxcolors=1 << 24)}
    assert COLORS[0] in colours and COLORS[1] in colours and COLORS[2] in colours  # bars a, b; legend of c
    assert not list(tmp_path.glob(".*tmp*"))
