"""Where each stage's folder is, relative to the results folder (``paths.results``, DESIGN §4).

* shared by every supervision: ``<dataset>/classifier``, ``<dataset>/cam``; the superpixel network
  ``<dataset>/superpixel`` and MSA's classifier and CAMs on it, ``<dataset>/msa/{classifier,cam}`` (the CAM network
  a seed rule's ``cam: msa`` names, :data:`CAM_NETWORKS`);
* shared by the recipes that make the same seed choice: ``<dataset>/<supervision>/seeds/<seeds>``
  and the AffinityNet trained on those seeds, ``<dataset>/<supervision>/affinity/<seeds>``; weak-shot
  supervision also the boundary network learnt on its base images, ``<dataset>/weakshot/boundary/<seeds>`` (its
  AffinityNet leaves the novel images' boundaries out);
* a recipe's own: ``<dataset>/<supervision>/<recipe>/{propagate,crf,pseudolabels,gallery,deeplab,instances,maskrcnn}``;
  a box-trained recipe (``mask_loss``): ``maskrcnn`` (trained from the boxes) -> ``boxmasks`` -> ``pseudolabels``;
  a recipe reading another's labels (``labels_from``; P2Seg): that recipe's ``pseudolabels`` -> its own ``p2seg``
  (the network, ``instances: p2seg``) -> ``instances`` -> ``maskrcnn``;
* the comparison of every recipe: ``<dataset>/<supervision>/compare``.

The functions ``(plan, wildcards) -> folder | None`` are the rules' conditional inputs
(:class:`wsss.workflow.rules.StageRule`): ``None`` where the job does not need that folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from wsss.errors import WsssError
from wsss.workflow.plan import Plan
from wsss.workflow.recipes import Recipe, load_recipe, load_seed_rule_cam

#: log folders (``logs/<scope>/<stage>.log`` and ``.benchmark.tsv``) of the dataset's, the seed rule's and
#: the recipe's stages
DATASET_SCOPE = "{dataset}"
SEEDS_SCOPE = "{dataset}/{supervision}/seeds_{seeds}"
RECIPE_SCOPE = "{dataset}/{supervision}/{recipe}"

CLASSIFIER = "{dataset}/classifier"
CAM = "{dataset}/cam"
#: MSA's superpixel network and its association of every train image (shared by every supervision and recipe)
SUPERPIXEL = "{dataset}/superpixel"
MSA_CLASSIFIER = "{dataset}/msa/classifier"
MSA_CAM = "{dataset}/msa/cam"
SEEDS = "{dataset}/{supervision}/seeds/{seeds}"
AFFINITY = "{dataset}/{supervision}/affinity/{seeds}"
BOUNDARY = "{dataset}/{supervision}/boundary/{seeds}"
#: the supervision whose chains learn from ground truth on some images (RETAB): seeds -> boundary -> affinity
WEAKSHOT = "weakshot"
RECIPE = "{dataset}/{supervision}/{recipe}"
COMPARE = "{dataset}/{supervision}/compare"


@dataclass(frozen=True)
class CamNetwork:
    """The CAM network a seed rule's ``cam`` names: its classifier's and its CAMs' folders and rules (the rule
    runs ``stages.<stage>``; a network other than the plain classifier has rules of its own, ``<stage>_<cam>``,
    with the overrides of ``conf/camnet/<cam>.yaml`` and the superpixel network as an input)."""

    cam: str
    classifier: str
    cams: str

    @property
    def superpixels(self) -> bool:
        """Whether its classifier and CAMs read the superpixel network (``train_superpixel``)."""
        return self.cam != "classifier"

    def rule(self, stage: str) -> str:
        return stage if self.cam == "classifier" else f"{stage}_{self.cam}"


#: a seed rule's ``cam`` (:data:`wsss.workflow.recipes.CAM_SOURCES` but ``none``) -> its CAM network
CAM_NETWORKS = {"classifier": CamNetwork("classifier", CLASSIFIER, CAM), "msa": CamNetwork("msa", MSA_CLASSIFIER, MSA_CAM)}


def recipe_folder(recipe: str, folder: str) -> str:
    """``<dataset>/<supervision>/<recipe>/<folder>`` as a pattern (``recipe`` may be the ``{recipe}`` wildcard)."""
    return f"{{dataset}}/{{supervision}}/{recipe}/{folder}"


def chain_folders(dataset: str, supervision: str, recipe: Recipe) -> dict[str, str]:
    """The label folders of one recipe's run, in pipeline order: ``{stage name: folder}`` (relative to the
    results folder). The CAM folder is ``make_cam``'s (its labels are in ``labels/``). A ``labels_from`` recipe:
    its source's."""
    recipe = load_recipe(recipe.labels_recipe)
    values = {"dataset": dataset, "supervision": supervision, "seeds": recipe.seeds, "recipe": recipe.name}
    if recipe.box_trained:
        return {name: recipe_folder(recipe.name, name).format(**values) for name in ("boxmasks", "pseudolabels")}
    folders = {}
    if recipe.uses_classifier:
        folders["cam"] = CAM_NETWORKS[recipe.cam].cams.format(**values)
    folders["seeds"] = SEEDS.format(**values)
    folders["propagate"] = recipe_folder(recipe.name, "propagate").format(**values)
    if recipe.has_crf:
        folders["crf"] = recipe_folder(recipe.name, "crf").format(**values)
    folders["pseudolabels"] = recipe_folder(recipe.name, "pseudolabels").format(**values)
    return folders


