"""Plumbing shared by the stage scripts: runtime set-up, scoring label maps, stage folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wsss.data.reader import DatasetReader, VOCLayoutReader
from wsss.errors import WsssError
from wsss.io import load_json, save_json, save_label_png
from wsss.metrics import SegmentationScorer

if TYPE_CHECKING:
    import torch

    from wsss.shards import Shard

    from wsss.weakshot.folds import ClassSets


def prepare(cfg) -> torch.device:
    """Seed everything, set the CPU thread count and return the stage's device."""
    # torch is imported here, not with the module: a stage's spawn workers (wsss.parallel) import the stage's
    # module, and one whose workers need no torch (refine_crf) then starts them in a fraction of a second
    from wsss.training import configure_threads, resolve_device, seed_everything

    seed_everything(int(cfg.seed))
    configure_threads(int(cfg.num_threads))
    return resolve_device(str(cfg.device))


def fold_of(cfg) -> ClassSets | None:
    """The weak-shot class sets of a stage's config (``supervision=weakshot``: its ``supervision.fold``), else None.

    A fold outside the dataset's range is a one-line error naming ``supervision.fold``."""
    supervision = cfg.get("supervision")
    if supervision is None or supervision.name != "weakshot":
        return None
    from wsss.weakshot.folds import class_sets

    return class_sets(supervision.get("fold"), int(cfg.dataset.num_classes))


def open_shard(cfg, annotations: str = "Annotations") -> tuple[DatasetReader, Shard]:
    """The images a per-image stage's job labels: ``cfg.split`` of ``cfg.dataset`` restricted to ``cfg.shard``
    (:meth:`wsss.shards.Shard.restrict`), and that shard. A shard job records its ids in ``<out_dir>/shard.json``
    for the gather (:func:`wsss.shards.gather_shards`)."""
    from wsss.data import open_dataset
    from wsss.shards import Shard

    shard = Shard.from_config(cfg.get("shard"))
    dataset = shard.restrict(open_dataset(cfg.dataset, cfg.split, annotations))
    if shard.sharded:
        shard.write_manifest(cfg.out_dir, dataset.ids)
    return dataset, shard


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or a one-line error saying which upstream output is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise WsssError(f"{folder}: {what} not found (run the upstream stage first)")
    return folder


class LabelStageOutput:
    """Writes a label-producing stage's per-image PNGs and, where ground truth exists, its ``metrics.json``.

    Per image: ``<out_dir>/<id>.png`` (VOC palette). At :meth:`finish`:
    ``metrics.json`` (DESIGN §4) and ``per_image.json`` (``{id: mIoU %}``, for
    finding failures), both only when at least one image had ground truth. A shard job (``shard`` of more
    than one) also writes the scorer's state (:data:`wsss.shards.SCORES_STATE`), from which the gather
    rebuilds the whole split's metrics with :func:`write_label_metrics`.
    """

    def __init__(self, out_dir: str | Path, dataset: DatasetReader, protocol: dict[str, Any],
                 fold: ClassSets | None = None, shard: Shard | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.fold = fold
        self.shard = shard
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        gt = dataset.gt_folder if isinstance(dataset, VOCLayoutReader) else "SegmentationClass"
        self.protocol = {"split": dataset.split, "gt": gt, "ignore_index": 255, **protocol}
        self.scorer = SegmentationScorer(dataset.num_classes, dataset.class_names)
        self.per_image: dict[str, float] = {}

    def add(self, image_id: str, label: np.ndarray) -> None:
        save_label_png(self.out_dir / f"{image_id}.png", label)
        if self.dataset.has_class_mask(image_id):
            gt = self.dataset.load_class_mask(image_id)
            self.per_image[image_id] = self.scorer.add(label, gt, name=image_id)

    def state(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """What :func:`write_label_metrics` needs: the protocol, the scorer's sums, per-image scores, ``extra``."""
        return {"protocol": self.protocol, "class_names": list(self.scorer.class_names),
                **self.scorer.state(), "per_image": self.per_image, "extra": extra,
                "fold": None if self.fold is None else self.fold.fold}

    def finish(self, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Write ``metrics.json`` (with ``extra``'s entries added) and ``per_image.json``; the record, or None
        when no image had ground truth. A shard job also writes its state (extras are then added up over the
        shards: counts, not rates)."""
        state = self.state(extra)
        if self.shard is not None and self.shard.sharded:
            from wsss.shards import SCORES_STATE

            save_json(self.out_dir / SCORES_STATE, state)
        return write_label_metrics(self.out_dir, state)


def merge_label_states(states: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """The state of several shards' :class:`LabelStageOutput` as one: confusion matrices and counts summed,
    per-image scores in shard order, extras by :func:`wsss.shards.merge_counts`. Protocols must agree."""
    from wsss.shards import merge_counts

    first = states[0]
    for state in states[1:]:
        for key in ("protocol", "class_names", "fold"):
            if state[key] != first[key]:
                raise WsssError(f"{where}: shards disagree on {key} ({first[key]!r} vs {state[key]!r})")
    extras = [state["extra"] for state in states if state["extra"] is not None]
    per_image: dict[str, float] = {}
    for state in states:
        per_image.update(state["per_image"])
    return {"protocol": first["protocol"], "class_names": first["class_names"],
            **SegmentationScorer.merge_states(states), "per_image": per_image,
            "extra": merge_counts(extras, f"{where} extra") if extras else None, "fold": first["fold"]}


def write_label_metrics(out_dir: str | Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """``metrics.json`` and ``per_image.json`` of a label folder from its scorer state (:meth:`LabelStageOutput.state`,
    or shards' states merged); the record, or None when no image had ground truth."""
    names = state["class_names"]
    scorer = SegmentationScorer.from_state(state, names)
    if scorer.n_images == 0:
        return None
    protocol = state["protocol"]
    record = {**scorer.record(protocol), **(state["extra"] or {})}
    sets = ""
    if state["fold"] is not None:
        from wsss.weakshot.folds import class_sets, fold_scores_of_record

        record["weakshot"] = fold_scores_of_record(record, class_sets(state["fold"], len(names)))
        scores = record["weakshot"]
        sets = f", fold {scores['fold']}: base {scores['miou_base']:.2f}, novel {scores['miou_novel']:.2f}"
    out = Path(out_dir)
    save_json(out / "per_image.json", state["per_image"])
    save_json(out / "metrics.json", record)
    print(f"[{protocol.get('stage', '')}] mIoU {record['miou']:.2f} over {record['n_images']} images "
          f"(precision {record['precision']:.1f}, recall {record['recall']:.1f}, coverage {record['coverage']:.1f}"
          f"{sets})", flush=True)
    return record


def load_keys(cam_dir: str | Path) -> dict[str, np.ndarray]:
    """The ``keys.json`` of a CAM or propagation folder: image id → class ids (1..20) of its channels."""
    return {k: np.asarray(v, dtype=np.int64) for k, v in load_json(Path(cam_dir) / "keys.json").items()}
