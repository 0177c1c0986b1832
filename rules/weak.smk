# Point, scribble and box pipelines (included at the end of the Snakefile).
#
#   snakemake minivoc_box_pseudolabels                                   # default: random walk, with CAMs
#   snakemake minivoc_point_pseudolabels --config propagate="propagation=a2gnn"
#   snakemake minivoc_scribble_pseudolabels --config propagate="propagation=apro cam=none"   # no classifier
#   snakemake voc_box_pseudolabels --config overrides="dataset.root=/data/VOC2012" propagate="propagation=apro cam=none"
#   snakemake results/minivoc/point/a2gnn                               # one propagator's output by itself
#
# Chain: make_seeds (point/scribble/box rule of wsss/seeds/) -> [train_affinity] -> propagate
# (results/<dataset>/<supervision>/<propagator>) -> refine_crf (reads the chosen propagator's folder,
# its keys.json included) -> export_pseudolabels (the Snakefile's rule). The propagation group and
# `cam` of conf/propagate.yaml (or --config propagate="...") choose the propagator and the CAM mode;
# make_seeds follows the same `cam` mode. The image pipeline's rules are not touched: the rules here
# only match point|scribble|box (and the a2gnn/apro folders of any supervision), and win over the
# generic ones by ruleorder where both could make a file.

from wsss.weak_dag import (WEAK_CRF, WeakStageCall, chosen_propagator_dir, propagate_inputs, seeds_cam_input,
                           seeds_cam_mode)

ruleorder: make_seeds_weak > make_seeds
ruleorder: propagate_random_walk > random_walk
ruleorder: refine_crf_weak > refine_crf

_SEEDS_CALL = WeakStageCall("make_seeds", config, before=seeds_cam_mode(config), cam_dir="cam")
_PROPAGATE_CALL = WeakStageCall("propagate", config, after=lambda w: [f"propagation={w['propagator']}"],
                                seeds_dir="seeds", cam_dir="cam", affinity_dir="affinity")
_RW_CALL = WeakStageCall("propagate", config, after=lambda w: ["propagation=random_walk"],
                         seeds_dir="seeds", cam_dir="cam", affinity_dir="affinity")
_CRF_CALL = WeakStageCall("refine_crf", config, before=lambda w: list(WEAK_CRF),
                          identity=lambda w: [f"scores_dir={chosen_propagator_dir(config)(w)}"],
                          scores_dir="scores", cam_dir="scores")


rule make_seeds_weak:
    """c'. Seeds from points (discs + CAM evidence), scribbles (polylines) or boxes (GrabCut)."""
    wildcard_constraints: supervision="point|scribble|box"
    input: data=dataset_inputs, cam=seeds_cam_input(config, _SEEDS_CALL)
    output: directory("results/{dataset}/{supervision}/seeds")
    log: "logs/{dataset}/{supervision}/make_seeds.log"
    benchmark: "logs/{dataset}/{supervision}/make_seeds.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=_SEEDS_CALL.hydra,
        fingerprint=_SEEDS_CALL.fingerprint,
    shell: "{PY} -m stages.make_seeds {params.hydra} num_threads={threads} > {log} 2>&1"


rule propagate:
    """e'. A2GNN or APro propagation of the seeds (any supervision)."""
    wildcard_constraints: propagator="a2gnn|apro"
    input:
        data=dataset_inputs, kernels=rules.build_kernels.output[0], seeds="results/{dataset}/{supervision}/seeds",
        cam=propagate_inputs(_PROPAGATE_CALL, "cam"), affinity=propagate_inputs(_PROPAGATE_CALL, "affinity"),
    output: directory("results/{dataset}/{supervision}/{propagator}")
    log: "logs/{dataset}/{supervision}/propagate_{propagator}.log"
    benchmark: "logs/{dataset}/{supervision}/propagate_{propagator}.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=_PROPAGATE_CALL.hydra,
        fingerprint=_PROPAGATE_CALL.fingerprint,
    shell: "{PY} -m stages.propagate {params.hydra} num_threads={threads} > {log} 2>&1"


rule propagate_random_walk:
    """e'. Random walk of the seeds (+ CAMs) on the AffinityNet trained on them (point/scribble/box)."""
    wildcard_constraints: supervision="point|scribble|box"
    input:
        data=dataset_inputs, kernels=rules.build_kernels.output[0], seeds="results/{dataset}/{supervision}/seeds",
        cam=propagate_inputs(_RW_CALL, "cam"), affinity=propagate_inputs(_RW_CALL, "affinity"),
    output: directory("results/{dataset}/{supervision}/random_walk")
    log: "logs/{dataset}/{supervision}/propagate_random_walk.log"
    benchmark: "logs/{dataset}/{supervision}/propagate_random_walk.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=_RW_CALL.hydra,
        fingerprint=_RW_CALL.fingerprint,
    shell: "{PY} -m stages.propagate {params.hydra} num_threads={threads} > {log} 2>&1"


rule refine_crf_weak:
    """f'. Dense CRF (A2GNN's final kernels, WEAK_CRF) on the chosen propagator's scores (keys from its keys.json)."""
    wildcard_constraints: supervision="point|scribble|box"
    input: data=dataset_inputs, scores=chosen_propagator_dir(config)
    output: directory("results/{dataset}/{supervision}/crf")
    log: "logs/{dataset}/{supervision}/refine_crf.log"
    benchmark: "logs/{dataset}/{supervision}/refine_crf.benchmark.tsv"
    threads: workflow.cores
    params:
        hydra=_CRF_CALL.hydra,
        fingerprint=_CRF_CALL.fingerprint,
    shell: "{PY} -m stages.refine_crf {params.hydra} num_threads={threads} > {log} 2>&1"
