"""Weak-shot folds: which classes are novel, which images are base, and mIoU over each class set.

PASCAL-5i (VOC, 21 classes): fold ``k`` in 0..3 makes classes ``5k+1 … 5k+5`` novel; background and the other 15
are base. COCO-20i (81 classes): fold ``k`` makes classes ``4m + k + 1`` (m = 0..19) novel.

The image split is a rule on the image tags: an image is *novel* when its tags name a novel class, else *base*.
Base images are used with their ground-truth masks (which must then hold no novel class), novel images with
their tags only. The split of a run is written to ``split.json`` (fold, class sets, counts) and
``split/{base,novel}.txt`` (one id a line) in the seeds folder, and read back by the later stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from wsss.errors import WsssError

#: folds of each class layout (number of classes with background -> number of folds)
FOLDS = {21: 4, 81: 4}
SPLIT_FILE = "split.json"
SPLIT_DIR = "split"


@dataclass(frozen=True)
class ClassSets:
    """The class ids (0 = background) of one fold: ``base`` (background first) and ``novel``, disjoint, sorted."""

    fold: int
    base: tuple[int, ...]
    novel: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"fold": self.fold, "base_classes": list(self.base), "novel_classes": list(self.novel)}


def class_sets(fold: object, num_classes: int = 21, key: str = "supervision.fold") -> ClassSets:
    """The base and novel classes of ``fold``; a fold outside the layout's range is a one-line error naming ``key``."""
    if num_classes not in FOLDS:
        raise WsssError(f"{key}: weak-shot folds are defined for 21 classes (PASCAL-5i) and 81 (COCO-20i), "
                        f"this dataset has {num_classes}")
    folds = FOLDS[num_classes]
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= int(fold) < folds:
        raise WsssError(f"{key}: must be a fold 0..{folds - 1}, got {fold!r}")
    fold = int(fold)
    if num_classes == 21:
        novel = tuple(range(5 * fold + 1, 5 * fold + 6))
    else:
        novel = tuple(4 * m + fold + 1 for m in range(20))
    base = tuple(k for k in range(num_classes) if k not in novel)
    return ClassSets(fold, base, novel)


@dataclass(frozen=True)
class FoldSplit:
    """The images of a split divided by the fold: ``base`` (no novel class in their tags) and ``novel``, dataset order."""

    sets: ClassSets
    base: tuple[str, ...]
    novel: tuple[str, ...]

    def is_base(self, image_id: str) -> bool:
        return image_id in self._base_set

    @property
    def _base_set(self) -> frozenset[str]:
        cached = self.__dict__.get("_base_cache")
        if cached is None:
            cached = frozenset(self.base)
            object.__setattr__(self, "_base_cache", cached)
        return cached


def split_images(classes_of: Mapping[str, Iterable[int]], sets: ClassSets) -> FoldSplit:
    """The rule: an image whose tags (``classes_of[id]``: its object class ids, 1..K-1) name a novel class is novel,
    any other image is base. ``classes_of`` is iterated in dataset order; the result keeps that order."""
    novel = set(sets.novel)
    base_ids, novel_ids = [], []
    for image_id, classes in classes_of.items():
        (novel_ids if novel.intersection(int(c) for c in classes) else base_ids).append(image_id)
    return FoldSplit(sets, tuple(base_ids), tuple(novel_ids))


def check_base_mask(mask: np.ndarray, sets: ClassSets, where: str, class_names: Sequence[str] | None = None) -> None:
    """A base image's ground truth must hold no novel class: otherwise a one-line error naming ``where`` (the mask file)."""
    present = np.unique(mask)
    found = [int(k) for k in present if int(k) in sets.novel]
    if found:
        names = ", ".join(class_names[k] if class_names else str(k) for k in found)
        raise WsssError(f"{where}: a base image of fold {sets.fold} (its tags name no novel class) has pixels of novel "
                        f"class(es) {names}; fix its tags or its mask")


def write_split(folder: str | Path, split: FoldSplit) -> None:
    """``split.json`` and ``split/{base,novel}.txt`` in ``folder`` (each written atomically)."""
    from wsss.io import save_json, save_text

    folder = Path(folder)
    save_text(folder / SPLIT_DIR / "base.txt", "".join(f"{i}\n" for i in split.base))
    save_text(folder / SPLIT_DIR / "novel.txt", "".join(f"{i}\n" for i in split.novel))
    save_json(folder / SPLIT_FILE, {**split.sets.as_dict(), "n_base_images": len(split.base),
                                    "n_novel_images": len(split.novel),
                                    "rule": "novel image: its tags name a novel class; base image: any other"})


def read_split(folder: str | Path) -> FoldSplit:
    """The split written by :func:`write_split` into ``folder`` (a weak-shot seeds folder); one-line errors."""
    from wsss.io import load_json

    folder = Path(folder)
    path = folder / SPLIT_FILE
    if not path.is_file():
        raise WsssError(f"{path}: missing: not a weak-shot seeds folder (make_seeds with supervision=weakshot writes it)")
    record = load_json(path)
    try:
        sets = ClassSets(int(record["fold"]), tuple(int(k) for k in record["base_classes"]),
                         tuple(int(k) for k in record["novel_classes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WsssError(f"{path}: malformed split record ({type(exc).__name__}: {exc})") from None
    lists = {}
    for name in ("base", "novel"):
        list_path = folder / SPLIT_DIR / f"{name}.txt"
        if not list_path.is_file():
            raise WsssError(f"{list_path}: missing (written with {SPLIT_FILE} by make_seeds)")
        lists[name] = tuple(line.strip() for line in list_path.read_text().splitlines() if line.strip())
    return FoldSplit(sets, lists["base"], lists["novel"])


def set_miou(per_class_iou: Sequence[float], classes: Iterable[int]) -> float:
    """Mean IoU over ``classes`` (indices into ``per_class_iou``), NaN entries (a class absent from both ground truth
    and prediction) left out, as the all-class mIoU does; NaN when none is defined."""
    values = [float(per_class_iou[k]) for k in classes if k < len(per_class_iou)]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def fold_scores(per_class_iou: Sequence[float], sets: ClassSets) -> dict:
    """``{"fold", "base_classes", "novel_classes", "miou_all", "miou_base", "miou_novel"}`` from per-class IoU
    (in the units given: the metrics records hold percent)."""
    every = range(len(per_class_iou))
    return {**sets.as_dict(), "miou_all": set_miou(per_class_iou, every), "miou_base": set_miou(per_class_iou, sets.base),
            "miou_novel": set_miou(per_class_iou, sets.novel)}


def fold_scores_of_record(record: Mapping, sets: ClassSets) -> dict:
    """:func:`fold_scores` of a ``metrics.json`` record (its ``per_class_iou``, in class order)."""
    per_class = [math.nan if v is None else float(v) for v in record["per_class_iou"].values()]
    return fold_scores(per_class, sets)
