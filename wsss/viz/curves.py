"""Training curves of a training stage, from its ``history`` at the end of training.

:func:`write_training_curves` writes into a training stage's output folder::

    curves.png      every series of the history, one panel each (Pillow, no plotting library); the same
                    history gives the same bytes (no dates, no host names)
    tensorboard/    TensorBoard event files of the same series (``tensorboard --logdir results``); their
                    names and contents hold the wall-clock time and the host name, so they differ run to run

The series (:func:`curve_series`): ``train/<key>`` for each number of the history records (losses, the
classifier's exact match …) but the step and the learning rate, ``lr`` (the trunk group's), and
``val/<key>`` for each validation record (the retraining stages' val metrics, scored once at the end).
The step is the records' ``epoch`` or ``iteration``. Both are written from the history once training is
over, so a run resumed from a checkpoint writes what an uninterrupted one does; both go through a
temporary name (the event files through a temporary folder) and a rename.

:func:`curves_html` is the gallery's (and the comparison page's) section showing the curves of the
training stages of a run.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from wsss.io import _UMASK, _WRITE_ERRNOS, _write_error, atomic_path

CURVES_PNG = "curves.png"
TENSORBOARD_DIR = "tensorboard"
STEP_KEYS = ("epoch", "iteration", "step")
Series = dict[str, list[tuple[int, float]]]

_COLORS = {"train": (31, 119, 180), "lr": (44, 160, 44), "val": (214, 39, 40)}


def step_key(records: Sequence[Mapping[str, Any]]) -> str:
    """The key that numbers the records (``epoch``, ``iteration`` or ``step``); ``step`` when none has one."""
    for key in STEP_KEYS:
        if records and all(key in record for record in records):
            return key
    return "step"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def curve_series(history: Sequence[Mapping[str, Any]], validation: Sequence[Mapping[str, Any]] = ()) -> Series:
    """``{tag: [(step, value), ...]}``: ``train/<key>``, then ``lr``, then ``val/<key>`` (module docstring).

    Records without a step are numbered 1, 2, … in order; values that are not finite numbers (null, NaN)
    are left out.
    """
    series: Series = {}

    def add(records: Sequence[Mapping[str, Any]], prefix: str) -> None:
        key = step_key(records)
        for index, record in enumerate(records, start=1):
            step = int(record.get(key, index))
            for name, value in record.items():
                number = _number(value)
                if name == key or number is None:
                    continue
                tag = "lr" if prefix == "train" and name == "lr" else f"{prefix}/{name}"
                series.setdefault(tag, []).append((step, number))

    add(history, "train")
    if "lr" in series:  # after the training numbers, before validation
        series["lr"] = series.pop("lr")
    add(validation, "val")
    return series


# ---------------------------------------------------------------- TensorBoard
def write_tensorboard(folder: str | os.PathLike, series: Series) -> Path:
    """Event files of ``series`` in ``folder`` (replacing what is there): written into a temporary folder
    beside it, then renamed into place. Temporary folders a killed run left are removed first. A full disk
    (or another filesystem refusal) is a one-line :class:`WsssError` naming the folder."""
    folder = Path(folder)
    try:
        return _write_tensorboard(folder, series)
    except OSError as exc:
        if exc.errno in _WRITE_ERRNOS:
            raise _write_error(folder, exc) from None
        raise


def _write_tensorboard(folder: Path, series: Series) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{folder.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders
    try:
        writer = SummaryWriter(log_dir=str(tmp))
        for tag, points in series.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)
        writer.close()
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_tensorboard(folder: str | os.PathLike) -> Series:
    """The scalars of the event files in ``folder`` as ``{tag: [(step, value), ...]}`` (for tests and tools)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


# ---------------------------------------------------------------- the PNG
def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: no size
        return ImageFont.load_default()


def _tick(value: float) -> str:
    return f"{value:.3g}"


PANEL_W, PANEL_H, COLUMNS = 380, 170, 2
_LEFT, _TOP, _GAP_X, _GAP_Y = 62, 22, 28, 44


