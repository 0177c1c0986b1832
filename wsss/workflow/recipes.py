"""Recipes: one method as a named chain of stage choices (``conf/recipe/<name>.yaml``).

A recipe names, for one supervision:

* ``seeds``: the seed rule and its CAM source, a file of ``conf/seeds/`` (``default`` | ``irn`` | ``msa`` | ``camfree`` …);
  the seed rule's ``cam`` key names the CAMs it reads: ``classifier`` (the plain classifier's), ``msa`` (MSA's
  classifier on the superpixel network, :data:`wsss.workflow.layout.CAM_NETWORKS`) or ``none``;
* ``propagation``: the propagator, a file of ``conf/propagation/`` (``cam_walk``, ``random_walk``, ``a2gnn``, ``apro``);
* ``crf``: the dense CRF kernels, a file of ``conf/crf/``; ``dataset`` = ``conf/crf/<dataset>.yaml``; ``none``: no CRF;
* ``mask_loss``: instead of seeds and a propagator, a Mask R-CNN trained from the boxes alone with this mask loss
  (``filled_box`` | ``apro``, :class:`wsss.params.BoxMaskLossSettings`); its masks of the train boxes
  (``segment_boxes``) are the pseudo-labels. Box supervision only; ``seeds``/``propagation`` unused, ``crf: none``;
* ``labels_from``: another recipe whose semantic pseudo-labels this one reads instead of making its own (its
  chain, gallery and comparison row are that recipe's; ``seeds``/``propagation``/``crf`` unused, ``crf: none``);
* ``instances``: how its ``instances`` folder is made: ``cues`` (``export_instances`` cuts the pseudo-labels by the
  supervision's cues) or ``p2seg`` (the P2Seg network, ``train_p2seg``, trained on the points and the pseudo-labels,
  exports one instance per point; point supervision only, with ``labels_from``);
* ``overrides``: extra Hydra overrides of the recipe's own stages (``{propagate: [propagation.beta=8]}``);
* ``supervisions``: the supervisions it applies to.

Stages before the recipe's own (classifier, CAMs, seeds, AffinityNet) are shared by every recipe that makes
the same choice (:mod:`wsss.workflow.layout`). Each supervision names its default recipe in
``conf/supervision/<name>.yaml`` (``recipe:``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Dict, List

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wsss.config import CONF_DIR
from wsss.errors import WsssError
from wsss.params import CAM_SOURCES, MASK_LOSS_KINDS
from wsss.propagation.catalog import PROPAGATORS

#: the stages a recipe owns (its folder), in pipeline order; ``overrides`` keys must be among them
RECIPE_STAGES = ("propagate", "refine_crf", "segment_boxes", "export_pseudolabels", "make_gallery", "train_deeplab",
                 "train_p2seg", "export_instances", "train_maskrcnn")
#: ``instances`` values: who makes a recipe's instance pseudo-labels
INSTANCE_SOURCES = ("cues", "p2seg")
#: names a recipe may not take: folders beside the recipes' under results/<dataset>/<supervision>/
RESERVED = ("seeds", "affinity", "boundary", "compare", "gallery", "pseudolabels", "deeplab", "maskrcnn", "instances", "boxmasks")
#: ``mask_loss`` values: the box-trained recipes' Mask R-CNN losses (``mask_loss.kind`` of train_maskrcnn)
BOX_MASK_LOSSES = tuple(kind for kind in MASK_LOSS_KINDS if kind != "mask")



@dataclass
class RecipeFile:
    """Schema of ``conf/recipe/<name>.yaml`` (unknown keys and wrong types are errors)."""

    description: str = ""
    supervisions: List[str] = field(default_factory=list)
    seeds: str = "default"
    propagation: str = "random_walk"
    crf: str = "dataset"
    mask_loss: str = ""
    labels_from: str = ""
    instances: str = "cues"
    overrides: Dict[str, List[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. ``cam``: the CAM source of its seed rule (:data:`CAM_SOURCES`)."""

    name: str
    description: str
    supervisions: tuple[str, ...]
    seeds: str
    cam: str
    propagation: str
    crf: str
    overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
    mask_loss: str = ""
    labels_from: str = ""
    instances: str = "cues"

    @property
    def labels_recipe(self) -> str:
        """The recipe whose pseudo-labels this one uses: ``labels_from``, or itself."""
        return self.labels_from or self.name

    @property
    def products(self) -> tuple[str, ...]:
        """Its targets (``{dataset}_{supervision}_{recipe}_{product}``): a recipe reading another's labels makes
        no labels, gallery or DeepLab of its own, only its instances' Mask R-CNN."""
        return ("maskrcnn",) if self.labels_from else ("pseudolabels", "gallery", "deeplab", "maskrcnn")

    @property
    def box_trained(self) -> bool:
        """Whether its pseudo-labels are a box-trained Mask R-CNN's masks (no seeds, no propagation)."""
        return bool(self.mask_loss)

    @property
    def uses_classifier(self) -> bool:
        """Whether its chain reads a classifier's CAMs (the plain one's or MSA's, :attr:`cam`)."""
        return self.cam != "none" and not self.box_trained

    @property
    def uses_affinity(self) -> bool:
        """Whether its propagator reads the AffinityNet trained on its seeds."""
        return not self.box_trained and PROPAGATORS[self.propagation].affinity

    @property
    def has_crf(self) -> bool:
        return self.crf != "none"

    def stage_overrides(self, stage: str) -> list[str]:
        """The Hydra overrides the recipe gives its stage ``stage`` (choices first, then ``overrides[stage]``)."""
        choices: list[str] = []
        if stage == "train_maskrcnn" and self.box_trained:
            choices = [f"mask_loss.kind={self.mask_loss}"]
        elif stage == "propagate":
            choices = [f"propagation={self.propagation}", f"cam={self.cam}"]
        elif stage == "refine_crf" and self.crf not in ("dataset", "none"):
            choices = [f"crf={self.crf}"]
        return choices + list(dict(self.overrides).get(stage, ()))

    def applies_to(self, supervision: str) -> bool:
        return supervision in self.supervisions


