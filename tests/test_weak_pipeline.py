"""The point/scribble/box stages end to end (CAM-free, on a tiny VOC folder) and their Snakemake wiring."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.voc_fixture import make_tiny_voc
from wsss.config import REPO_ROOT


def stage(name: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WSSS_PROGRESS_INTERVAL": "60"}
    return subprocess.run([sys.executable, "-m", f"stages.{name}", *overrides], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def add_scribbles(root: Path) -> None:
    """A horizontal scribble through each object's centre (from the point file) and one background scribble."""
    for points in (root / "Points").glob("*.txt"):
        polygons = []
        for line in points.read_text().split("\n"):
            if line.strip():
                x, y, index, _ = line.split()
                name = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                        "train", "tvmonitor"][int(index)]
                polygons.append(f"<polygon><tag>{name}</tag><point><X>{int(x) - 2}</X><Y>{y}</Y></point>"
                                f"<point><X>{int(x) + 2}</X><Y>{y}</Y></point></polygon>")
        polygons.append("<polygon><tag>background</tag><point><X>1</X><Y>0</Y></point><point><X>60</X><Y>0</Y></point>"
                        "</polygon>")
        (root / "Scribbles").mkdir(exist_ok=True)
        (root / "Scribbles" / f"{points.stem}.xml").write_text(f"<annotation>{''.join(polygons)}</annotation>")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = make_tiny_voc(tmp_path_factory.mktemp("voc") / "VOC2012", n_train=2, n_val=1)
    add_scribbles(root)
    return root


@pytest.mark.parametrize("kind", ["box", "scribble", "point"])
def test_cam_free_chain_make_seeds_propagate_refine_crf(tiny, tmp_path, kind, kernels_built):
    common = ["dataset=voc", f"dataset.root={tiny}", f"supervision={kind}", f"paths.results={tmp_path}", "num_threads=1"]
    out = tmp_path / "voc" / kind
    seeds = stage("make_seeds", *common, "seeds=camfree", f"out_dir={out / 'seeds'}")
    assert seeds.returncode == 0, seeds.stderr[-2000:]
    prop = stage("propagate", *common, "cam=none", "propagation=apro", f"seeds_dir={out / 'seeds'}",
                 f"out_dir={out / 'apro'}")
    assert prop.returncode == 0, prop.stderr[-2000:]
    keys = json.loads((out / "apro" / "keys.json").read_text())
    assert set(keys) == {"2000_000000", "2000_000001"} and all(keys.values())
    assert (out / "apro" / "scores" / "2000_000000.npy").is_file()
    crf = stage("refine_crf", *common, f"scores_dir={out / 'apro'}", "crf=a2gnn", f"out_dir={out / 'crf'}")
    assert crf.returncode == 0, crf.stderr[-2000:]
    metrics = json.loads((out / "crf" / "metrics.json").read_text())
    assert metrics["n_images"] == 2 and metrics["miou"] > 50
    assert json.loads((out / "apro" / "metrics.json").read_text())["protocol"]["cam"] == "none"


def root_with_empty(tiny, tmp_path, replaced: str):
    """A VOC root under ``tmp_path`` linking every folder of ``tiny`` but ``replaced``, which is created empty."""
    root = tmp_path / "VOC2012"
    root.mkdir()
    for folder in tiny.iterdir():
        if folder.name != replaced:
            (root / folder.name).symlink_to(folder, target_is_directory=True)
    (root / replaced).mkdir()
    return root


def test_malformed_annotation_stops_make_seeds_with_one_line(tiny, tmp_path):
    broken = root_with_empty(tiny, tmp_path, "Points")
    for name in ("2000_000000", "2000_000001"):
        (broken / "Points" / f"{name}.txt").write_text("5 5 0 1.0\n500 5 0 1.0\n")
    result = stage("make_seeds", "dataset=voc", f"dataset.root={broken}", "supervision=point", "cam=none",
                   f"paths.results={tmp_path}")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Points/2000_000000.txt: line 2: point (500.0, 5.0) lies outside" in line


def test_box_seeds_report_grabcut_fallbacks_in_metrics_and_log(tiny, tmp_path):
    broken = root_with_empty(tiny, tmp_path, "Annotations")
    for xml in (tiny / "Annotations").glob("*.xml"):
        text = xml.read_text()
        if xml.stem == "2000_000000":  # a box over the whole 64x48 image: GrabCut has no background sample
            text = text.replace("</annotation>", "<object><name>person</name><difficult>0</difficult><bndbox>"
                                "<xmin>1</xmin><ymin>1</ymin><xmax>64</xmax><ymax>48</ymax></bndbox></object>"
                                "</annotation>")
        (broken / "Annotations" / xml.name).write_text(text)
    out = tmp_path / "seeds"
    result = stage("make_seeds", "dataset=voc", f"dataset.root={broken}", "supervision=box", "seeds=camfree",
                   f"paths.results={tmp_path}", f"out_dir={out}", "num_threads=1")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "grabcut.json").read_text())
    assert report["boxes"] == 5 and report["filled_box_fallbacks"]["whole_image"] == 1
    assert json.loads((out / "metrics.json").read_text())["grabcut"] == report
    assert "[make_seeds[box]] GrabCut: 5 boxes, " in result.stdout and "whole_image 1" in result.stdout


