"""What Snakemake needs while it plans: the run's folders, the datasets, per-job overrides and fingerprints.

Snakemake config keys (``--config KEY="..."``):

* ``overrides``: Hydra overrides for every stage, e.g. ``"dataset.root=/data/VOC2012 seed=1"``
  (``paths.results`` / ``paths.data`` move the run's folders: the rules follow them);
* ``<stage>`` (e.g. ``refine_crf``): overrides for that stage only, e.g. ``"crf.iterations=5"``;
* ``datasets``: named dataset folders, ``{name: root}`` (VOC layout, or COCO layout when the root holds
  ``annotations/``), each then a target like ``minivoc``: ``--config 'datasets={mine: /data/mine}'``;
* ``shards``: shard jobs of every per-image stage (default 1: one job each, no shards), e.g.
  ``--config shards=16``: stage ``refine_crf`` then runs as rules ``refine_crf_shard`` (``{shard}`` = 0..15,
  into ``<results>/.shards/<folder>/<k>``, deleted once gathered) and ``refine_crf``, the gather
  (:mod:`wsss.shards`), which writes the folder an unsharded run writes.

Every dataset of ``conf/dataset/`` (but the ``folder`` template) and every named folder is a target
dataset. A job's ``params.fingerprint`` is :func:`wsss.config.stage_fingerprint` of exactly the overrides
its command passes (folders included: they follow from the wildcards), so a YAML edit, an override or a
change of the stage's code reruns that job and everything downstream, nothing upstream. A bad override, an
unknown recipe or a missing dataset root fails while Snakemake plans (``snakemake -n``), in one line.
"""

from __future__ import annotations

import functools
import re
import shlex
import sys
from pathlib import Path
from typing import Mapping, Sequence

from omegaconf import DictConfig

from wsss.config import CONF_DIR, REPO_ROOT, compose, stage_fingerprint
from wsss.errors import WsssError
from wsss.workflow.recipes import RECIPE_STAGES, Recipe, recipe_names, resolve_recipe

GLOBAL_KEY = "overrides"
DATASETS_KEY = "datasets"
SHARDS_KEY = "shards"
#: target products of a recipe, in pipeline order
PRODUCTS = ("pseudolabels", "gallery", "deeplab", "maskrcnn")
_NAME = re.compile(r"^[A-Za-z0-9]+$")
#: the datasets the DAG generates (rule ``make_<name>``, ``stages.make_minivoc dataset=<name>``) into ``<data>/<name>``
GENERATED_DATASETS = ("minivoc", "minicoco")


@functools.lru_cache(maxsize=None)
def stage_has_supervision(stage: str) -> bool:
    """Whether ``conf/<stage>.yaml`` composes a ``supervision`` group (its defaults list names one)."""
    from omegaconf import OmegaConf

    path = CONF_DIR / f"{stage}.yaml"
    if not path.is_file():
        return False
    defaults = OmegaConf.load(path).get("defaults") or []
    return any(isinstance(entry, Mapping) and "supervision" in entry or entry == "supervision" for entry in defaults)


def known_stages() -> list[str]:
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml") if p.stem != "common")


def split_overrides(value) -> list[str]:
    """A Snakemake config value as a list of Hydra overrides (a string is split like a shell line)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return shlex.split(str(value))


def exit_on_config_error(error: WsssError) -> SystemExit:
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
        raise exit_on_config_error(error) from None


@functools.lru_cache(maxsize=None)
def planned_fingerprint(stage: str, overrides: tuple[str, ...]) -> str:
    """A job's fingerprint (:func:`wsss.config.stage_fingerprint`) of its cached :func:`planned_config`."""
    return stage_fingerprint(stage, overrides, planned_config(stage, overrides))


@functools.lru_cache(maxsize=None)
def planned_recipe(supervision: str, name: str | None = None) -> Recipe:
    """:func:`wsss.workflow.recipes.resolve_recipe`, ending the plan in one line on an error."""
    try:
        return resolve_recipe(supervision, name)
    except WsssError as error:
        raise exit_on_config_error(error) from None