def recipe_names() -> list[str]:
    """Every recipe of ``conf/recipe/``, sorted."""
    return sorted(p.stem for p in (CONF_DIR / "recipe").glob("*.yaml"))


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def load_seed_rule_cam(seeds: str) -> str:
    """The ``cam`` key of ``conf/seeds/<seeds>.yaml`` (``classifier`` when it sets none)."""
    path = CONF_DIR / "seeds" / f"{seeds}.yaml"
    if not path.is_file():
        raise WsssError(f"seeds '{seeds}': no conf/seeds/{seeds}.yaml (valid: {', '.join(_choices('seeds'))})")
    return str(OmegaConf.load(path).get("cam", "classifier"))


#: the stages of a CAM network (conf/camnet/<name>.yaml gives each its overrides)
CAMNET_STAGES = ("train_classifier", "make_cam")


@functools.lru_cache(maxsize=None)
def load_camnet(cam: str) -> dict[str, tuple[str, ...]]:
    """``conf/camnet/<cam>.yaml``: the Hydra overrides of the CAM network's classifier and CAMs,
    ``{stage: overrides}`` for the stages of :data:`CAMNET_STAGES` (a problem: one line naming the file)."""
    where = f"conf/camnet/{cam}.yaml"
    path = CONF_DIR / "camnet" / f"{cam}.yaml"
    if not path.is_file():
        raise WsssError(f"{where}: no such CAM network (valid: {', '.join(_choices('camnet'))})")
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
    overrides: dict[str, tuple[str, ...]] = {stage: () for stage in CAMNET_STAGES}
    for stage, values in node.items():
        if stage == "description":
            continue
        if stage not in CAMNET_STAGES:
            raise WsssError(f"{where}: '{stage}' is not a stage of a CAM network (expected {', '.join(CAMNET_STAGES)})")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise WsssError(f"{where}: {stage}: expected a list of Hydra overrides, got {values!r}")
        overrides[stage] = tuple(values)
    return overrides


