# wsss: weakly-supervised segmentation as one DAG of Hydra stages.
#
#   snakemake minivoc_image_pseudolabels          # whole image-level pipeline on the embedded dataset
#   snakemake -n minivoc_image_pseudolabels       # what would run, and why
#   snakemake minivoc_image_pseudolabels --config refine_crf="crf.iterations=5"   # one stage's override
#   snakemake minivoc_image_pseudolabels --config overrides="seed=1"              # every stage
#   snakemake voc_image_pseudolabels --config overrides="dataset.root=/data/VOC2012"
#
# Each rule runs `python -m stages.<stage>` with Hydra overrides; params.fingerprint hashes the composed
# config and the stage's code, so changing either reruns that stage and what follows it, nothing upstream.
# Artifacts: results/<dataset>/<stage> or results/<dataset>/<supervision>/<stage>; logs: logs/.

import sys
from wsss.dag import DatasetInputs, StageCall, check_snakemake_config, kernel_sources

check_snakemake_config(config)
dataset_inputs = DatasetInputs(config)
PY = sys.executable
DATASETS = ["minivoc", "voc"]
SUPERVISIONS = ["image", "point", "scribble", "box"]

wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    supervision="image|point|scribble|box",


# ---------------------------------------------------------------- targets
for _dataset in DATASETS:
    for _supervision in SUPERVISIONS:
        rule:
            name: f"{_dataset}_{_supervision}_pseudolabels"
            input: f"results/{_dataset}/{_supervision}/pseudolabels"
            default_target: _dataset == "minivoc" and _supervision == "image"


# ---------------------------------------------------------------- set-up
rule make_minivoc:
    """The embedded dataset, generated deterministically in VOC 2012 layout."""
    output: directory("data/minivoc")
    log: "logs/minivoc/make_minivoc.log"
    benchmark: "logs/minivoc/make_minivoc.benchmark.tsv"
    params:
        hydra=StageCall("make_minivoc", config).hydra,
        fingerprint=StageCall("make_minivoc", config).fingerprint,
    shell: "{PY} -m stages.make_minivoc {params.hydra} > {log} 2>&1"


rule build_kernels:
    """Compile the propagation kernels once; every propagating stage depends on this."""
    input: kernel_sources()
    output: "kernels/_build/built.txt"
    log: "logs/build_kernels.log"
    benchmark: "logs/build_kernels.benchmark.tsv"
    shell: "{PY} -m kernels.build --stamp {output} > {log} 2>&1"


rule check_dataset:
    """Every problem of a dataset's splits at once (non-zero exit when any)."""
    input: data=dataset_inputs
    output: directory("results/{dataset}/check_dataset")
    log: "logs/{dataset}/check_dataset.log"
    benchmark: "logs/{dataset}/check_dataset.benchmark.tsv"
    params:
        hydra=StageCall("check_dataset", config).hydra,
        fingerprint=StageCall("check_dataset", config).fingerprint,
    shell: "{PY} -m stages.check_dataset {params.hydra} > {log} 2>&1"


# ---------------------------------------------------------------- image-level pipeline
rule train_classifier:
    """a. Multi-label classifier (its 1x1 head gives the CAMs)."""
    input: data=dataset_inputs
    output: directory("results/{dataset}/classifier")
    log: "logs/{dataset}/train_classifier.log"
    benchmark: "logs/{dataset}/train_classifier.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("train_classifier", config).hydra,
        fingerprint=StageCall("train_classifier", config).fingerprint,
    shell: "{PY} -m stages.train_classifier {params.hydra} num_threads={threads} > {log} 2>&1"


rule make_cam:
    """b. Multi-scale + flip CAMs, full resolution and stride 4."""
    input: data=dataset_inputs, classifier=rules.train_classifier.output[0]
    output: directory("results/{dataset}/cam")
    log: "logs/{dataset}/make_cam.log"
    benchmark: "logs/{dataset}/make_cam.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("make_cam", config, classifier_dir="classifier").hydra,
        fingerprint=StageCall("make_cam", config, classifier_dir="classifier").fingerprint,
    shell: "{PY} -m stages.make_cam {params.hydra} num_threads={threads} > {log} 2>&1"


