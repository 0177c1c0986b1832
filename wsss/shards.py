"""Shards of a per-image stage: which images a shard job labels, and the gather that makes the stage's folder.

A per-image stage (CAMs, seeds, propagation, CRF, export) may run as ``count`` shard jobs (Snakemake config
``shards``, DESIGN §2: the ``{shard}`` wildcard plus a gather rule). Shard ``index`` of ``count`` takes a
contiguous block of the split's ids in split order (:meth:`Shard.select`): the split depends only on the ids
and ``count``, never on an earlier run, and concatenating the blocks in index order gives the split back.

A shard job writes the stage's usual files for its images into its own folder, plus ``shard.json`` (its
index, count and ids) and, beside each ``metrics.json``, the scorer's state ``scores.state.json``
(:class:`wsss.pipeline.LabelStageOutput`). :func:`gather_shards` then builds the folder an unsharded run
writes, byte for byte:

* a file named after one of a shard's images (``<id>.png``, ``scores/<id>.npy``, ...) is hard-linked in
  (copied across file systems); the same file in two shards is an error;
* ``keys.json`` and other image-keyed maps (:data:`ID_MAPS`): the union, in shard order (= split order);
* ``metrics.json`` / ``per_image.json``: rebuilt from the *summed* confusion matrices of the shards' states
  (not an average of shard mIoUs), by the same code as an unsharded run;
* counters (:data:`COUNTERS`, e.g. GrabCut's ``grabcut.json``): numbers added, lists concatenated;
* COCO jsons (:data:`COCO_JSONS`: instance pseudo-labels, their ground truth): images and annotations
  concatenated, annotation ids renumbered; the instance metrics (VOC mAP_r, COCO AP: not sums) scored again from
  the shards' instance scorer states (``instances.state.json``);
* any other file must be the same in every shard (e.g. weak-shot's ``split.json``, computed on the whole
  split), else the gather stops naming it;
* each shard's ``.hydra/`` (its exact config) goes to ``.hydra/shards/<index>/``.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from wsss.errors import WsssError
from wsss.io import load_json, save_json

MANIFEST = "shard.json"
#: the scorer's state beside a label folder's metrics.json (sharded runs only)
SCORES_STATE = "scores.state.json"
#: json files mapping image ids to values, merged as one map
ID_MAPS = ("keys.json",)
#: json files of counts over the images, merged by :func:`merge_counts`
COUNTERS = ("grabcut.json",)
#: COCO instances jsons, merged by :func:`wsss.instances.coco.merge_coco`
COCO_JSONS = ("instances.json", "gt.json")
#: rebuilt from :data:`SCORES_STATE` (wsss.pipeline.write_label_metrics)
REBUILT = ("metrics.json", "per_image.json")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count`` of a split; ``count == 1`` is the whole split, unsharded."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if int(self.count) < 1:
            raise WsssError(f"shard.count: must be at least 1, got {self.count}")
        if not 0 <= int(self.index) < int(self.count):
            raise WsssError(f"shard.index: must be in 0..{int(self.count) - 1} (shard.count={self.count}), "
                            f"got {self.index}")

    @classmethod
    def from_config(cls, node: Any) -> "Shard":
        """From a stage config's ``shard`` node (``index``, ``count``), or the whole split when it is None."""
        return cls() if node is None else cls(int(node.index), int(node.count))

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def select(self, ids: Sequence[str]) -> list[str]:
        """This shard's block of ``ids``: ``ids[index*n//count : (index+1)*n//count]`` (sizes differ by at most 1)."""
        n = len(ids)
        return list(ids[self.index * n // self.count:(self.index + 1) * n // self.count])

    def restrict(self, dataset: Any) -> Any:
        """A shallow copy of the reader ``dataset`` whose ``ids`` are this shard's (the reader itself when unsharded).

        ``split_ids`` of the copy keeps the whole split, for what a stage computes over every image (weak-shot's
        base/novel split)."""
        if not self.sharded:
            return dataset
        view = copy.copy(dataset)
        view.split_ids = list(dataset.ids)
        view.ids = self.select(dataset.ids)
        return view

    def write_manifest(self, out_dir: str | Path, ids: Sequence[str]) -> None:
        """``<out_dir>/shard.json``: index, count and the shard's ids (what :func:`gather_shards` checks)."""
        save_json(Path(out_dir) / MANIFEST, {"index": self.index, "count": self.count, "ids": list(ids)})


def split_ids(dataset: Any) -> list[str]:
    """Every id of the reader's split, also when the reader is restricted to a shard (:meth:`Shard.restrict`)."""
    return list(getattr(dataset, "split_ids", dataset.ids))


def merge_counts(records: Sequence[Any], where: str) -> Any:
    """Counters of several shards as one: numbers added, lists concatenated, maps merged key by key (in first
    appearance order); anything else must be equal."""
    first = records[0]
    if all(isinstance(r, bool) for r in records) or not all(type(r) is type(first) for r in records):
        if any(r != first for r in records):
            raise WsssError(f"{where}: shards disagree ({first!r} vs {next(r for r in records if r != first)!r})")
        return first
    if isinstance(first, (int, float)):
        return sum(records)
    if isinstance(first, list):
        return [item for record in records for item in record]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(key for record in records for key in record))
        merged = {}
        for key in keys:
            values = [record[key] for record in records if key in record]
            merged[key] = merge_counts(values, f"{where}.{key}") if len(values) > 1 else values[0]
        return merged
    if any(r != first for r in records):
        raise WsssError(f"{where}: shards disagree ({first!r} vs {next(r for r in records if r != first)!r})")
    return first


def read_manifests(shard_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The shards' manifests, checked: each folder exists and holds one, indices are 0..n-1 in order, every count
    is n, no image is in two shards. A problem is a one-line error naming the folder."""
    manifests = []
    seen: dict[str, str] = {}
    for position, folder in enumerate(map(Path, shard_dirs)):
        path = folder / MANIFEST
        if not path.is_file():
            raise WsssError(f"{path}: shard manifest not found (run the shard job first)")
        manifest = load_json(path)
        if manifest.get("index") != position or manifest.get("count") != len(shard_dirs):
            raise WsssError(f"{path}: shard {manifest.get('index')} of {manifest.get('count')}, expected shard "
                            f"{position} of {len(shard_dirs)}")
        for image_id in manifest["ids"]:
            if image_id in seen:
                raise WsssError(f"{path}: image {image_id!r} is also in {seen[image_id]}")
            seen[image_id] = str(path)
        manifests.append(manifest)
    return manifests


def _rebuilt_beside(folder: Path, read: Callable[[Path], Any]) -> set[str]:
    """Names of the files in a shard's ``folder`` that the gather rebuilds from the states beside them (``read``:
    the gather's json reader, which parses each file once)."""
    from wsss.instances.scoring import INSTANCE_STATE

    names = set(REBUILT) if (folder / SCORES_STATE).is_file() else set()
    if (folder / INSTANCE_STATE).is_file():
        names.add(read(folder / INSTANCE_STATE)["metrics_file"])
    return names


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or no hard links
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.copy2(source, tmp)
        os.replace(tmp, target)


def _image_stem(name: str) -> str:
    return name.split(".", 1)[0] if not name.startswith(".") else name


def gather_shards(shard_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Build the stage folder ``out_dir`` from its shards' folders (see the module docstring); returns counts of
    what was done: ``{"images": ..., "linked": ..., "merged": ..., "shared": ...}``."""
    from wsss.instances.coco import merge_coco
    from wsss.instances.scoring import INSTANCE_STATE, InstanceScorer, write_instance_metrics
    from wsss.pipeline import merge_label_states, write_label_metrics

    shard_dirs = [Path(folder) for folder in shard_dirs]
    manifests = read_manifests(shard_dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grouped: dict[Path, list[Path]] = {}  # relative path of a non-image file -> its copies, in shard order
    holders: dict[Path, set[int]] = {}  # ... -> the shards that have it
    with_images = {manifest["index"] for manifest in manifests if manifest["ids"]}
    linked = 0
    for folder, manifest in zip(shard_dirs, manifests):
        ids = set(manifest["ids"])
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder)
            if relative.parts[0] == ".hydra":
                _link(path, out / ".hydra" / "shards" / str(manifest["index"]) / relative.relative_to(".hydra"))
            elif relative == Path(MANIFEST):
                continue
            elif _image_stem(relative.name) in ids:
                if (out / relative).exists():
                    raise WsssError(f"{path}: {out / relative} exists already (an image in two shards?)")
                _link(path, out / relative)
                linked += 1
            else:
                grouped.setdefault(relative, []).append(path)
                holders.setdefault(relative, set()).add(manifest["index"])
    rebuilt: dict[Path, set[str]] = {}
    parsed: dict[Path, Any] = {}

    def read(path: Path) -> Any:
        if path not in parsed:
            parsed[path] = load_json(path)
        return parsed[path]

    merged = shared = 0
    for relative, copies in sorted(grouped.items()):
        name, target = relative.name, out / relative
        where = f"{copies[0].parent}/{name}"
        missing = sorted(with_images - holders[relative])
        if missing:  # a shard without images may lack a file (a folder its stage makes at the first image)
            raise WsssError(f"{relative}: missing in shard {missing[0]} of {len(shard_dirs)}, which has images")
        if copies[0].parent not in rebuilt:
            rebuilt[copies[0].parent] = _rebuilt_beside(copies[0].parent, read)
        if name in rebuilt[copies[0].parent]:
            continue
        if name in REBUILT:
            raise WsssError(f"{where}: no {SCORES_STATE} beside it to rebuild it from (not a shard job's folder?)")
        if name == INSTANCE_STATE:
            states = [read(path) for path in copies]  # an instance state holds every mask: parsed once
            metrics_file = merge_counts([state["metrics_file"] for state in states], f"{where} metrics_file")
            merged_state = {**InstanceScorer.merge_states(states, where), "metrics_file": metrics_file}
            write_instance_metrics(target.parent, merged_state)
            merged += 1
            continue
        if name == SCORES_STATE:
            state = merge_label_states([load_json(path) for path in copies], where)
            write_label_metrics(target.parent, state)
            merged += 1
        elif name in ID_MAPS:
            union: dict[str, Any] = {}
            for path in copies:
                union.update(load_json(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            save_json(target, union)
            merged += 1
        elif name in COCO_JSONS:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_json(target, merge_coco([load_json(path) for path in copies], where))
            merged += 1
        elif name in COUNTERS:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_json(target, merge_counts([load_json(path) for path in copies], where))
            merged += 1
        else:
            content = copies[0].read_bytes()
            for path in copies[1:]:
                if path.read_bytes() != content:
                    raise WsssError(f"{path}: differs from {copies[0]}, and it is neither an image's file nor a "
                                    f"merged one")
            _link(copies[0], target)
            shared += 1
    images = sum(len(manifest["ids"]) for manifest in manifests)
    return {"images": images, "linked": linked, "merged": merged, "shared": shared}
