# Retraining rules (included at the end of the Snakefile): a segmentation network trained on the
# pseudo-labels of a run, scored on the val split.
#
#   snakemake minivoc_image_deeplab       # DeepLabV3 on results/minivoc/image/pseudolabels
#                                         #   -> results/minivoc/image/deeplab/metrics.json (+ metrics_crf.json)
#   snakemake minivoc_image_maskrcnn      # instance pseudo-labels (COCO json) -> Mask R-CNN
#                                         #   -> results/minivoc/image/maskrcnn/metrics.json (ap50, ap75, AP)
#   snakemake voc_box_deeplab --config overrides="dataset.root=/data/VOC2012" train_deeplab="model.pretrained=/w/r101.pth"
#
# Training jobs take every core (`threads`) and one `gpu` resource (`--resources gpu=2` runs two at once;
# without --resources it is not limited). Several GPUs for ONE training job: set WSSS_TRAIN_GPUS=N in the
# environment and the job runs under `torchrun --standalone --nproc_per_node=N` (DDP, batch split across
# GPUs). By hand: torchrun --standalone --nproc_per_node=4 -m stages.train_deeplab dataset=voc ...
# Checkpoints live in results/<dataset>/.work/<supervision>/<stage> (not declared: Snakemake would wipe
# them), so a killed training resumes where it stopped when the job reruns.
# The classifier is an input only when the stage's config starts a trunk from it (model.init_from_classifier:
# true in conf/deeplab/minivoc.yaml and conf/maskrcnn/minivoc.yaml).

import functools
import os

from wsss.config import compose
from wsss.dag import config_overrides

RETRAIN_SUPERVISIONS = ["image", "point", "scribble", "box"]

for _dataset in DATASETS:
    for _supervision in RETRAIN_SUPERVISIONS:
        rule:
            name: f"{_dataset}_{_supervision}_deeplab"
            input: f"results/{_dataset}/{_supervision}/deeplab"

        rule:
            name: f"{_dataset}_{_supervision}_maskrcnn"
            input: f"results/{_dataset}/{_supervision}/maskrcnn"


@functools.lru_cache(maxsize=None)
def _uses_classifier(stage, dataset, supervision):
    overrides = config_overrides(stage, {"dataset": dataset, "supervision": supervision}, config)
    return bool(compose(stage, overrides).model.init_from_classifier)


def _classifier_input(stage):
    """The classifier folder when ``stage``'s composed config starts its trunk from it, else nothing."""
    def inputs(wildcards):
        if _uses_classifier(stage, wildcards.dataset, wildcards.supervision):
            return [f"results/{wildcards.dataset}/classifier"]
        return []
    return inputs


def _launcher():
    """``python`` for one process; ``torchrun`` over WSSS_TRAIN_GPUS processes when that is above 1."""
    gpus = int(os.environ.get("WSSS_TRAIN_GPUS", "1") or 1)
    if gpus > 1:
        return f"{PY} -m torch.distributed.run --standalone --nproc_per_node={gpus}"
    return PY


rule train_deeplab:
    """Retraining (semantic): DeepLabV3 on the pseudo-labels of the train split; val mIoU with and without CRF."""
    input:
        data=dataset_inputs,
        labels="results/{dataset}/{supervision}/pseudolabels",
        classifier=_classifier_input("train_deeplab"),
    output: directory("results/{dataset}/{supervision}/deeplab")
    log: "logs/{dataset}/{supervision}/train_deeplab.log"
    benchmark: "logs/{dataset}/{supervision}/train_deeplab.benchmark.tsv"
    threads: workflow.cores
    resources: gpu=1
    params:
        launcher=_launcher(),
        hydra=StageCall("train_deeplab", config, labels_dir="labels", classifier_dir="classifier").hydra,
        fingerprint=StageCall("train_deeplab", config, labels_dir="labels", classifier_dir="classifier").fingerprint,
    shell: "{params.launcher} -m stages.train_deeplab {params.hydra} num_threads={threads} > {log} 2>&1"


rule export_instances:
    """Instance pseudo-labels: the semantic pseudo-labels cut by the supervision's cues, as a COCO json."""
    input: data=dataset_inputs, labels="results/{dataset}/{supervision}/pseudolabels"
    output: directory("results/{dataset}/{supervision}/instances")
    log: "logs/{dataset}/{supervision}/export_instances.log"
    benchmark: "logs/{dataset}/{supervision}/export_instances.benchmark.tsv"
    params:
        hydra=StageCall("export_instances", config, labels_dir="labels").hydra,
        fingerprint=StageCall("export_instances", config, labels_dir="labels").fingerprint,
    shell: "{PY} -m stages.export_instances {params.hydra} > {log} 2>&1"


rule train_maskrcnn:
    """Retraining (instance): Mask R-CNN on the instance pseudo-labels; val VOC mAP_r (0.5, 0.75) and COCO AP."""
    input:
        data=dataset_inputs,
        instances=rules.export_instances.output[0],
        classifier=_classifier_input("train_maskrcnn"),
    output: directory("results/{dataset}/{supervision}/maskrcnn")
    log: "logs/{dataset}/{supervision}/train_maskrcnn.log"
    benchmark: "logs/{dataset}/{supervision}/train_maskrcnn.benchmark.tsv"
    threads: workflow.cores
    resources: gpu=1
    params:
        launcher=_launcher(),
        hydra=StageCall("train_maskrcnn", config, instances_dir="instances", classifier_dir="classifier").hydra,
        fingerprint=StageCall("train_maskrcnn", config, instances_dir="instances", classifier_dir="classifier").fingerprint,
    shell: "{params.launcher} -m stages.train_maskrcnn {params.hydra} num_threads={threads} > {log} 2>&1"
