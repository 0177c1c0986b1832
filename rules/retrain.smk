# Retraining: a segmentation network trained on one recipe's pseudo-labels, scored on the val split.
#
#   snakemake minivoc_image_deeplab       # DeepLabV3 on results/minivoc/image/psa/pseudolabels
#                                         #   -> results/minivoc/image/psa/deeplab/metrics.json (+ metrics_crf.json)
#   snakemake minivoc_image_maskrcnn      # instance pseudo-labels (COCO json) -> Mask R-CNN
#                                         #   -> results/minivoc/image/psa/maskrcnn/metrics.json (ap50, ap75, AP)
#   snakemake minivoc_point_p2seg_maskrcnn  # P2Seg: network on apro_camfree's pseudo-labels + the points
#                                         #   -> results/minivoc/point/p2seg/{p2seg,instances,maskrcnn}
#   snakemake voc_box_a2gnn_deeplab --config overrides="dataset.root=/data/VOC2012" train_deeplab="model.pretrained=/w/r101.pth"
#
# Training jobs take every core (`threads`) and one `gpu` resource (`--resources gpu=2` runs two at once;
# without --resources it is not limited). Several GPUs for ONE training job: set WSSS_TRAIN_GPUS=N in the
# environment and the job runs under `torchrun --standalone --nproc_per_node=N` (DDP, batch split across
# GPUs). By hand: torchrun --standalone --nproc_per_node=4 -m stages.train_deeplab dataset=voc ...
# Checkpoints live in results/.work/<the output's path> (not declared: Snakemake would wipe them), so a
# killed training resumes where it stopped when the job reruns. The classifier is an input only when the
# stage's config starts a trunk from it (model.init_from_classifier: true in conf/deeplab/minivoc.yaml and
# conf/maskrcnn/minivoc.yaml).

from wsss.workflow import layout
from wsss.workflow.rules import StageRule

_PSEUDOLABELS = layout.recipe_pseudolabels  # a labels_from recipe (p2seg): its source's
_INSTANCES = layout.recipe_folder("{recipe}", "instances")

STAGES += [
    # semantic: DeepLabV3 on the pseudo-labels of the train split; val mIoU with and without CRF
    StageRule("train_deeplab", layout.recipe_folder("{recipe}", "deeplab"), scope=layout.RECIPE_SCOPE, work=True,
              gpu=True, launcher=True,
              inputs={"labels_dir": _PSEUDOLABELS, "classifier_dir": layout.classifier_if_initialising("train_deeplab")}),
    # P2Seg (instances: p2seg): instance network from the points + pseudo-labels; its own instances scored on val
    StageRule("train_p2seg", layout.recipe_folder("{recipe}", "p2seg"), scope=layout.RECIPE_SCOPE, work=True,
              gpu=True, launcher=True,
              inputs={"labels_dir": _PSEUDOLABELS, "classifier_dir": layout.classifier_if_initialising("train_p2seg")}),
    # instance pseudo-labels: the semantic pseudo-labels cut by the supervision's cues (or the P2Seg network's
    # instances, model_dir), as a COCO json
    StageRule("export_instances", _INSTANCES, scope=layout.RECIPE_SCOPE, per_image=True,
              inputs={"labels_dir": _PSEUDOLABELS, "model_dir": layout.recipe_instance_model}, cores=False),
    # instance: Mask R-CNN on the instance pseudo-labels (a box-trained recipe: on the boxes alone, its mask_loss);
    # val VOC mAP_r (0.5, 0.75) and COCO AP
    StageRule("train_maskrcnn", layout.recipe_folder("{recipe}", "maskrcnn"), scope=layout.RECIPE_SCOPE, work=True,
              gpu=True, launcher=True,
              inputs={"instances_dir": layout.recipe_instances,
                      "classifier_dir": layout.classifier_if_initialising("train_maskrcnn")}),
    # a box-trained recipe's pseudo-labels: the masks its Mask R-CNN gives the train split's boxes
    StageRule("segment_boxes", layout.recipe_folder("{recipe}", "boxmasks"), scope=layout.RECIPE_SCOPE, per_image=True,
              inputs={"model_dir": layout.recipe_folder("{recipe}", "maskrcnn")}),
]
