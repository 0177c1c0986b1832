# The pseudo-label chain of every recipe (conf/recipe/<name>.yaml):
#
#   classifier -> CAMs ------------------------------------- shared by every supervision and recipe
#   (MSA, seed rules with cam: msa: superpixel net -> MSA classifier -> MSA CAMs, shared the same way)
#   seeds/<seeds> -> affinity/<seeds> ---------------------- shared by the recipes with the same seed rule
#   (weak-shot: seeds/<seeds> -> boundary/<seeds> -> affinity/<seeds>, RETAB)
#   <recipe>/propagate -> <recipe>/crf -> <recipe>/pseudolabels   the recipe's own
#
#   snakemake results/minivoc/point/seeds/default          # one stage's folder by itself
#   snakemake minivoc_point_apro_camfree_pseudolabels      # CAM-free: no classifier, no CAMs
#
# Conditional inputs (CAMs only where the seed rule or the propagator reads them, the AffinityNet only
# for the propagators that walk on it): wsss/workflow/layout.py; the propagators: wsss/propagation/catalog.py.

from wsss.workflow import layout
from wsss.workflow.rules import StageRule

_MSA = layout.CAM_NETWORKS["msa"]

STAGES += [
    # a. multi-label classifier (its 1x1 head gives the CAMs)
    StageRule("train_classifier", layout.CLASSIFIER, scope=layout.DATASET_SCOPE, work=True),
    # b. multi-scale + flip CAMs, full resolution and stride 4 (upsample=superpixel: through the superpixel network)
    StageRule("make_cam", layout.CAM, scope=layout.DATASET_SCOPE, per_image=True,
              inputs={"classifier_dir": layout.CLASSIFIER, "superpixel_dir": layout.superpixels_if_upsampling}),
    # a'. MSA's superpixel network, learnt on the train images' colours without labels; its association Q and
    #     superpixels of every image (MSA's classifier and the superpixel upsampling of CAMs read the network)
    StageRule("train_superpixel", layout.SUPERPIXEL, scope=layout.DATASET_SCOPE, work=True),
    # a''/b''. MSA's CAM network (seed rules with cam: msa): its classifier and CAMs, conf/camnet/msa.yaml
    StageRule("train_classifier", _MSA.classifier, scope=layout.DATASET_SCOPE, work=True, rule=_MSA.rule("train_classifier"),
              inputs={"superpixel_dir": layout.SUPERPIXEL}, settings=layout.camnet_settings("msa", "train_classifier")),
    StageRule("make_cam", _MSA.cams, scope=layout.DATASET_SCOPE, rule=_MSA.rule("make_cam"), per_image=True,
              inputs={"classifier_dir": _MSA.classifier, "superpixel_dir": layout.SUPERPIXEL},
              settings=layout.camnet_settings("msa", "make_cam")),
    # c. seeds of the supervision by the seed rule conf/seeds/<seeds>.yaml (PSA's CRF rule, IRN's thresholds,
    #    point discs + CAM evidence, scribble strokes, GrabCut in boxes; CAM-free)
    StageRule("make_seeds", layout.SEEDS, scope=layout.SEEDS_SCOPE, per_image=True,
              inputs={"cam_dir": layout.seeds_cam}),
    # d'. weak-shot (RETAB): the boundary network learnt on the base images' ground truth, its maps of every image
    StageRule("train_boundary", layout.BOUNDARY, scope=layout.SEEDS_SCOPE, work=True,
              inputs={"classifier_dir": layout.seeds_classifier, "seeds_dir": layout.SEEDS}),
    # d. AffinityNet on pairs within radius r drawn from the seeds (weak-shot: the novel images' boundaries left out)
    StageRule("train_affinity", layout.AFFINITY, scope=layout.SEEDS_SCOPE, work=True,
              inputs={"classifier_dir": layout.seeds_classifier, "seeds_dir": layout.SEEDS,
                      "boundary_dir": layout.affinity_boundary}),
    # e. the recipe's propagator (conf/propagation/<name>.yaml) on the seeds / CAMs (compiled kernels)
    StageRule("propagate", layout.recipe_folder("{recipe}", "propagate"), scope=layout.RECIPE_SCOPE, per_image=True,
              inputs={"seeds_dir": layout.recipe_seeds, "cam_dir": layout.recipe_cam,
                      "affinity_dir": layout.recipe_affinity, "boundary_dir": layout.recipe_boundary}),
    # f. dense CRF with the recipe's kernels (conf/crf/<name>.yaml), restricted to the classes present
    StageRule("refine_crf", layout.recipe_folder("{recipe}", "crf"), scope=layout.RECIPE_SCOPE, per_image=True,
              inputs={"scores_dir": layout.recipe_folder("{recipe}", "propagate"), "seeds_dir": layout.recipe_seeds}),
    # g. the final pseudo-labels as VOC palette PNGs, with metrics.json
    #    (weak-shot: the base images with their ground truth, from the seeds folder)
    StageRule("export_pseudolabels", layout.recipe_folder("{recipe}", "pseudolabels"), scope=layout.RECIPE_SCOPE,
              per_image=True,
              inputs={"source_dir": layout.recipe_final, "seeds_dir": layout.weakshot_seeds}, cores=False),
]
