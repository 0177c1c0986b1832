"""Schema of ``conf/make_gallery.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class GalleryConfig(SupervisedStageConfig):
    """The inspection gallery of one recipe's run (``results/<dataset>/<supervision>/<recipe>``)."""

    #: the split whose images are shown (the split the label stages labelled)
    split: str = MISSING
    #: a ``make_cam`` folder (``highres/<id>.npy``, ``keys.json``, ``labels/``); empty or missing = no CAM column
    cam_dir: str = MISSING
    #: a seeds folder shown as stage ``seeds`` (the recipe's shared seeds); empty = none
    seeds_dir: str = ""
    #: the run folder whose label sub-folders (propagate, crf, pseudolabels …) are shown
    stages_dir: str = MISSING
    #: display order of stages; ``"*"`` = every discovered stage not listed, alphabetically
    stage_order: list[str] = field(default_factory=lambda: ["cam", "seeds", "propagate", "*", "crf", "pseudolabels"])
    #: sub-folders of ``stages_dir`` never shown (the gallery's own folder always is excluded); by default
    #: the models retrained from the pseudo-labels (their folders also hold metrics.json)
    exclude: list[str] = field(default_factory=lambda: ["gallery", "deeplab", "maskrcnn", "instances"])
    #: longest side of a thumbnail in pixels
    thumb_size: int = 160
    jpeg_quality: int = 85
    #: images per page (the page's "per page" control changes it)
    page_size: int = 50
    #: CAM heat maps per image at most (strongest classes first)
    max_cams: int = 4
    #: 0 = every image of the split
    max_images: int = 0
    #: sample figures for the Snakemake report (worst to best final IoU)
    report_samples: int = 6
    #: tile size of a report figure
    report_tile: int = 192


ConfigStore.instance().store(group="schema", name="make_gallery", node=GalleryConfig, package="_global_")
