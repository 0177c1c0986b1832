"""Schema of ``conf/make_gallery.yaml``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.params import GallerySettings
from wsss.schemas.common import SupervisedStageConfig, config_fields
from wsss.viz.stages import DEFAULT_ORDER


@dataclass
class _GalleryStage(SupervisedStageConfig):
    """The inspection gallery of one recipe's run (``results/<dataset>/<supervision>/<recipe>``)."""

    #: the split whose images are shown (the split the label stages labelled)
    split: str = MISSING
    #: a ``make_cam`` folder (``highres/<id>.npy``, ``keys.json``, ``labels/``); empty or missing = no CAM column
    cam_dir: str = MISSING
    #: a seeds folder shown as stage ``seeds`` (the recipe's shared seeds); empty = none
    seeds_dir: str = ""
    #: the run folder whose label sub-folders (propagate, crf, pseudolabels …) are shown
    stages_dir: str = MISSING
    #: training stage folders whose curves.png the page shows too (the rule passes the recipe's classifier and
    #: AffinityNet where it uses them); empty = none
    classifier_dir: str = ""
    affinity_dir: str = ""
    #: a ``train_superpixel`` folder (``labels/<id>.png``): a ``superpixels`` column after the photo, the
    #: boundaries drawn over it (the rule passes it where the recipe's CAM network reads superpixels); empty = none
    superpixel_dir: str = ""
    #: display order of stages; ``"*"`` = every discovered stage not listed, alphabetically
    stage_order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))
    #: sub-folders of ``stages_dir`` never shown (the gallery's own folder always is excluded); by default
    #: the models retrained from the pseudo-labels (their folders also hold metrics.json)
    exclude: list[str] = field(default_factory=lambda: ["gallery", "deeplab", "maskrcnn", "instances"])


#: the stage's keys, then how the page is drawn (:class:`wsss.params.GallerySettings`, its title set by the stage)
GalleryConfig = dataclasses.make_dataclass(
    "GalleryConfig", [(name, kind, value if isinstance(value, dataclasses.Field) else field(default=value))
                      for name, kind, value in config_fields(GallerySettings, drop={"title", "pairwise"})],
    bases=(_GalleryStage,), namespace={"__doc__": _GalleryStage.__doc__})
GalleryConfig.__module__ = __name__

ConfigStore.instance().store(group="schema", name="make_gallery", node=GalleryConfig, package="_global_")
