"""Schema of ``conf/compare.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from wsss.schemas.common import SupervisedStageConfig


@dataclass
class CompareConfig(SupervisedStageConfig):
    """The comparison of recipes on one dataset and supervision (``results/<dataset>/<supervision>/compare``)."""

    split: str = MISSING
    #: recipe names; empty = every recipe of ``conf/recipe/`` that applies to the supervision
    recipes: list[str] = field(default_factory=list)
    #: the Snakemake log folder (``<logs_dir>/<scope>/<stage>.benchmark.tsv``)
    logs_dir: str = "logs"
    #: CAM folder for the heat maps of the side-by-side page; empty or missing = none
    cam_dir: str = ""
    thumb_size: int = 160
    page_size: int = 50
    #: 0 = every image of the split
    max_images: int = 0


ConfigStore.instance().store(group="schema", name="compare", node=CompareConfig, package="_global_")