def chain_stages(dataset: str, supervision: str, recipe: Recipe) -> list[tuple[str, str, str, str | None]]:
    """Every stage one recipe's pseudo-labels come from, in pipeline order, as
    ``(rule, scope, output folder, label folder or None)`` (relative to ``logs/`` and the results folder;
    the label folder holds ``metrics.json``: ``cam/labels`` for the CAMs). A ``labels_from`` recipe: its source's."""
    recipe = load_recipe(recipe.labels_recipe)
    values = {"dataset": dataset, "supervision": supervision, "seeds": recipe.seeds, "recipe": recipe.name}
    labels = chain_folders(dataset, supervision, recipe)
    stages: list[tuple[str, str, str, str | None]] = []
    if recipe.box_trained:
        stages = [("train_maskrcnn", RECIPE_SCOPE, recipe_folder("{recipe}", "maskrcnn"), None),
                  ("segment_boxes", RECIPE_SCOPE, recipe_folder("{recipe}", "boxmasks"), "boxmasks"),
                  ("export_pseudolabels", RECIPE_SCOPE, recipe_folder("{recipe}", "pseudolabels"), "pseudolabels")]
        return [(rule, scope.format(**values), folder.format(**values), labels.get(name) if name else None)
                for rule, scope, folder, name in stages]
    if recipe.uses_classifier:
        network = CAM_NETWORKS[recipe.cam]
        if network.superpixels:
            stages.append(("train_superpixel", DATASET_SCOPE, SUPERPIXEL, None))
        stages.append((network.rule("train_classifier"), DATASET_SCOPE, network.classifier, None))
        stages.append((network.rule("make_cam"), DATASET_SCOPE, network.cams, "cam"))
    stages.append(("make_seeds", SEEDS_SCOPE, SEEDS, "seeds"))
    if supervision == WEAKSHOT and recipe.uses_affinity:
        stages.append(("train_boundary", SEEDS_SCOPE, BOUNDARY, None))
    if recipe.uses_affinity:
        stages.append(("train_affinity", SEEDS_SCOPE, AFFINITY, None))
    stages.append(("propagate", RECIPE_SCOPE, recipe_folder("{recipe}", "propagate"), "propagate"))
    if recipe.has_crf:
        stages.append(("refine_crf", RECIPE_SCOPE, recipe_folder("{recipe}", "crf"), "crf"))
    stages.append(("export_pseudolabels", RECIPE_SCOPE, recipe_folder("{recipe}", "pseudolabels"), "pseudolabels"))
    if "cam" in labels:
        labels["cam"] += "/labels"
    return [(rule, scope.format(**values), folder.format(**values), labels.get(name) if name else None)
            for rule, scope, folder, name in stages]


