# Inspection: the HTML gallery of one recipe's run, the comparison of every recipe, and the files
# `snakemake --report` shows.
#
#   snakemake minivoc_image_gallery                  # -> results/minivoc/image/psa/gallery/index.html
#   snakemake minivoc_point_a2gnn_gallery --report report.html
#   snakemake minivoc_point_compare                  # -> results/minivoc/point/compare/{table.md,chart.png,index.html}
#   python -m stages.status minivoc_image_pseudolabels      # done / stale / missing per stage, with mIoU
#
# A gallery shows the recipe's label stages (CAMs, seeds, propagation, CRF, pseudo-labels) and depends on
# each of them, so it is rebuilt when any changes. The comparison depends on every applicable recipe's
# chain, so it runs them all. Both also show the curves.png of the training stages they find (classifier,
# AffinityNet, and deeplab / maskrcnn once trained): not inputs, so a page never makes Snakemake retrain.

from wsss.viz.gallery import asset_files
from wsss.workflow import layout
from wsss.workflow.rules import StageRule

report: "report/workflow.rst"


def _report_part(wildcards):
    """Report subcategory of a gallery file: the metrics table or the sample figures."""
    return "metrics" if wildcards.name == "metrics" else "sample figures"


def _recipe_labels(plan, wildcards):
    """The recipe's label folders a gallery shows (beside the seeds and CAMs, passed as their own keys)."""
    recipe = plan.recipe(wildcards)
    return [folder for name, folder in layout.chain_folders(wildcards["dataset"], wildcards["supervision"], recipe).items()
            if name not in ("cam", "seeds")]


def _compared_chains(plan, wildcards):
    """Every label folder of every recipe that applies to the supervision."""
    from wsss.workflow.recipes import label_recipes_for

    return sorted({folder for recipe in label_recipes_for(wildcards["supervision"])
                   for folder in layout.chain_folders(wildcards["dataset"], wildcards["supervision"], recipe).values()})


STAGES += [
    # HTML gallery (photo, GT, CAMs, seeds, propagation, CRF, pseudo-label per image) + report files; MSA's
    # recipes also the superpixels over the photo (an input: train_superpixel runs first) and the bilinear CAMs
    StageRule("make_gallery", layout.recipe_folder("{recipe}", "gallery"), scope=layout.RECIPE_SCOPE, cores=False,
              inputs={"seeds_dir": layout.recipe_seeds, "cam_dir": layout.recipe_cam,
                      "superpixel_dir": layout.recipe_superpixels},
              needs={"label_stages": _recipe_labels}, files=asset_files(),
              paths={"stages_dir": layout.RECIPE, "classifier_dir": layout.recipe_classifier,
                     "affinity_dir": layout.recipe_affinity},
              in_report={"patterns": ["report/{name}.html", "report/{name}.png"], "caption": "rules/report/gallery.rst",
                      "category": "{dataset} {supervision} {recipe}", "subcategory": _report_part,
                      "labels": {"dataset": "{dataset}", "supervision": "{supervision}", "recipe": "{recipe}",
                                 "figure": "{name}"}}),
    # every recipe of the supervision side by side: table (Markdown, JSON), bar chart, side-by-side gallery
    StageRule("compare", layout.COMPARE, scope="{dataset}/{supervision}", cores=False,
              needs={"chains": _compared_chains}, files=asset_files()),
]
