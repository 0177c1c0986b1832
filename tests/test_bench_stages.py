"""benchmarks.stages: which cases run with which overrides, and the machinery end to end on one tiny image."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import stages as bench


def test_selecting_a_case_adds_the_cases_it_reads_in_pipeline_order():
    assert [c.name for c in bench.select_cases(["refine_crf"])] == [
        "make_cam", "make_seeds[psa]", "propagate[cam_walk]", "refine_crf"]
    assert [c.name for c in bench.select_cases(["make_seeds[scribble]"])] == ["make_seeds[scribble]"]
    assert {c.name for c in bench.select_cases(["propagate"])} >= {
        "propagate[cam_walk]", "propagate[random_walk]", "propagate[a2gnn]", "propagate[apro]"}
    assert bench.select_cases(None) == list(bench.CASES)
    with pytest.raises(ValueError, match="unknown no_such_stage"):
        bench.select_cases(["no_such_stage"])


def test_every_propagator_of_the_catalog_is_benchmarked():
    from wsss.propagation.catalog import PROPAGATORS

    assert {c.name for c in bench.CASES if c.stage == "propagate"} == {f"propagate[{p}]" for p in PROPAGATORS}


def test_cases_get_the_workflow_s_overrides(tmp_path):
    config, folders = bench.case_overrides(bench.CASE_BY_NAME["propagate[apro]"], bench.SIZES["voc"], tmp_path, "cpu", 2)
    for override in ("dataset=voc", "supervision=point", "propagation=apro", "cam=classifier", "num_threads=2",
                     "device=cpu"):
        assert override in config
    assert f"seeds_dir={tmp_path / 'out' / 'make_seeds_point'}" in folders
    assert f"cam_dir={tmp_path / 'out' / 'make_cam'}" in folders
    config, _ = bench.case_overrides(bench.CASE_BY_NAME["make_seeds[irn]"], bench.SIZES["minivoc"], tmp_path, "cpu", 1)
    assert "seeds=irn" in config and "supervision=image" in config


@pytest.mark.slow
def test_benchmark_writes_seconds_and_memory_per_case(tmp_path):
    out = tmp_path / "stages.json"
    assert bench.main(["--images", "1", "--sizes", "minivoc", "--stages", "make_cam", "make_seeds[scribble]",
                       "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["images"] == 1 and result["warmup_images"] == 1
    assert result["cuda"]["available"] is torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert result["devices"] == ["cpu"]
    assert set(result["sizes"]) == {"minivoc"} and result["sizes"]["minivoc"]["classifier"]["arch"] == "resnet10"
    records = {(r["case"], r["device"]): r for r in result["records"]}
    assert {case for case, _ in records} == {"make_cam", "make_seeds[scribble]"}
    for record in records.values():
        assert record["error"] is None
        assert record["size"] == "minivoc" and record["images"] == 1 and len(record["seconds"]) == 1
        assert record["seconds_per_image"] > 0 and record["seconds_mean"] > 0
        assert record["peak_rss_mib"] > 0 and record["ru_maxrss_mib"] > 0
        assert 0 < record["rss_before_loop_mib"] <= record["peak_rss_mib"]
        assert record["loop_rss_increase_mib"] is not None and record["loop_rss_increase_mib"] >= 0
        assert record["torch_threads"] == 1
        if record["device"] == "cpu":
            assert record["cuda_peak_mib"] is None
        else:
            assert record["cuda_peak_mib"] > 0
    assert "dataset=minivoc" in records[("make_cam", "cpu")]["overrides"]
    assert "supervision=scribble" in records[("make_seeds[scribble]", "cpu")]["overrides"]
