"""Config nodes shared by every stage (paths, dataset, supervision, seed, device), and the helpers that build a
schema node from a library parameter dataclass (:mod:`wsss.params`)."""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping, Optional

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
    #: the default recipe (``conf/recipe/<name>.yaml``) of this supervision's targets; workflow routing only,
    #: left out of every stage's config hash (:func:`wsss.config.config_hash`)
    recipe: str = MISSING
    #: ``weakshot`` only: the fold (PASCAL-5i 0..3: classes 5k+1..5k+5 novel; :mod:`wsss.weakshot.folds`)
    fold: Optional[int] = None


@dataclass
class ShardConfig:
    """Which part of the split a per-image stage labels (:class:`wsss.shards.Shard`): block ``index`` of ``count``.
    Set by the DAG's shard rules (Snakemake config ``shards``); ``count: 1`` is the whole split."""

    index: int = 0
    count: int = 1


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


def config_fields(
    params: type, *, drop: Collection[str] = (), replace: Mapping[str, tuple[str, Any, Any]] | None = None
) -> list[tuple[str, Any, Any]]:
    """The fields of the library dataclass ``params`` (:mod:`wsss.params`), in order, as specs for :func:`config_class`.

    Same names and defaults; tuple and sequence fields become lists (OmegaConf's). ``drop``: fields the
    config does not carry (set at run time); ``replace``: ``{field: (name, type, default)}`` put in its
    place (e.g. ``init_from_classifier`` for the file path ``init_trunk`` it resolves to).
    """
    hints = typing.get_type_hints(params)
    specs: list[tuple[str, Any, Any]] = []
    for item in dataclasses.fields(params):
        if item.name in drop:
            continue
        if replace and item.name in replace:
            specs.append(replace[item.name])
            continue
        kind, default = hints[item.name], item.default
        if typing.get_origin(kind) in (tuple, collections.abc.Sequence):
            kind = list[typing.get_args(kind)[0]]  # type: ignore[misc]
            default = field(default_factory=functools.partial(list, default))
        specs.append((item.name, kind, default))
    return specs


def config_class(name: str, doc: str, specs: Iterable[tuple[str, Any, Any]]) -> type:
    """A (mutable) schema dataclass from ``(name, type, default or dataclasses.field)`` specs.

    Library parameter dataclasses are often frozen, and OmegaConf makes a frozen node read-only
    (YAML could not set it), so a schema copies their fields (:func:`config_fields`) instead of nesting them.
    """
    fields = [(key, kind, value if isinstance(value, dataclasses.Field) else field(default=value))
              for key, kind, value in specs]
    cls = dataclasses.make_dataclass(name, fields, namespace={"__doc__": doc})
    cls.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    return cls
