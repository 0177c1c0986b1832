# Set-up rules: the embedded dataset, the compiled kernels, a dataset check.
#
#   snakemake data/minivoc                 # generate minivoc (VOC 2012 layout) by itself
#   snakemake data/minicoco                # the same dataset in COCO layout
#   snakemake results/voc/check_dataset --config overrides="dataset.root=/data/VOC2012"

from wsss.workflow.plan import kernel_sources
from wsss.workflow.rules import StageRule


rule build_kernels:
    """Compile the propagation kernels once; every propagating stage depends on this."""
    input: kernel_sources()
    output: "kernels/_build/built.txt"
    log: "logs/build_kernels.log"
    benchmark: "logs/build_kernels.benchmark.tsv"
    conda: "envs/wsss.yaml"
    params: python=PY
    shell: "{params.python} -m kernels.build --stamp {output} > {log} 2>&1"


STAGES += [
    # the embedded dataset, generated deterministically from the seed (conf/make_minivoc.yaml)
    StageRule("make_minivoc", "minivoc", scope="minivoc", under="data", cores=False),
    # the same images and masks in COCO layout (conf/dataset/minicoco.yaml: layout coco, data/minicoco)
    StageRule("make_minivoc", "minicoco", scope="minicoco", under="data", cores=False, rule="make_minicoco",
              settings=lambda plan, wildcards: ["dataset=minicoco"]),
    # every problem of a dataset's splits at once (non-zero exit when any)
    StageRule("check_dataset", "{dataset}/check_dataset", scope="{dataset}", cores=False),
]
