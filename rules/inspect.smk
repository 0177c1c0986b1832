# Inspection rules (included at the end of the Snakefile): the HTML gallery of every label stage of a run,
# and the files `snakemake --report` shows (per-stage metrics table, sample figures).
#
#   snakemake minivoc_image_gallery                         # -> results/minivoc/image/gallery/index.html
#   snakemake minivoc_image_gallery --report report.html    # Snakemake report with metrics + sample overlays
#   python -m stages.status minivoc_image_pseudolabels      # done / stale / missing per stage, with mIoU
#
# The gallery depends on the run's pseudolabels folder (so the whole pipeline runs first) and on every
# sibling label folder that exists when the DAG is built (seeds, random_walk, crf, a2gnn, ...), so it is
# rebuilt when any of them changes.

from wsss.viz.gallery import asset_files
from wsss.viz.stages import stage_input_dirs

report: "report/workflow.rst"

GALLERY_SUPERVISIONS = ["image", "point", "scribble", "box"]

for _dataset in DATASETS:
    for _supervision in GALLERY_SUPERVISIONS:
        rule:
            name: f"{_dataset}_{_supervision}_gallery"
            input: f"results/{_dataset}/{_supervision}/gallery"


def _report_part(wildcards):
    """Report subcategory of a gallery file: the metrics table or the sample figures."""
    return "metrics" if wildcards.name == "metrics" else "sample figures"


rule make_gallery:
    """Inspection: HTML gallery (photo, GT, CAMs, seeds, every propagation, pseudo-label) + report files."""
    input:
        data=dataset_inputs,
        pseudolabels="results/{dataset}/{supervision}/pseudolabels",
        stages=lambda wildcards: stage_input_dirs("results", wildcards.dataset, wildcards.supervision),
        assets=asset_files(),
    output:
        report(
            directory("results/{dataset}/{supervision}/gallery"),
            patterns=["report/{name}.html", "report/{name}.png"],
            caption="report/gallery.rst",
            category="{dataset} {supervision}",
            subcategory=_report_part,
            labels={"dataset": "{dataset}", "supervision": "{supervision}", "figure": "{name}"},
        ),
    log: "logs/{dataset}/{supervision}/make_gallery.log"
    benchmark: "logs/{dataset}/{supervision}/make_gallery.benchmark.tsv"
    params:
        hydra=StageCall("make_gallery", config).hydra,
        fingerprint=StageCall("make_gallery", config).fingerprint,
    shell: "{PY} -m stages.make_gallery {params.hydra} > {log} 2>&1"