def test_cam_free_refuses_propagators_needing_affinitynet(tiny, tmp_path):
    result = stage("propagate", "dataset=voc", f"dataset.root={tiny}", "supervision=box", "cam=none",
                   "propagation=a2gnn", f"paths.results={tmp_path}")
    assert result.returncode == 1 and "cam=none: propagator 'a2gnn' needs the classifier" in result.stderr


# ------------------------------------------------------------------ the DAG
def dry_run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--nolock", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M)
            if name != "total"}


def commands(result: subprocess.CompletedProcess, stage_name: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if f"-m stages.{stage_name} " in line]


@pytest.mark.slow
def test_dag_default_point_pipeline_propagates_the_seeds_without_affinitynet():
    result = dry_run("minivoc_point_pseudolabels", "--forcerun", "make_seeds")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = planned(result)
    assert {"make_seeds", "propagate", "refine_crf", "export_pseudolabels"} <= set(jobs)
    assert "train_affinity" not in jobs  # recipe apro: tree + local propagation on the image
    (prop,) = commands(result, "propagate")
    assert "propagation=apro cam=classifier" in prop and "affinity_dir" not in prop
    (crf,) = commands(result, "refine_crf")
    assert "crf=a2gnn" in crf and "scores_dir=results/minivoc/point/apro/propagate" in crf
    assert "out_dir=results/minivoc/point/apro/crf" in crf and "keep_seeds" not in crf


@pytest.mark.slow
def test_dag_point_random_walk_recipe_walks_the_seeds():
    result = dry_run("minivoc_point_random_walk_pseudolabels", "--forcerun", "make_seeds")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "train_affinity" in planned(result)
    (prop,) = commands(result, "propagate")
    assert "propagation=random_walk cam=classifier" in prop and "affinity_dir=results/minivoc/point/affinity/default" in prop


@pytest.mark.slow
def test_dag_psa_keeps_its_seeds_in_the_crf():
    result = dry_run("minivoc_image_pseudolabels", "--forcerun", "make_seeds", "--cores", "3")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (crf,) = commands(result, "refine_crf")
    assert "keep_seeds=true" in crf and "seeds_dir=results/minivoc/image/seeds/default" in crf
    assert crf.rstrip().split(" > ")[0].endswith("num_threads=3")  # every core: its default workers (one per thread)


@pytest.mark.slow
def test_dag_cam_free_box_pipeline_needs_no_classifier(tmp_path):
    root = tmp_path / "VOC2012"
    root.mkdir()  # the plan checks that the root exists, nothing more
    result = dry_run("voc_box_apro_camfree_pseudolabels", "--forceall", "--config", f"overrides=dataset.root={root}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = planned(result)
    assert {"make_seeds", "propagate", "refine_crf", "export_pseudolabels"} <= set(jobs)
    assert not {"train_classifier", "make_cam", "train_affinity"} & set(jobs)
    (seeds,) = commands(result, "make_seeds")
    assert "seeds=camfree" in seeds and "cam_dir=" not in seeds and "out_dir=results/voc/box/seeds/camfree" in seeds
    (prop,) = commands(result, "propagate")
    assert "out_dir=results/voc/box/apro_camfree/propagate" in prop and "propagation=apro cam=none" in prop
    assert "cam_dir=" not in prop and "affinity_dir=" not in prop


def test_fingerprints_follow_the_recipe_and_leave_other_recipes_alone():
    from wsss.workflow.plan import Plan
    from wsss.workflow.rules import StageRule
    from wsss.workflow import layout

    crf = StageRule("refine_crf", layout.recipe_folder("{recipe}", "crf"), scope=layout.RECIPE_SCOPE,
                    inputs={"scores_dir": layout.recipe_folder("{recipe}", "propagate")})
    plain, tuned = Plan({}), Plan({"refine_crf": "crf.iterations=3"})
    walk = {"dataset": "minivoc", "supervision": "point", "recipe": "random_walk"}
    apro = {**walk, "recipe": "apro"}
    image = {"dataset": "minivoc", "supervision": "image", "recipe": "psa"}

    class wildcards(dict):  # what the rules' functions use of Snakemake's wildcards: items() and [key]
        pass

    fingerprint = lambda plan, values: crf.fingerprint(plan)(wildcards(values))  # noqa: E731
    assert fingerprint(plain, walk) != fingerprint(plain, apro)  # their own folders
    assert fingerprint(plain, walk) != fingerprint(plain, image)  # other kernels (crf=a2gnn vs the dataset's)
    assert fingerprint(plain, image) != fingerprint(tuned, image)  # the user's per-stage override
    assert "crf=a2gnn" in crf.hydra(plain)(wildcards(walk)) and "crf=" not in crf.hydra(plain)(wildcards(image))
