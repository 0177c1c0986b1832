"""rules/inspect.smk: gallery targets for every dataset × supervision, the gallery job and its report."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.synthetic_run import make_synthetic_run
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
        for supervision in ("image", "point", "scribble", "box"):
            assert f"{dataset}_{supervision}_gallery" in targets
    assert 'include: "rules/inspect.smk"' in (REPO_ROOT / "Snakefile").read_text().splitlines()


@pytest.mark.slow
def test_gallery_job_and_snakemake_report(tmp_path):
    """The gallery rule on a synthetic run (its pseudolabels given), then ``snakemake --report``."""
    make_synthetic_run(tmp_path, n_images=3)
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        import sys
        from wsss.dag import StageCall, dataset_inputs
        PY = sys.executable
        DATASETS = ["minivoc"]

        rule given_pseudolabels:  # the run's stages exist already; nothing to compute
            output: directory("results/{{dataset}}/{{supervision}}/pseudolabels")
            shell: "exit 1"

        include: "{REPO_ROOT / 'rules' / 'inspect.smk'}"
    """))
    config = ["--config", f"overrides=dataset.root={tmp_path / 'data' / 'minivoc'} report_samples=2"]
    run = snakemake("minivoc_image_gallery", "--cores", "1", *config, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    gallery = tmp_path / "results" / "minivoc" / "image" / "gallery"
    assert (gallery / "index.html").is_file()
    log = (tmp_path / "logs" / "minivoc" / "image" / "make_gallery.log").read_text()
    assert "[make_gallery] 3/3 images (100.0%)" in log

    report = snakemake("minivoc_image_gallery", *config, "--report", "report.html", cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    html = (tmp_path / "report.html").read_text()
    assert "metrics.html" in html and html.count("sample_") >= 2
    assert "Per-stage metrics of the" in html and "One image of the" in html  # captions from rules/report/
    assert "weakly-supervised segmentation as one DAG" in html  # rules/report/workflow.rst
