"""Helpers the Snakefile uses to call stages: Hydra overrides per job and their fingerprints.

Snakemake config keys (``--config KEY="..."``):

* ``overrides``: Hydra overrides for every stage, e.g. ``"dataset.root=/data/VOC2012 seed=1"``;
* ``<stage>`` (e.g. ``refine_crf``): overrides for that stage only, e.g. ``"crf.iterations=5"``.

Each job's ``params.fingerprint`` is :func:`wsss.config.stage_fingerprint` of
the overrides its shell command passes (less the folder paths, which follow from the wildcards), so a YAML edit, an override or a
change of the stage's code reruns that job and everything downstream; nothing
upstream. A bad override fails while Snakemake builds the DAG (``snakemake -n``).
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Callable, Mapping

from omegaconf import DictConfig

from wsss.config import CONF_DIR, compose, stage_fingerprint
from wsss.errors import WsssError

GLOBAL_KEY = "overrides"


def known_stages() -> list[str]:
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml") if p.stem != "common")


def check_snakemake_config(config: Mapping) -> None:
    """Reject unknown Snakemake config keys (typos) with a one-line message."""
    allowed = set(known_stages()) | {GLOBAL_KEY}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise WsssError(f"snakemake --config: unknown key(s) {', '.join(unknown)}; use '{GLOBAL_KEY}' or a stage name "
                        f"({', '.join(known_stages())})")


def _split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return shlex.split(str(value))


def config_overrides(stage: str, wildcards: Mapping[str, str], config: Mapping) -> list[str]:
    """The Hydra overrides that decide a job's config: dataset/supervision from the wildcards, then the
    user's global and per-stage overrides (later ones win). Folder paths are left out: they follow from
    the wildcards."""
    overrides = []
    if "dataset" in wildcards:
        overrides.append(f"dataset={wildcards['dataset']}")
    if "supervision" in wildcards:
        overrides.append(f"supervision={wildcards['supervision']}")
    return overrides + _split(config.get(GLOBAL_KEY)) + _split(config.get(stage))


def stage_overrides(stage: str, wildcards: Mapping[str, str], dirs: Mapping[str, str], output_dir: str,
                    config: Mapping) -> list[str]:
    """All overrides of one job's command: :func:`config_overrides` plus the upstream folders and ``out_dir``."""
    paths = [f"{key}={value}" for key, value in dirs.items()] + [f"out_dir={output_dir}"]
    base = config_overrides(stage, wildcards, config)
    n_wildcards = sum(1 for key in ("dataset", "supervision") if key in wildcards)
    return base[:n_wildcards] + paths + base[n_wildcards:]


def _exit_on_config_error(error: WsssError) -> SystemExit:
    """Config errors met while Snakemake plans end it with their one-line message.

    Snakemake wraps exceptions raised in input and params functions into a multi-line
    ``InputFunctionException``; ``SystemExit`` is not an ``Exception`` and passes through it, so the user
    sees one line and exit 1.
    """
    return SystemExit(f"error: {error}")


@functools.lru_cache(maxsize=None)
def planned_config(stage: str, overrides: tuple[str, ...]) -> DictConfig:
    """The composed config of a job while Snakemake plans (cached; read it, do not modify it)."""
    try:
        return compose(stage, overrides)
    except WsssError as error:
        raise _exit_on_config_error(error) from None


@functools.lru_cache(maxsize=None)
def planned_fingerprint(stage: str, overrides: tuple[str, ...]) -> str:
    """A job's fingerprint (:func:`wsss.config.stage_fingerprint`) of its cached :func:`planned_config`."""
    return stage_fingerprint(stage, overrides, planned_config(stage, overrides))


class StageCall:
    """``params`` functions for one rule: ``hydra`` (the shell arguments) and ``fingerprint``.

    ``dirs`` maps a stage config key to the name of the rule input that holds it,
    e.g. ``StageCall("make_cam", config, classifier_dir="classifier")``.
    """

    def __init__(self, stage: str, config: Mapping, **dirs: str) -> None:
        self.stage = stage
        self.config = config
        self.dirs = dirs

    def overrides(self, wildcards, input, output) -> list[str]:
        dirs = {key: str(getattr(input, name)) for key, name in self.dirs.items()}
        return stage_overrides(self.stage, dict(wildcards.items()), dirs, str(output[0]), self.config)

    @property
    def hydra(self) -> Callable:
        return lambda wildcards, input, output: shlex.join(self.overrides(wildcards, input, output))

    @property
    def fingerprint(self) -> Callable:
        # A function of the wildcards only: Snakemake leaves params derived from input/output out of its
        # params rerun trigger.
        return lambda wildcards: planned_fingerprint(self.stage, tuple(config_overrides(self.stage, dict(wildcards.items()), self.config)))


@functools.lru_cache(maxsize=None)
def _check_root(name: str, overrides: tuple[str, ...]) -> None:
    from wsss.data import resolve_root

    try:
        dataset = compose("check_dataset", overrides).dataset
    except WsssError as error:
        if "missing value for 'dataset.root'" in str(error):
            raise SystemExit(f"error: dataset '{name}' has no root: set dataset.root, e.g. --config "
                             f'overrides="dataset.root=/path/to/VOC2012", or in conf/dataset/{name}.yaml') from None
        raise _exit_on_config_error(error) from None
    if not resolve_root(dataset.root).is_dir():
        raise SystemExit(f"error: dataset.root={dataset.root}: dataset root not found (dataset '{dataset.name}'; "
                         f'set it with --config overrides="dataset.root=...")')


class DatasetInputs:
    """Rule input function for a dataset: the generated ``data/minivoc`` folder for ``minivoc``; for an
    external dataset nothing (its files are not tracked), but its configured root must exist: a root left
    unset or not found ends Snakemake while it plans, before any job, with a one-line message."""

    def __init__(self, config: Mapping) -> None:
        self.config = config

    def __call__(self, wildcards) -> list[str]:
        if wildcards.dataset == "minivoc":
            return ["data/minivoc"]
        _check_root(wildcards.dataset,
                    tuple(config_overrides("check_dataset", {"dataset": wildcards.dataset}, self.config)))
        return []


#: for Snakefiles without overrides (tests); the main Snakefile makes its own from its ``config``
dataset_inputs = DatasetInputs({})


def kernel_sources() -> list[str]:
    root = Path(__file__).resolve().parent.parent
    return sorted(str(p.relative_to(root)) for p in (root / "kernels" / "csrc").glob("*") if p.suffix in {".cpp", ".cu", ".h", ".cuh"})