@functools.lru_cache(maxsize=None)
def load_recipe(name: str) -> Recipe:
    """``conf/recipe/<name>.yaml`` checked against :class:`RecipeFile` and the config groups it names.

    Any problem is a one-line :class:`WsssError` naming the file (and, for an unknown recipe, the valid ones).
    """
    path = CONF_DIR / "recipe" / f"{name}.yaml"
    if not path.is_file():
        raise WsssError(f"recipe '{name}': no such recipe (conf/recipe/{name}.yaml); valid: {', '.join(recipe_names())}")
    where = f"conf/recipe/{name}.yaml"
    try:
        node = OmegaConf.merge(OmegaConf.structured(RecipeFile), OmegaConf.load(path))
        raw = RecipeFile(**OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    except OmegaConfBaseException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WsssError(f"{where}: {first}") from None
    if name in RESERVED or not name.replace("_", "").isalnum():
        raise WsssError(f"{where}: '{name}' cannot name a recipe (letters, digits and '_'; not {', '.join(RESERVED)})")
    supervisions = _choices("supervision")
    unknown = [s for s in raw.supervisions if s not in supervisions]
    if not raw.supervisions or unknown:
        raise WsssError(f"{where}: supervisions: {'unknown ' + ', '.join(unknown) if unknown else 'empty'} "
                        f"(expected some of {', '.join(supervisions)})")
    if raw.seeds not in _choices("seeds"):
        raise WsssError(f"{where}: seeds: no conf/seeds/{raw.seeds}.yaml (valid: {', '.join(_choices('seeds'))})")
    cam = load_seed_rule_cam(raw.seeds)
    if cam not in CAM_SOURCES:
        raise WsssError(f"conf/seeds/{raw.seeds}.yaml: cam must be one of {', '.join(CAM_SOURCES)}, got '{cam}'")
    if raw.propagation not in PROPAGATORS or raw.propagation not in _choices("propagation"):
        raise WsssError(f"{where}: propagation: unknown propagator '{raw.propagation}' "
                        f"(valid: {', '.join(p for p in PROPAGATORS if p in _choices('propagation'))})")
    if cam == "none" and PROPAGATORS[raw.propagation].classifier:
        raise WsssError(f"{where}: seeds '{raw.seeds}' are CAM-free but propagator '{raw.propagation}' needs the "
                        f"classifier (CAM-free: {', '.join(p for p, n in PROPAGATORS.items() if not n.classifier)})")
    if cam == "none" and "image" in raw.supervisions:
        raise WsssError(f"{where}: supervisions: image tags need the CAMs, but seeds '{raw.seeds}' are CAM-free")
    if raw.crf not in ("dataset", "none") and raw.crf not in _choices("crf"):
        raise WsssError(f"{where}: crf: no conf/crf/{raw.crf}.yaml (valid: dataset, none, {', '.join(_choices('crf'))})")
    if raw.mask_loss:
        if raw.mask_loss not in BOX_MASK_LOSSES:
            raise WsssError(f"{where}: mask_loss: must be one of {', '.join(BOX_MASK_LOSSES)} (or absent), got '{raw.mask_loss}'")
        if list(raw.supervisions) != ["box"]:
            raise WsssError(f"{where}: supervisions: a mask_loss recipe trains from boxes, so only [box], got {list(raw.supervisions)}")
        if raw.crf != "none":
            raise WsssError(f"{where}: crf: a mask_loss recipe's labels are the network's masks; set crf: none")
    if raw.instances not in INSTANCE_SOURCES:
        raise WsssError(f"{where}: instances: must be one of {', '.join(INSTANCE_SOURCES)}, got '{raw.instances}'")
    if raw.instances == "p2seg" and (list(raw.supervisions) != ["point"] or not raw.labels_from):
        raise WsssError(f"{where}: instances: p2seg learns from points and another recipe's pseudo-labels: "
                        f"needs supervisions: [point] and labels_from: <a point recipe>")
    if raw.labels_from:
        valid = [n for n in recipe_names() if n != name and _own_labels(n)]
        if raw.labels_from not in valid:
            raise WsssError(f"{where}: labels_from: '{raw.labels_from}' is not a recipe with pseudo-labels of its own "
                            f"(valid: {', '.join(valid)})")
        source = load_recipe(raw.labels_from)
        missing = [s for s in raw.supervisions if not source.applies_to(s)]
        if missing:
            raise WsssError(f"{where}: labels_from: recipe '{raw.labels_from}' does not apply to {', '.join(missing)}")
        if raw.crf != "none":
            raise WsssError(f"{where}: crf: a labels_from recipe makes no labels of its own; set crf: none")
    bad = [stage for stage in raw.overrides if stage not in RECIPE_STAGES]
    if bad:
        raise WsssError(f"{where}: overrides: '{bad[0]}' is not a stage of the recipe (expected {', '.join(RECIPE_STAGES)})")
    return Recipe(name, raw.description, tuple(raw.supervisions), raw.seeds, cam, raw.propagation, raw.crf,
                  tuple((stage, tuple(values)) for stage, values in raw.overrides.items()), raw.mask_loss,
                  raw.labels_from, raw.instances)


def _own_labels(name: str) -> bool:
    """Whether ``conf/recipe/<name>.yaml`` makes pseudo-labels of its own (sets no ``labels_from``)."""
    return not OmegaConf.load(CONF_DIR / "recipe" / f"{name}.yaml").get("labels_from")


def recipes_for(supervision: str) -> list[Recipe]:
    """Every recipe that applies to ``supervision``, sorted by name."""
    return [recipe for recipe in map(load_recipe, recipe_names()) if recipe.applies_to(supervision)]


def label_recipes_for(supervision: str) -> list[Recipe]:
    """The recipes of :func:`recipes_for` that make pseudo-labels of their own (the ones a comparison shows)."""
    return [recipe for recipe in recipes_for(supervision) if not recipe.labels_from]


@functools.lru_cache(maxsize=None)
def default_recipe_name(supervision: str) -> str:
    """The ``recipe:`` of ``conf/supervision/<supervision>.yaml``."""
    path = CONF_DIR / "supervision" / f"{supervision}.yaml"
    if not path.is_file():
        raise WsssError(f"supervision '{supervision}': no conf/supervision/{supervision}.yaml")
    name = OmegaConf.load(path).get("recipe")
    if not name:
        raise WsssError(f"conf/supervision/{supervision}.yaml: recipe: missing (the supervision's default recipe)")
    return str(name)


def resolve_recipe(supervision: str, name: str | None = None) -> Recipe:
    """The recipe ``name`` (default: the supervision's) checked to apply to ``supervision``.

    An inapplicable recipe is a one-line error listing the ones that apply.
    """
    valid = ", ".join(r.name for r in recipes_for(supervision))
    if name is not None and name not in recipe_names():
        raise WsssError(f"recipe '{name}': no such recipe (conf/recipe/{name}.yaml); valid for {supervision}: {valid}")
    recipe = load_recipe(name or default_recipe_name(supervision))
    if not recipe.applies_to(supervision):
        where = f"conf/supervision/{supervision}.yaml: recipe" if name is None else f"recipe '{recipe.name}'"
        raise WsssError(f"{where}: '{recipe.name}' does not apply to supervision '{supervision}' "
                        f"(it applies to {', '.join(recipe.supervisions)}); valid for {supervision}: {valid}")
    return recipe
