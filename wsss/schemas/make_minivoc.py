"""Schema of ``conf/make_minivoc.yaml`` (the generator of the embedded dataset, :mod:`wsss.data.minivoc`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from wsss.schemas.common import StageConfig


@dataclass
class MakeMinivocConfig(StageConfig):
    """Dataset size and drawing parameters; the dataset seed is the global ``seed``.

    Every field below ``n_val`` mirrors a field of :class:`wsss.data.minivoc.MinivocParams`
    (ranges are ``[low, high]`` lists, inclusive).
    """

    #: ``voc`` (VOC 2012 layout) or ``coco`` (COCO instances json, :mod:`wsss.data.minivoc.coco_layout`)
    layout: str = "voc"
    n_train: int = 1000
    n_val: int = 150
    width_range: list[int] = field(default_factory=lambda: [144, 192])
    height_range: list[int] = field(default_factory=lambda: [112, 160])
    max_objects: int = 4
    object_size: list[float] = field(default_factory=lambda: [0.3, 0.54])
    p_touch: float = 0.55
    p_same_class: float = 0.3
    distractors: list[int] = field(default_factory=lambda: [3, 9])
    p_occluder: float = 0.2
    p_bg_object_color: float = 0.3
    min_visible: float = 0.45
    noise_sigma: list[float] = field(default_factory=lambda: [1.5, 5.0])
    blur_sigma: list[float] = field(default_factory=lambda: [0.3, 0.8])
    light_gradient: float = 0.25
    jpeg_quality: int = 90
    #: 0 = VOC's 5 px band scaled to the image size (at least 2 px)
    void_width: int = 0
    year: int = 2026


ConfigStore.instance().store(group="schema", name="make_minivoc", node=MakeMinivocConfig, package="_global_")
