"""Config nodes shared by every stage: paths, dataset, supervision, seed, device."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING


@dataclass
class PathsConfig:
    """Where datasets and artifacts live (relative to the repo root unless absolute)."""

    data: str = "data"
    results: str = "results"


@dataclass
class DatasetConfig:
    """A dataset: ``kind`` picks the reader (``voc`` layout folder or ``coco`` json); see :func:`wsss.data.open_dataset`.

    ``root`` is relative to the repo root unless absolute. ``gt_folder`` and
    ``object_folder`` apply to ``voc``; ``annotation_file`` and ``image_folder`` to ``coco``.
    """

    name: str = MISSING
    kind: str = "voc"
    root: str = MISSING
    train_split: str = "train"
    val_split: str = "val"
    #: where semantic ground truth for scoring lives (``SegmentationClass`` or SBD's ``SegmentationClassAug``)
    gt_folder: str = "SegmentationClass"
    num_classes: int = 21
    #: VOC layout: folder of instance masks (``SegmentationObject``; BESTIE's SBD copy: ``SegmentationObjectAug``)
    object_folder: str = "SegmentationObject"
    #: COCO: instances json relative to ``root`` (``{split}`` is replaced by the split name)
    annotation_file: str = "annotations/instances_{split}.json"
    #: COCO: folder relative to ``root`` that the json's ``file_name`` values are relative to
    image_folder: str = "{split}"


@dataclass
class SupervisionConfig:
    """Which weak label is used: ``image`` tags, ``point``, ``scribble`` or ``box``."""

    name: str = MISSING
    #: folder (relative to the dataset root) holding the annotation files of this supervision
    annotations: str = "Annotations"


@dataclass
class StageConfig:
    """Fields every stage has. ``out_dir`` is the artifact folder the stage writes."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    seed: int = 0
    #: ``auto`` = CUDA when available, else CPU
    device: str = "auto"
    #: CPU threads for torch and the kernels (0 = all cores)
    num_threads: int = 0
    out_dir: str = MISSING


@dataclass
class SupervisedStageConfig(StageConfig):
    """A stage whose output depends on the supervision kind."""

    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
