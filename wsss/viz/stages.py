"""Finding the label stages of a run, generically, in pipeline order.

A *label stage* is any artifact folder that holds per-image label maps
(``<id>.png``, VOC palette) and/or a ``metrics.json`` (DESIGN §4), with the
optional ``per_image.json`` (``{id: mIoU %}``) beside them. For a run folder
(a recipe's ``results/<dataset>/<supervision>/<recipe>/``) they are:

* ``results/<dataset>/cam/labels`` — the CAM argmax labels, named ``cam``;
* ``<cam_dir>/bilinear/labels`` — where ``make_cam`` upsampled through superpixels (MSA), the same CAMs upsampled
  bilinearly, named ``cam_bilinear`` (:func:`bilinear_cam_folder`; the stage passes it as an ``extra``);
* named folders outside the run given as ``extra`` (the recipe's shared ``seeds``);
* every sub-folder of the run folder that is a label folder (``propagate``,
  ``crf``, ``pseudolabels``, and whatever else a stage adds), named by its folder.

Model folders (``affinity``, ``classifier``) hold neither and are skipped, as
are folders whose ``metrics.json`` is not a semantic record (no ``miou``, e.g.
instance AP), the gallery's own folder and any name in ``exclude`` (by default
the products retrained *from* the pseudo-labels: ``deeplab``, ``maskrcnn``,
``instances``; a gallery is about the pseudo-label stages, and depending on
them would make Snakemake retrain those models to draw a page). A stage whose
``metrics.json`` says it was scored on another split than the gallery's is
left out too (its numbers would not be comparable). The order follows
``order`` (the pipeline order where it is known); stages not listed there take
the place of the ``"*"`` entry, alphabetically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from wsss.errors import WsssError
from wsss.io import load_json

#: default display order; ``*`` = every discovered stage not named here (alphabetically)
DEFAULT_ORDER: tuple[str, ...] = ("cam", "cam_bilinear", "seeds", "propagate", "random_walk", "a2gnn", "apro", "tree",
                                  "*", "crf", "pseudolabels")
#: folders that never are label stages
DEFAULT_EXCLUDE: tuple[str, ...] = ("gallery", "deeplab", "maskrcnn", "instances")
CAM_STAGE = "cam"
#: the CAMs of a superpixel-upsampling ``make_cam`` upsampled bilinearly (``<cam_dir>/bilinear/labels``)
CAM_BILINEAR_STAGE = "cam_bilinear"


@dataclass
class LabelStage:
    """One label stage: its name, folder, ``metrics.json`` record (or None) and per-image mIoU."""

    name: str
    folder: Path
    metrics: dict[str, Any] | None = None
    per_image: dict[str, float | None] = field(default_factory=dict)

    def label_path(self, image_id: str) -> Path:
        """``<folder>/<id>.png``."""
        return self.folder / f"{image_id}.png"


def is_label_folder(folder: Path) -> bool:
    """Whether ``folder`` holds at least one ``*.png`` directly, or a semantic ``metrics.json`` (with ``miou``)."""
    if not folder.is_dir():
        return False
    if any(child.suffix == ".png" and child.is_file() for child in folder.iterdir()):
        return True
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        return False
    try:
        record = load_json(metrics)
    except WsssError:
        return True  # a label stage with a broken record: discover_label_stages reports it
    return isinstance(record, dict) and "miou" in record


def load_metrics(path: Path) -> dict[str, Any] | None:
    """A ``metrics.json`` record, ``None`` when the file does not exist.

    The record must be a JSON object with a numeric (or null) ``miou``; anything
    else is a one-line :class:`WsssError` naming the file.
    """
    if not path.is_file():
        return None
    record = load_json(path)
    if not isinstance(record, dict) or "miou" not in record:
        raise WsssError(f"{path}: not a metrics record (expected a JSON object with 'miou')")
    if record["miou"] is not None and not isinstance(record["miou"], (int, float)):
        raise WsssError(f"{path}: 'miou' must be a number, got {record['miou']!r}")
    return record


def load_per_image(path: Path) -> dict[str, float | None]:
    """A ``per_image.json`` (``{id: mIoU %}``; null/NaN kept as None), empty when absent."""
    if not path.is_file():
        return {}
    record = load_json(path)
    if not isinstance(record, dict):
        raise WsssError(f"{path}: per-image record must be a JSON object {{id: mIoU}}")
    scores: dict[str, float | None] = {}
    for key, value in record.items():
        if value is None:
            scores[str(key)] = None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            scores[str(key)] = None if math.isnan(value) else float(value)
        else:
            raise WsssError(f"{path}: value of '{key}' must be a number or null, got {value!r}")
    return scores


def order_stage_names(names: Iterable[str], order: Sequence[str] = DEFAULT_ORDER) -> list[str]:
    """``names`` sorted by their place in ``order``; unlisted names go where ``"*"`` is (at the end if absent)."""
    names = list(dict.fromkeys(names))
    order = list(order)
    if "*" not in order:
        order.append("*")
    wildcard = order.index("*")
    rank = {name: index for index, name in enumerate(order) if name != "*"}
    return sorted(names, key=lambda n: (rank.get(n, wildcard), n if n not in rank else ""))


def candidate_folders(stages_dir: Path, cam_dir: Path | None, exclude: Iterable[str | Path] = DEFAULT_EXCLUDE,
                      extra: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """``{stage name: folder}`` of every label folder of a run (unordered, unloaded); ``extra``: named
    folders outside ``stages_dir`` (a recipe's shared seeds), taken when they are label folders."""
    exclude = list(exclude)
    as_path = [isinstance(e, Path) or "/" in str(e) for e in exclude]
    excluded_names = {str(e) for e, p in zip(exclude, as_path) if not p}
    excluded_paths = {Path(e).resolve() for e, p in zip(exclude, as_path) if p}
    found: dict[str, Path] = {}
    if cam_dir is not None and is_label_folder(Path(cam_dir) / "labels"):
        found[CAM_STAGE] = Path(cam_dir) / "labels"
    for name, folder in (extra or {}).items():
        if is_label_folder(Path(folder)):
            found[name] = Path(folder)
    if stages_dir.is_dir():
        for child in sorted(stages_dir.iterdir()):
            if child.name.startswith(".") or child.name in excluded_names or child.resolve() in excluded_paths:
                continue
            if is_label_folder(child):
                if child.name in found:
                    raise WsssError(f"{child}: stage name '{child.name}' is taken by {found[child.name]}")
                found[child.name] = child
    return found


def bilinear_cam_folder(cam_dir: str | Path | None) -> Path | None:
    """``<cam_dir>/bilinear/labels`` when it is there (``make_cam upsample=superpixel`` writes it), else None."""
    if not cam_dir:
        return None
    folder = Path(cam_dir) / "bilinear" / "labels"
    return folder if folder.is_dir() else None


def stage_title(stage: LabelStage) -> str:
    """A stage's column title: its name, and how its CAMs were upsampled where that is not bilinear (the ``cam``
    stage of a superpixel-upsampling ``make_cam``, shown beside ``cam_bilinear``), from its metrics protocol."""
    protocol = (stage.metrics or {}).get("protocol") or {}
    upsample = protocol.get("upsample") if isinstance(protocol, Mapping) else None
    if upsample and str(upsample) != "bilinear":
        return f"{stage.name} ({upsample}-upsampled)"
    return stage.name


def discover_label_stages(stages_dir: str | Path, cam_dir: str | Path | None = None,
                          order: Sequence[str] = DEFAULT_ORDER,
                          exclude: Iterable[str | Path] = DEFAULT_EXCLUDE,
                          split: str | None = None, extra: Mapping[str, Path] | None = None) -> list[LabelStage]:
    """Every label stage of a run with its metrics, in display order (see the module docstring).

    ``exclude`` holds folder names (``"gallery"``) or paths (the gallery's own
    output folder, wherever it is). With ``split``, a stage whose metrics were
    computed on another split is left out (and said so on stdout).
    """
    folders = candidate_folders(Path(stages_dir), Path(cam_dir) if cam_dir else None, exclude, extra)
    stages = []
    for name in order_stage_names(folders, order):
        folder = folders[name]
        metrics = load_metrics(folder / "metrics.json")
        scored_on = ((metrics or {}).get("protocol") or {}).get("split")
        if split is not None and scored_on is not None and str(scored_on) != str(split):
            print(f"[stages] {folder}: left out, scored on split '{scored_on}', not '{split}'", flush=True)
            continue
        stages.append(LabelStage(name, folder, metrics, load_per_image(folder / "per_image.json")))
    return stages


def metrics_summary(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The parts of a ``metrics.json`` a gallery shows: mIoU, precision, recall, coverage, n_images, per-class IoU,
    and a weak-shot stage's base and novel mIoU (``miou_base``, ``miou_novel``)."""
    if record is None:
        return None
    keys = ("miou", "precision", "recall", "coverage", "pixel_accuracy", "n_images")
    summary: dict[str, Any] = {key: record.get(key) for key in keys}
    summary["per_class_iou"] = dict(record.get("per_class_iou") or {})
    weakshot = record.get("weakshot")
    if isinstance(weakshot, Mapping):
        summary["miou_base"], summary["miou_novel"] = weakshot.get("miou_base"), weakshot.get("miou_novel")
    return summary