class Plan:
    """The run Snakemake is planning: its config, folders and datasets.

    ``results`` / ``data``: the composed ``paths.results`` / ``paths.data`` (with the global overrides);
    ``datasets``: target dataset name -> the Hydra overrides that select it.
    """

    def __init__(self, config: Mapping) -> None:
        self.config = dict(config)
        allowed = set(known_stages()) | {GLOBAL_KEY, DATASETS_KEY, SHARDS_KEY}
        unknown = sorted(set(self.config) - allowed)
        if unknown:
            raise SystemExit(f"error: snakemake --config: unknown key(s) {', '.join(unknown)}; use '{GLOBAL_KEY}', "
                             f"'{DATASETS_KEY}', '{SHARDS_KEY}' or a stage name ({', '.join(known_stages())})")
        self.shards = self._shards(self.config.get(SHARDS_KEY, 1))
        paths = planned_config("check_dataset", tuple(self.user_overrides("check_dataset"))).paths
        self.results = str(paths.results).rstrip("/")
        self.data = str(paths.data).rstrip("/")
        self.datasets = self._datasets(self.config.get(DATASETS_KEY) or {})

    # ------------------------------------------------------------------ datasets
    @staticmethod
    def _shards(value) -> int:
        try:
            count = int(str(value))
        except ValueError:
            count = 0
        if count < 1:
            raise SystemExit(f"error: snakemake --config {SHARDS_KEY}={value}: expected a whole number of at least 1")
        return count

    @staticmethod
    def _datasets(named: Mapping) -> dict[str, list[str]]:
        datasets = {p.stem: [f"dataset={p.stem}"] for p in sorted((CONF_DIR / "dataset").glob("*.yaml"))
                    if p.stem != "folder"}
        if not isinstance(named, Mapping):
            raise SystemExit(f"error: snakemake --config {DATASETS_KEY}: expected a mapping name: root, "
                             f"e.g. '{DATASETS_KEY}={{mine: /data/mine}}'")
        for name, root in named.items():
            name = str(name)
            if not _NAME.match(name) or name in datasets:
                raise SystemExit(f"error: snakemake --config {DATASETS_KEY}: '{name}' cannot name a dataset "
                                 f"(letters and digits, not one of {', '.join(datasets)})")
            folder = Path(str(root)).expanduser()
            kind = "coco" if (folder / "annotations").is_dir() else "folder"
            datasets[name] = [f"dataset={kind}", f"dataset.name={name}", f"dataset.root={folder}"]
        return datasets

    def dataset_overrides(self, dataset: str) -> list[str]:
        try:
            return list(self.datasets[dataset])
        except KeyError:
            raise SystemExit(f"error: unknown dataset '{dataset}' (known: {', '.join(self.datasets)}; name a folder "
                             f"with --config '{DATASETS_KEY}={{{dataset}: /path/to/root}}')") from None

    def data_inputs(self, wildcards) -> list[str]:
        """Rule input of every stage: the generated ``<data>/<name>`` for ``minivoc`` and ``minicoco``
        (:data:`GENERATED_DATASETS`); nothing for an external dataset (its files are not tracked), whose configured
        root must exist: a root left unset or not found ends Snakemake while it plans, before any job, with one
        line."""
        if "dataset" not in wildcards.keys():
            return []
        if wildcards.dataset in GENERATED_DATASETS:
            return [f"{self.data}/{wildcards.dataset}"]
        self._check_root(wildcards.dataset)
        return []

    @functools.lru_cache(maxsize=None)
    def _check_root(self, name: str) -> None:
        from wsss.data import resolve_root

        overrides = self.dataset_overrides(name) + self.user_overrides("check_dataset")
        try:
            dataset = compose("check_dataset", overrides).dataset
        except WsssError as error:
            if "missing value for 'dataset.root'" in str(error):
                raise SystemExit(f"error: dataset '{name}' has no root: set dataset.root, e.g. --config "
                                 f'overrides="dataset.root=/path/to/VOC2012", or in conf/dataset/{name}.yaml') from None
            raise exit_on_config_error(error) from None
        root = resolve_root(dataset.root)
        if not root.is_dir():
            raise SystemExit(f"error: dataset.root={dataset.root}: dataset root not found (dataset '{dataset.name}'; "
                             f'set it with --config overrides="dataset.root=...")')
        if str(dataset.kind) == "coco":
            # the train split's json: every target reads it (a stage opening another split checks that one);
            # the images it lists are checked by the first stage that opens it (reading the json here would
            # cost every plan of a full COCO many seconds)
            split = str(dataset.train_split)
            annotation_file = root / str(dataset.annotation_file).format(split=split)
            if not annotation_file.is_file():
                raise SystemExit(f"error: {annotation_file}: annotation file for split '{split}' not found (dataset "
                                 f"'{dataset.name}'; dataset.train_split / dataset.annotation_file name it)")

    # ------------------------------------------------------------------ overrides
    def user_overrides(self, stage: str, wildcards: Mapping[str, str] | None = None) -> list[str]:
        """The user's global then per-stage overrides (later ones win). A global override of the supervision
        (``supervision.fold=2``) goes to the stages that have one only: the classifier and its CAMs, shared by
        every supervision, neither take nor depend on it."""
        common = split_overrides(self.config.get(GLOBAL_KEY))
        if not stage_has_supervision(stage):
            common = [o for o in common if not o.lstrip("+~").startswith(("supervision.", "supervision="))]
        elif wildcards is not None and wildcards.get("supervision", "weakshot") != "weakshot":
            # the fold is weak-shot's alone: another supervision's job keeps its command line (and so its params)
            common = [o for o in common if not o.lstrip("+~").startswith("supervision.fold=")]
        return common + split_overrides(self.config.get(stage))

    def recipe(self, wildcards) -> Recipe:
        """The job's recipe (``{recipe}`` wildcard), checked to apply to its supervision."""
        return planned_recipe(wildcards["supervision"], wildcards["recipe"])

    def base_overrides(self, stage: str, wildcards: Mapping[str, str]) -> list[str]:
        """What the wildcards decide: the dataset, the supervision, the seed rule (``{seeds}``) and the
        recipe's choices for its own stages (``{recipe}``)."""
        overrides = []
        if "dataset" in wildcards:
            overrides += self.dataset_overrides(wildcards["dataset"])
        if "supervision" in wildcards:
            overrides.append(f"supervision={wildcards['supervision']}")
        if "seeds" in wildcards and stage == "make_seeds":
            overrides.append(f"seeds={wildcards['seeds']}")
        if "recipe" in wildcards and stage in RECIPE_STAGES:
            overrides += self.recipe(wildcards).stage_overrides(stage)
        return overrides

    def check_targets(self, targets: Sequence[str], rule_names: set[str]) -> None:
        """A requested ``{dataset}_{supervision}_{recipe}_{product}`` target with no rule: one line naming
        the recipes that apply (instead of Snakemake's "no rule" block)."""
        for target in targets:
            parts = str(target).split("_")
            if str(target) in rule_names or len(parts) < 4 or parts[-1] not in PRODUCTS:
                continue
            dataset, supervision, recipe = parts[0], parts[1], "_".join(parts[2:-1])
            if dataset in self.datasets and (CONF_DIR / "supervision" / f"{supervision}.yaml").is_file():
                found = planned_recipe(supervision, recipe)  # raises the one-line error
                if parts[-1] not in found.products:
                    raise SystemExit(f"error: no target '{target}': recipe '{found.name}' reads the pseudo-labels of "
                                     f"'{found.labels_from}' and makes only {', '.join(found.products)}")
                raise SystemExit(f"error: no target '{target}'")  # pragma: no cover - applicable recipes have rules


def requested_targets(workflow) -> list[str]:
    """The targets Snakemake was asked for, while the Snakefile is parsed.

    Snakemake hands its DAG settings to the workflow only after parsing, so the command line is read:
    every argument that is not an option (a value after ``--config`` never has the shape of a target).
    """
    settings = getattr(workflow, "dag_settings", None)
    if settings is not None and settings.targets:
        return [str(t) for t in settings.targets]
    return [arg for arg in sys.argv[1:] if not arg.startswith("-") and "=" not in arg]


def recipe_choices() -> str:
    return "|".join(recipe_names())


def kernel_sources() -> list[str]:
    return sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "kernels" / "csrc").glob("*")
                  if p.suffix in {".cpp", ".cu", ".h", ".cuh"})