def training_folders(dataset: str, supervision: str, recipe: Recipe) -> dict[str, str]:
    """The training stages one recipe's labels depend on, ``{rule: output folder}`` (relative to the results
    folder): the classifier and the AffinityNet where the recipe uses them. Each writes its ``curves.png``
    (:mod:`wsss.viz.curves`). The retrained DeepLab and Mask R-CNN are left out: they run after the labels,
    so a page built from the labels could show them or not depending on the order Snakemake picked. A
    ``labels_from`` recipe: its source's."""
    recipe = load_recipe(recipe.labels_recipe)
    values = {"dataset": dataset, "supervision": supervision, "seeds": recipe.seeds, "recipe": recipe.name}
    folders = {}
    if recipe.box_trained:  # here the Mask R-CNN comes before the labels: it makes them
        return {"train_maskrcnn": recipe_folder(recipe.name, "maskrcnn").format(**values)}
    if recipe.uses_classifier:
        network = CAM_NETWORKS[recipe.cam]
        if network.superpixels:
            folders["train_superpixel"] = SUPERPIXEL.format(**values)
        folders[network.rule("train_classifier")] = network.classifier.format(**values)
    if supervision == WEAKSHOT and recipe.uses_affinity:
        folders["train_boundary"] = BOUNDARY.format(**values)
    if recipe.uses_affinity:
        folders["train_affinity"] = AFFINITY.format(**values)
    return folders