def plot_curves(path: str | os.PathLike, series: Series, title: str = "", step: str = "step") -> Path:
    """Write ``series`` as a PNG of one panel per tag (two columns, one step axis) to ``path``, atomically;
    returns it."""
    font = _font()
    tags = list(series)
    steps = [s for points in series.values() for s, _ in points]
    span = (min(steps), max(steps)) if steps else (0, 1)
    rows = max(1, math.ceil(len(tags) / COLUMNS))
    cell_w, cell_h = _LEFT + PANEL_W + _GAP_X, _TOP + PANEL_H + _GAP_Y
    width, height = 12 + COLUMNS * cell_w, 30 + rows * cell_h
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 10), title or "training curves", fill=(0, 0, 0), font=font, anchor="mt")
    if not tags:
        draw.text((width // 2, height // 2), "no training records", fill=(110, 110, 110), font=font, anchor="mm")
    for index, tag in enumerate(tags):
        row, column = divmod(index, COLUMNS)
        _panel(draw, font, 12 + column * cell_w + _LEFT, 30 + row * cell_h + _TOP, tag, series[tag], span, step)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def _panel(draw: ImageDraw.ImageDraw, font, left: int, top: int, tag: str, points: list[tuple[int, float]],
           span: tuple[int, int], step: str) -> None:
    color = _COLORS.get(tag.split("/")[0], (0, 0, 0))
    draw.text((left, top - 6), tag, fill=color, font=font, anchor="ls")
    right, bottom = left + PANEL_W, top + PANEL_H
    values = [v for _, v in points]
    x0, x1 = span
    y0, y1 = (min(values), max(values)) if values else (0.0, 1.0)
    if y1 - y0 <= 1e-12 * max(abs(y0), abs(y1), 1e-30):
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad

    def xy(s: int, v: float) -> tuple[float, float]:
        x = (left + right) / 2 if x1 == x0 else left + (s - x0) / (x1 - x0) * PANEL_W
        return x, bottom - (v - y0) / (y1 - y0) * PANEL_H

    for k in range(5):
        value = y0 + (y1 - y0) * k / 4
        y = bottom - PANEL_H * k / 4
        draw.line([(left, y), (right, y)], fill=(228, 228, 228))
        draw.text((left - 5, y), _tick(value), fill=(80, 80, 80), font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for s in sorted({x0, x1}):
        x, _ = xy(s, y0)
        draw.line([(x, bottom), (x, bottom + 4)], fill=(0, 0, 0))
        draw.text((x, bottom + 6), str(s), fill=(80, 80, 80), font=font, anchor="mt")
    draw.text(((left + right) / 2, bottom + 20), step, fill=(110, 110, 110), font=font, anchor="mt")
    coords = [xy(s, v) for s, v in points]
    if len(coords) > 1:
        draw.line(coords, fill=color, width=2)
    if len(coords) <= 12:
        for x, y in coords:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
    if points:
        draw.text((right, top - 6), f"last {_tick(values[-1])}", fill=color, font=font, anchor="rs")


def write_training_curves(out_dir: str | os.PathLike, history: Sequence[Mapping[str, Any]],
                          validation: Sequence[Mapping[str, Any]] = (), final: Mapping[str, Any] | None = None,
                          title: str = "") -> Series:
    """``<out_dir>/curves.png`` and ``<out_dir>/tensorboard/`` from ``history``; returns the series written.

    ``validation``: val records numbered like the history; ``final``: val scores of the trained model
    (``{"miou": 61.2}``), placed at the history's last step. None values are left out.
    """
    out = Path(out_dir)
    records = list(validation)
    if final and history:
        key = step_key(history)
        records.append({key: history[-1].get(key, len(history)), **final})
    series = curve_series(history, records)
    plot_curves(out / CURVES_PNG, series, title, step_key(history))
    write_tensorboard(out / TENSORBOARD_DIR, series)
    return series


# ---------------------------------------------------------------- pages
def curve_label(folder: str | os.PathLike, results: str | os.PathLike | None) -> str:
    """How a page names a training folder: its path under ``results`` (``minivoc/classifier``), else its name."""
    folder = Path(folder)
    if results:
        try:
            return folder.resolve().relative_to(Path(results).resolve()).as_posix()
        except ValueError:
            pass
    return folder.name


def copy_curves(folders: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike
                ) -> tuple[dict[str, str], list[str]]:
    """Copy each training folder's ``curves.png`` to ``<out_dir>/curves/<label>.png`` (``/`` → ``__``).

    ``folders``: label → training stage folder. Returns ``({label: path relative to out_dir}, [labels of the
    folders that are there but hold no curves.png])``; a folder that does not exist (a stage not run) is
    skipped. Copies of earlier builds that are not in this one are removed.
    """
    out = Path(out_dir) / "curves"
    shown: dict[str, str] = {}
    missing: list[str] = []
    for label, folder in folders.items():
        source = Path(folder) / CURVES_PNG
        if not source.is_file():
            if Path(folder).is_dir():
                missing.append(label)
            continue
        name = label.replace("/", "__") + ".png"
        with atomic_path(out / name) as tmp:
            shutil.copyfile(source, tmp)
        shown[label] = f"curves/{name}"
    if out.is_dir():
        kept = {Path(p).name for p in shown.values()}
        for stale in out.glob("*.png"):
            if stale.name not in kept:
                stale.unlink(missing_ok=True)
    return shown, missing


def curves_html(shown: Mapping[str, str], missing: Sequence[str] = ()) -> str:
    """The page section of the training curves (empty when there are no training stages at all)."""
    if not shown and not missing:
        return ""
    figures = "".join(f'<figure><img src="{html.escape(src)}" alt="training curves of {html.escape(label)}" '
                      f'loading="lazy"><figcaption>{html.escape(label)}</figcaption></figure>'
                      for label, src in shown.items())
    note = (f'<p class="meta">no {CURVES_PNG} in: {html.escape(", ".join(missing))}</p>' if missing else "")
    return ('<section class="block curves"><h2>Training curves <small>(loss, learning rate, val metric; '
            f'TensorBoard files in each folder\'s {TENSORBOARD_DIR}/)</small></h2>'
            f'<div class="curves">{figures}</div>{note}</section>')
