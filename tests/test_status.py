"""``python -m stages.status``: done / stale / missing per stage, as Snakemake itself sees it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from wsss.errors import WsssError
from wsss.workflow.status import collect, format_states, parse_rulegraph, parse_summary, resolve_target

WORKFLOW = textwrap.dedent("""
    rule all:
        input: "out/c"

    rule a:
        output: directory("out/a")
        params: level=config.get("level", 1)
        shell: "mkdir -p {output} && echo '{{\\"miou\\": 40.0}}' > {output}/metrics.json"

    rule b:
        input: "out/a"
        output: directory("out/b")
        shell: "mkdir -p {output}/labels && echo '{{\\"miou\\": 55.5}}' > {output}/labels/metrics.json"

    rule c:
        input: "out/b"
        output: directory("out/c")
        shell: "mkdir -p {output}"
""")


def test_resolve_target():
    assert resolve_target(["minivoc_image_pseudolabels"]) == "minivoc_image_pseudolabels"
    assert resolve_target(["voc", "box"]) == "voc_box_pseudolabels"
    assert resolve_target(["minivoc", "image", "gallery"]) == "minivoc_image_gallery"
    assert resolve_target(["minivoc", "point", "apro_camfree"]) == "minivoc_point_apro_camfree_pseudolabels"
    assert resolve_target(["minivoc", "point", "a2gnn", "deeplab"]) == "minivoc_point_a2gnn_deeplab"
    with pytest.raises(WsssError, match="give a target"):
        resolve_target(["a", "b", "c", "d"])


def test_parse_summary_and_rulegraph():
    summary = ("Building DAG of jobs...\noutput_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
               "out/b\t-\tb\t-\tmissing\tupdate pending\nout/a\tMon\ta\t-\tok\tno update\n")
    assert [r["rule"] for r in parse_summary(summary)] == ["b", "a"]
    graph = ('digraph snakemake_dag {\n\t0[label = "all", color = "0.0 0.6 0.85"];\n'
             '\t1[label = "c"];\n\t2[label = "a"];\n\t3[label = "b"];\n\t1 -> 0\n\t3 -> 1\n\t2 -> 3\n}\n')
    order, upstream = parse_rulegraph(graph)
    assert order == ["a", "b", "c", "all"] and upstream["b"] == {"a"}
    with pytest.raises(WsssError, match="no summary table"):
        parse_summary("nothing here")


@pytest.mark.slow
def test_done_stale_missing_from_snakemake(tmp_path):
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    states = collect("all", cwd=tmp_path)
    assert [(s.rule, s.state) for s in states] == [("a", "missing"), ("b", "missing"), ("c", "missing")]

    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "-q"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    states = collect("all", cwd=tmp_path)
    assert [(s.rule, s.state, s.miou) for s in states] == [("a", "done", 40.0), ("b", "done", 55.5),
                                                           ("c", "done", None)]

    # a changed param reruns a (Snakemake's params trigger) and therefore everything after it
    states = collect("all", ["--config", "level=2"], cwd=tmp_path)
    assert [(s.rule, s.state) for s in states] == [("a", "stale"), ("b", "stale"), ("c", "stale")]
    assert "params" in states[0].note and states[1].note == "upstream a reruns"
    text = format_states("all", states)
    assert text.splitlines()[0] == "all: 0 done, 3 stale, 0 missing (would run 3 job(s))"
    assert any(line.split()[:3] == ["b", "stale", "55.50"] for line in text.splitlines())


@pytest.mark.slow
def test_status_cli_reports_snakemake_errors_on_one_line(tmp_path):
    from wsss.workflow.status import main

    (tmp_path / "Snakefile").write_text(WORKFLOW)
    assert main(["no_such_target"], cwd=tmp_path) == 1


def test_a_mask_rcnn_folder_in_a_chain_has_no_miou_rather_than_an_error(tmp_path):
    """A box-trained recipe's chain starts with train_maskrcnn, whose metrics.json is an instance record."""
    from wsss.io import save_json
    from wsss.workflow.status import find_metrics

    save_json(tmp_path / "maskrcnn" / "metrics.json", {"ap50": 40.0, "ap75": 10.0, "AP": 15.0})
    save_json(tmp_path / "boxmasks" / "metrics.json", {"miou": 56.5, "n_images": 3})
    assert find_metrics("maskrcnn", tmp_path) is None
    assert find_metrics("boxmasks", tmp_path) == 56.5