# ---------------------------------------------------------------- conditional inputs
def seeds_cam(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``make_seeds``: the CAM folder when its seed rule reads the CAMs (image tags always; weak labels by
    :attr:`wsss.seeds.weak.WeakSeedBuilder.uses_cam`)."""
    from wsss.workflow.plan import planned_config

    cfg = planned_config("make_seeds", tuple(plan.base_overrides("make_seeds", wildcards) + plan.user_overrides("make_seeds")))
    if str(cfg.cam) == "none":
        return None
    if wildcards["supervision"] not in ("image", WEAKSHOT):  # tags (weak-shot: the novel images') always read them
        from wsss.seeds.weak import WeakSeedBuilder  # imports torch: only when a weak seed job is planned

        if not WeakSeedBuilder.from_config(cfg).uses_cam:
            return None
    return CAM_NETWORKS[str(cfg.cam)].cams.format(**wildcards)


def seeds_classifier(plan: Plan, wildcards: Mapping[str, str]) -> str:
    """``train_boundary`` / ``train_affinity``: the classifier whose trunk they start from: the one whose CAMs the
    seed rule reads (the plain classifier for CAM-free seeds)."""
    cam = str(load_seed_rule_cam(wildcards["seeds"]))
    return CAM_NETWORKS.get(cam, CAM_NETWORKS["classifier"]).classifier.format(**wildcards)


def affinity_boundary(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``train_affinity``: weak-shot supervision's boundary folder (the novel images' boundaries are ignored)."""
    return BOUNDARY.format(**wildcards) if wildcards["supervision"] == WEAKSHOT else None


def weakshot_seeds(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``export_pseudolabels``: weak-shot supervision's seeds folder (its base images hold their ground truth)."""
    recipe = plan.recipe(wildcards)
    if wildcards["supervision"] != WEAKSHOT or recipe.box_trained:
        return None
    return SEEDS.format(**wildcards, seeds=recipe.seeds)


def recipe_boundary(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``propagate``: the boundary folder when the recipe's propagator reads boundaries (``boundary_walk``)."""
    from wsss.propagation.catalog import PROPAGATORS

    recipe = plan.recipe(wildcards)
    if recipe.box_trained or not PROPAGATORS[recipe.propagation].boundary:
        return None
    return BOUNDARY.format(**wildcards, seeds=recipe.seeds)


def recipe_seeds(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    recipe = plan.recipe(wildcards)
    return None if recipe.box_trained else SEEDS.format(**wildcards, seeds=recipe.seeds)


def recipe_cam(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    recipe = plan.recipe(wildcards)
    return CAM_NETWORKS[recipe.cam].cams.format(**wildcards) if recipe.uses_classifier else None


def recipe_classifier(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    recipe = plan.recipe(wildcards)
    return CAM_NETWORKS[recipe.cam].classifier.format(**wildcards) if recipe.uses_classifier else None


def recipe_superpixels(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``make_gallery``: the superpixel network's folder when the recipe's CAM network reads superpixels (MSA), so
    the page draws them beside the photo."""
    recipe = plan.recipe(wildcards)
    return SUPERPIXEL.format(**wildcards) if recipe.uses_classifier and CAM_NETWORKS[recipe.cam].superpixels else None


def recipe_affinity(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    recipe = plan.recipe(wildcards)
    return AFFINITY.format(**wildcards, seeds=recipe.seeds) if recipe.uses_affinity else None


def recipe_final(plan: Plan, wildcards: Mapping[str, str]) -> str:
    """What ``export_pseudolabels`` exports: the recipe's CRF output, or its propagation without a CRF, or a
    box-trained recipe's box masks."""
    recipe = plan.recipe(wildcards)
    final = "boxmasks" if recipe.box_trained else "crf" if recipe.has_crf else "propagate"
    return recipe_folder("{recipe}", final).format(**wildcards)


def recipe_pseudolabels(plan: Plan, wildcards: Mapping[str, str]) -> str:
    """The semantic pseudo-labels a recipe's retraining and instances read: its own, or its ``labels_from``'s."""
    return recipe_folder(plan.recipe(wildcards).labels_recipe, "pseudolabels").format(**wildcards)


def recipe_instance_model(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``export_instances``' network: the recipe's ``train_p2seg`` folder for ``instances: p2seg``, else none."""
    return recipe_folder("{recipe}", "p2seg").format(**wildcards) if plan.recipe(wildcards).instances == "p2seg" else None


def recipe_instances(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``train_maskrcnn``'s instance pseudo-labels; none for a box-trained recipe (it learns from the boxes)."""
    return None if plan.recipe(wildcards).box_trained else recipe_folder("{recipe}", "instances").format(**wildcards)


def superpixels_if_upsampling(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
    """``make_cam`` of the plain classifier: the superpixel network when its config upsamples through it
    (``upsample=superpixel``)."""
    from wsss.workflow.plan import planned_config

    cfg = planned_config("make_cam", tuple(plan.base_overrides("make_cam", wildcards) + plan.user_overrides("make_cam")))
    return SUPERPIXEL.format(**wildcards) if str(cfg.upsample) == "superpixel" else None


def camnet_settings(cam: str, stage: str):
    """The ``settings`` of a CAM network's rule of ``stage``: the overrides ``conf/camnet/<cam>.yaml`` gives it."""
    from wsss.workflow.plan import exit_on_config_error
    from wsss.workflow.recipes import load_camnet

    def settings(plan: Plan, wildcards: Mapping[str, str]) -> list[str]:
        try:
            return list(load_camnet(cam)[stage])
        except WsssError as error:
            raise exit_on_config_error(error) from None
    return settings


def classifier_if_initialising(stage: str):
    """The classifier folder when ``stage``'s config starts a trunk from it (``model.init_from_classifier``)."""
    from wsss.workflow.plan import planned_config

    def source(plan: Plan, wildcards: Mapping[str, str]) -> str | None:
        cfg = planned_config(stage, tuple(plan.base_overrides(stage, wildcards) + plan.user_overrides(stage)))
        return CLASSIFIER.format(**wildcards) if bool(cfg.model.init_from_classifier) else None
    return source
