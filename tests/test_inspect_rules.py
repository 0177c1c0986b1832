"""rules/inspect.smk: gallery targets for every dataset × supervision × recipe, the gallery job and its report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.synthetic_run import make_synthetic_run
from wsss.viz.gallery import read_gallery_data
from wsss.config import REPO_ROOT


def snakemake(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_gallery_targets_exist_for_every_dataset_and_supervision():
    result = snakemake("--list-target-rules")
    assert result.returncode == 0, result.stderr
    targets = set(result.stdout.split())
    for dataset in ("minivoc", "voc"):
        for supervision in ("image", "point", "scribble", "box", "weakshot"):
            assert f"{dataset}_{supervision}_gallery" in targets
    assert 'include: "rules/inspect.smk"' in (REPO_ROOT / "Snakefile").read_text().splitlines()


@pytest.mark.slow
def test_gallery_job_and_snakemake_report(tmp_path):
    """The gallery rule of the real Snakefile on a synthetic run laid out as recipe ``psa`` (only the gallery
    rule allowed: the run's stages exist already), then ``snakemake --report``."""
    run = make_synthetic_run(tmp_path, n_images=3)
    shutil.move(str(run.stages_dir / "seeds"), str(tmp_path / "seeds"))
    (run.stages_dir / "seeds").mkdir()
    shutil.move(str(tmp_path / "seeds"), str(run.stages_dir / "seeds" / "default"))
    for stage, folder in (("random_walk", "propagate"), ("crf", "crf"), ("pseudolabels", "pseudolabels")):
        shutil.move(str(run.stages_dir / stage), str(run.stages_dir / "psa" / folder))
    # training curves of the recipe's classifier (shown) and of a retrained DeepLab (left out)
    from wsss.viz.curves import write_training_curves

    write_training_curves(run.results / "minivoc" / "classifier", [{"epoch": 1, "loss": 0.7, "lr": 0.1}])
    write_training_curves(run.stages_dir / "psa" / "deeplab", [{"iteration": 10, "loss": 1.2, "lr": 0.01}])
    for name in ("Snakefile", "rules", "profiles"):
        source = REPO_ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, tmp_path / name)
    allowed = ["--allowed-rules", "make_gallery", "minivoc_image_gallery"]
    config = ["--config", "make_gallery=report_samples=2", f"overrides=dataset.root={run.data_root}"]
    result = snakemake("minivoc_image_gallery", "--cores", "1", *allowed, *config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    gallery = tmp_path / "results" / "minivoc" / "image" / "psa" / "gallery"
    assert (gallery / "index.html").is_file()
    data = read_gallery_data(gallery / "data.js")
    assert [stage["name"] for stage in data["stages"]] == ["cam", "seeds", "propagate", "crf", "pseudolabels"]
    log = (tmp_path / "logs" / "minivoc" / "image" / "psa" / "make_gallery.log").read_text()
    assert "[make_gallery] 3/3 images (100.0%)" in log
    page = (gallery / "index.html").read_text()
    label = "minivoc__classifier"
    assert f'<img src="curves/{label}.png"' in page and (gallery / "curves" / f"{label}.png").is_file()
    # not the retrained DeepLab's: it runs after the labels, so the page would depend on the order jobs ran in
    assert "minivoc__image__psa__deeplab" not in page and not (gallery / "curves" / "minivoc__image__psa__deeplab.png").exists()

    report = snakemake("minivoc_image_gallery", *allowed, *config, "--report", "report.html", cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    html = (tmp_path / "report.html").read_text()
    assert "metrics.html" in html and html.count("sample_") >= 2
    assert "Per-stage metrics of the" in html and "One image of the" in html  # captions from rules/report/
    assert "weakly-supervised segmentation as one DAG" in html  # rules/report/workflow.rst
