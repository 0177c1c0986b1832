"""Generating a whole minivoc: split planning (ids, train/val, first classes) and the atomic driver :func:`generate`."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from wsss.data.classes import NUM_FOREGROUND, VOC_CLASSES
from wsss.data.minivoc.coco_layout import CocoLayoutWriter
from wsss.data.minivoc.params import MinivocParams
from wsss.data.minivoc.render import render_sample
from wsss.data.minivoc.writers import _write_lists, write_sample
from wsss.errors import WsssError
from wsss.io import save_json
from wsss.progress import Progress

FORMAT_VERSION = 1
_SPLITS = ("train", "val")
#: the dataset layouts :func:`generate` writes
LAYOUTS = ("voc", "coco")


def split_plan(n_train: int, n_val: int, seed: int, year: int = 2026) -> list[tuple[str, str, int, int]]:
    """``(split, image_id, number, first_class)`` for every image, in id order.

    The val images are a seeded random subset of the numbers ``1..n_train+n_val``; the
    first object of the ``j``-th image of a split has class ``perm_b[j % 20]`` with a fresh
    seeded permutation ``perm_b`` of the 20 classes per block ``b = j // 20``.
    """
    total = n_train + n_val
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x73706C74]))
    val_numbers = set((rng.permutation(total)[:n_val] + 1).tolist())
    plan = []
    counters = {"train": 0, "val": 0}
    perms: dict[tuple[str, int], np.ndarray] = {}
    for number in range(1, total + 1):
        split = "val" if number in val_numbers else "train"
        j = counters[split]
        counters[split] += 1
        key = (split, j // NUM_FOREGROUND)
        if key not in perms:
            block_rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLITS.index(split), key[1], 0x70726D]))
            perms[key] = block_rng.permutation(NUM_FOREGROUND) + 1
        plan.append((split, f"{year}_{number:06d}", number, int(perms[key][j % NUM_FOREGROUND])))
    return plan


@dataclass
class GenerationReport:
    """What :func:`generate` wrote."""

    root: str
    n_train: int
    n_val: int
    seed: int
    seconds: float
    class_instances: dict[str, int]
    class_images: dict[str, int]


def _pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(root: Path) -> None:
    """Delete ``.<name>.tmp-<pid>*`` / ``.<name>.old-<pid>*`` siblings left by killed runs (dead pids only)."""
    for path in root.parent.glob(f".{root.name}.*-*"):
        kind, _, rest = path.name[len(root.name) + 2:].partition("-")
        pid_text = rest.split(".", 1)[0].split("_", 1)[0]
        if kind in ("tmp", "old") and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _install(tmp: Path, root: Path, keep: Sequence[str]) -> None:
    """Make ``tmp`` the new ``root``; entries of an old ``root`` named in ``keep`` are carried over."""
    if not root.exists():
        os.replace(tmp, root)
        return
    if not root.is_dir():
        raise WsssError(f"{root}: exists and is not a folder")
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(root, old)
    os.replace(tmp, root)
    for name in keep:
        if (old / name).exists() and not (root / name).exists():
            os.replace(old / name, root / name)
    shutil.rmtree(old, ignore_errors=True)


def generate(
    root: str | os.PathLike,
    n_train: int = 1000,
    n_val: int = 150,
    seed: int = 0,
    params: MinivocParams = MinivocParams(),
    keep: Sequence[str] = (".hydra",),
    progress: bool = True,
    layout: str = "voc",
) -> GenerationReport:
    """Generate minivoc into ``root`` (VOC 2012 layout; see the module docstring), or in COCO layout.

    Args:
        root: the dataset folder to create or replace (``data/minivoc``).
        n_train: images in ``train``.
        n_val: images in ``val``.
        seed: the dataset seed: same seed and parameters, byte-identical files.
        params: drawing parameters (image sizes, objects per image, clutter, noise ...).
        keep: names of entries of an existing ``root`` to carry over (Hydra's ``.hydra``);
            everything else of an old ``root`` is replaced.
        progress: report progress (rate, ETA) on stderr.
        layout: ``voc`` (the package docstring's layout) or ``coco``
            (:mod:`wsss.data.minivoc.coco_layout`: the same images and masks as COCO instances).

    Everything is written into a hidden sibling temporary folder first and moved onto
    ``root`` at the end, so a killed run leaves no half-written dataset.
    """
    if n_train < 1 or n_val < 0:
        raise WsssError(f"minivoc: need n_train >= 1 and n_val >= 0, got n_train={n_train}, n_val={n_val}")
    if n_train + n_val > 999_999:
        raise WsssError(f"minivoc: at most 999999 images (ids have 6 digits), got {n_train + n_val}")
    if layout not in LAYOUTS:
        raise WsssError(f"minivoc: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    params.validate()
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-{os.getpid()}_", dir=root.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset folder should not be
    try:
        plan = split_plan(n_train, n_val, seed, params.year)
        splits: dict[str, list[str]] = {"train": [], "val": []}
        present: dict[str, set[int]] = {}
        instances = np.zeros(NUM_FOREGROUND + 1, dtype=np.int64)
        images = np.zeros(NUM_FOREGROUND + 1, dtype=np.int64)
        coco = CocoLayoutWriter(tmp, params.year) if layout == "coco" else None
        items: Iterable = plan
        if progress:
            items = Progress(plan, desc="make_minivoc", unit="images")
        for split, image_id, number, first_class in items:
            sample = render_sample(seed, number, first_class, params)
            if coco is None:
                write_sample(tmp, image_id, sample, params)
            else:
                coco.add(split, image_id, number, sample, params)
            splits[split].append(image_id)
            ids = {o.class_id for o in sample.objects}
            present[image_id] = ids
            for o in sample.objects:
                instances[o.class_id] += 1
            for cid in ids:
                images[cid] += 1
        if coco is None:
            _write_lists(tmp, splits, present)
        else:
            coco.finish()
        names = VOC_CLASSES[1:]
        report = GenerationReport(
            root=str(root), n_train=n_train, n_val=n_val, seed=seed, seconds=0.0,
            class_instances={n: int(instances[i + 1]) for i, n in enumerate(names)},
            class_images={n: int(images[i + 1]) for i, n in enumerate(names)},
        )
        manifest = {
            "generator": "wsss.data.minivoc",
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "n_train": n_train,
            "n_val": n_val,
            "params": asdict(params),
            **({"layout": layout} if layout != "voc" else {}),  # the VOC layout's manifest predates the key
            "class_instances": report.class_instances,
            "class_images": report.class_images,
        }
        save_json(tmp / "minivoc.json", manifest)
        _install(tmp, root, keep)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.seconds = time.monotonic() - start
    return report