rule make_seeds:
    """c. Confident seeds (PSA's dense-CRF rule by default)."""
    input: data=dataset_inputs, cam=rules.make_cam.output[0]
    output: directory("results/{dataset}/{supervision}/seeds")
    log: "logs/{dataset}/{supervision}/make_seeds.log"
    benchmark: "logs/{dataset}/{supervision}/make_seeds.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("make_seeds", config, cam_dir="cam").hydra,
        fingerprint=StageCall("make_seeds", config, cam_dir="cam").fingerprint,
    shell: "{PY} -m stages.make_seeds {params.hydra} num_threads={threads} > {log} 2>&1"


rule train_affinity:
    """d. AffinityNet on pairs within radius r drawn from the seeds."""
    input: data=dataset_inputs, classifier=rules.train_classifier.output[0], seeds=rules.make_seeds.output[0]
    output: directory("results/{dataset}/{supervision}/affinity")
    log: "logs/{dataset}/{supervision}/train_affinity.log"
    benchmark: "logs/{dataset}/{supervision}/train_affinity.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("train_affinity", config, classifier_dir="classifier", seeds_dir="seeds").hydra,
        fingerprint=StageCall("train_affinity", config, classifier_dir="classifier", seeds_dir="seeds").fingerprint,
    shell: "{PY} -m stages.train_affinity {params.hydra} num_threads={threads} > {log} 2>&1"


rule random_walk:
    """e. Random walk of the CAMs on the learned affinities (compiled sparse kernel)."""
    input:
        data=dataset_inputs, kernels=rules.build_kernels.output[0],
        cam=rules.make_cam.output[0], affinity=rules.train_affinity.output[0],
    output: directory("results/{dataset}/{supervision}/random_walk")
    log: "logs/{dataset}/{supervision}/random_walk.log"
    benchmark: "logs/{dataset}/{supervision}/random_walk.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("random_walk", config, cam_dir="cam", affinity_dir="affinity").hydra,
        fingerprint=StageCall("random_walk", config, cam_dir="cam", affinity_dir="affinity").fingerprint,
    shell: "{PY} -m stages.random_walk {params.hydra} num_threads={threads} > {log} 2>&1"


rule refine_crf:
    """f. Dense CRF on the propagated scores, restricted to the classes present."""
    input: data=dataset_inputs, scores=rules.random_walk.output[0], cam=rules.make_cam.output[0]
    output: directory("results/{dataset}/{supervision}/crf")
    log: "logs/{dataset}/{supervision}/refine_crf.log"
    benchmark: "logs/{dataset}/{supervision}/refine_crf.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=StageCall("refine_crf", config, scores_dir="scores", cam_dir="cam").hydra,
        fingerprint=StageCall("refine_crf", config, scores_dir="scores", cam_dir="cam").fingerprint,
    shell: "{PY} -m stages.refine_crf {params.hydra} num_threads={threads} > {log} 2>&1"


rule export_pseudolabels:
    """g. Final pseudo-labels as VOC palette PNGs, with metrics.json."""
    input: data=dataset_inputs, source=rules.refine_crf.output[0]
    output: directory("results/{dataset}/{supervision}/pseudolabels")
    log: "logs/{dataset}/{supervision}/export_pseudolabels.log"
    benchmark: "logs/{dataset}/{supervision}/export_pseudolabels.benchmark.tsv"
    params:
        hydra=StageCall("export_pseudolabels", config, source_dir="source").hydra,
        fingerprint=StageCall("export_pseudolabels", config, source_dir="source").fingerprint,
    shell: "{PY} -m stages.export_pseudolabels {params.hydra} > {log} 2>&1"


include: "rules/inspect.smk"
include: "rules/retrain.smk"
include: "rules/weak.smk"
