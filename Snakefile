# wsss: weakly-supervised segmentation as one DAG of Hydra stages; each method a recipe (conf/recipe/).
#
#   snakemake minivoc_image_pseudolabels                 # the main job: image tags, their default recipe (psa)
#   snakemake minivoc_point_pseudolabels                 # points, their default recipe (random_walk)
#   snakemake minivoc_point_a2gnn_pseudolabels           # one recipe; also _gallery, _deeplab, _maskrcnn
#   snakemake minivoc_point_compare                      # every recipe for points, side by side
#   snakemake -n minivoc_image_pseudolabels              # what would run, and why (each job's reason)
#   snakemake minivoc_image_pseudolabels --config refine_crf="crf.iterations=5"   # one stage's override
#   snakemake voc_image_pseudolabels --config overrides="dataset.root=/data/VOC2012"
#
# Each rule runs `python -m stages.<stage>` with Hydra overrides; params.fingerprint hashes the composed
# config and the stage's code, so changing either reruns that stage and what follows it, nothing upstream.
# Folders (wsss/workflow/layout.py): results/<dataset>/{classifier,cam}, results/<dataset>/<supervision>/
# {seeds,affinity}/<seed rule>, results/<dataset>/<supervision>/<recipe>/<stage>; logs under logs/.

import sys

from wsss.workflow.plan import Plan, recipe_choices

PY = sys.executable
plan = Plan(config)
STAGES = []  # wsss.workflow.rules.StageRule of every stage, appended by the rule files below

wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    supervision="image|point|scribble|box|weakshot",
    recipe=recipe_choices(),
    seeds="[A-Za-z0-9_]+",
    shard="[0-9]+",


include: "rules/setup.smk"
include: "rules/pseudolabels.smk"
include: "rules/retrain.smk"
include: "rules/inspect.smk"
include: "rules/targets.smk"

# The shell line is one literal for every stage, all that differs is in params: Snakemake evaluates a
# rule's shell expression when the job runs, after this loop has moved on. Under --config shards=N a per-image
# stage is N shard jobs (rule <name>_shard, a temporary folder each) and the gather (rule <name>) instead.
for stage in STAGES:
    sharded = stage.sharded(plan)
    rule:
        name: stage.shard_rule_name if sharded else stage.rule_name
        input: **stage.input_functions(plan)
        output: temp(directory(stage.shard_output_path(plan))) if sharded else stage.declared_output(plan)
        log: stage.shard_log if sharded else stage.log
        benchmark: stage.shard_benchmark if sharded else stage.benchmark
        threads: workflow.cores if stage.cores else 1
        resources: **stage.resources()
        conda: "rules/envs/wsss.yaml"
        params:
            launcher=stage.launch(),
            module=f"stages.{stage.name}",
            hydra=stage.hydra(plan, shard=sharded),
            fingerprint=stage.fingerprint(plan, shard=sharded),
        shell: "{params.launcher} -m {params.module} {params.hydra} num_threads={threads} > {log} 2>&1"
    if sharded:
        rule:
            name: stage.rule_name
            input: stage.shard_folders(plan)
            output: stage.declared_output(plan)
            log: stage.log
            conda: "rules/envs/wsss.yaml"
            params:
                hydra=stage.gather_hydra(plan),
                fingerprint=stage.gather_fingerprint(plan),
            shell: f"{PY} -m stages.gather_shards {{params.hydra}} > {{log}} 2>&1"
