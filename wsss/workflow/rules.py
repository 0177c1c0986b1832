"""One description per stage rule; the Snakefile turns each into a rule (``rules/*.smk``).

A :class:`StageRule` names the stage (= its rule, ``stages/<name>.py``, ``conf/<name>.yaml``), its output
folder and its inputs by the config key each fills; everything else of the rule follows from that:

* ``log`` / ``benchmark``: ``logs/<scope>/<name>.log`` / ``.benchmark.tsv``;
* ``threads``: every core unless ``cores=False`` (one), passed as ``num_threads={threads}``;
* the shell line ``python -m stages.<name> <overrides> num_threads=<threads> > <log> 2>&1`` (``torchrun`` for
  ``launcher=True`` when ``WSSS_TRAIN_GPUS`` > 1), written once in the Snakefile;
* ``params.hydra``: the overrides: dataset / supervision / seed rule / recipe choices from the wildcards
  (:meth:`wsss.workflow.plan.Plan.base_overrides`), the input and output folders, then the user's;
* ``params.fingerprint``: the hash of exactly that config and of the stage's code (a function of the
  wildcards alone, so Snakemake's params trigger sees it);
* ``per_image`` stages under ``--config shards=N`` (N > 1): two rules instead of one, ``<rule>_shard`` (the
  stage on block ``{shard}`` of the split, ``shard.index={shard} shard.count=N``, into
  ``<results>/.shards/<output>/{shard}``, a temporary folder) and ``<rule>``, ``stages.gather_shards`` of those
  N folders into the stage's folder (:mod:`wsss.shards`). Downstream rules see the same folder either way.

Paths here are relative to the results folder (``paths.results``), except ``data`` (the dataset input).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

from wsss.workflow.plan import Plan, planned_fingerprint

#: an input: a path pattern (``{dataset}/cam``) or a function ``(plan, wildcards) -> path | None``
#: (a ``needs`` function may also return a list of paths)
InputSource = Union[str, Callable[[Plan, Mapping[str, str]], Union[str, None, list]]]
KERNELS_STAMP = "kernels/_build/built.txt"


@dataclass
class StageRule:
    """A stage's rule. ``inputs``: config key -> :data:`InputSource` (passed as ``key=<folder>``; a function
    returning None means the job does not need it); ``needs``: inputs that are not passed (folders the job
    reads through another key, or waits for); the compiled kernels' stamp is an input exactly when the stage's
    code imports a ``kernels`` module (:attr:`needs_kernels`, from its import closure: never a flag to forget,
    as it once was for ``train_affinity``, which then ran before ``build_kernels`` under ``--cores 1``); ``paths``: config
    keys set to folders that are not inputs; ``settings``: ``(plan, wildcards) -> overrides`` the DAG adds;
    ``work``: the stage keeps resumable checkpoints in ``work_dir`` (undeclared, ``<results>/.work/<output>``);
    ``gpu``: it takes one ``gpu`` resource; ``launcher``: it may run under torchrun; ``rule``: the rule's name
    when it is not the stage's (a second rule of the same stage, e.g. ``make_cam_msa``: MSA's CAMs)."""

    name: str
    output: str
    scope: str
    inputs: Mapping[str, InputSource] = field(default_factory=dict)
    needs: Mapping[str, InputSource] = field(default_factory=dict)
    #: files outside the results the job reads (e.g. the gallery's page assets)
    files: Sequence[str] = ()
    paths: Mapping[str, InputSource] = field(default_factory=dict)
    settings: Callable[[Plan, Mapping[str, str]], list] | None = None
    cores: bool = True
    work: bool = False
    gpu: bool = False
    launcher: bool = False
    #: ``results`` (the output is relative to ``paths.results``) or ``data`` (to ``paths.data``)
    under: str = "results"
    #: keyword arguments of Snakemake's ``report()`` for the output folder (its files then show in --report)
    in_report: Mapping | None = None
    rule: str = ""
    #: one output file per image of the split, nothing learnt across images: may run as shards + a gather
    per_image: bool = False
    _overrides: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def rule_name(self) -> str:
        """The Snakemake rule's name (its log's too): ``rule``, else the stage's."""
        return self.rule or self.name

    # ------------------------------------------------------------------ shards
    def sharded(self, plan: Plan) -> bool:
        """Whether the stage runs as ``plan.shards`` shard jobs plus a gather."""
        return self.per_image and plan.shards > 1

    @property
    def shard_rule_name(self) -> str:
        return f"{self.rule_name}_shard"

    def shard_output_path(self, plan: Plan) -> str:
        """The shard job's folder pattern, ``<results>/.shards/<output>/{shard}``."""
        return f"{plan.results}/.shards/{self.output}/{{shard}}"

    @property
    def shard_log(self) -> str:
        return f"logs/{self.scope}/{self.rule_name}.shard{{shard}}.log"

    @property
    def shard_benchmark(self) -> str:
        return f"logs/{self.scope}/{self.rule_name}.shard{{shard}}.benchmark.tsv"

    def shard_folders(self, plan: Plan) -> Callable:
        """The gather's input: the folders of shards 0..N-1 of the job's wildcards."""
        def folders(wildcards) -> list[str]:
            pattern = self.shard_output_path(plan)
            return [pattern.format(**dict(wildcards.items()), shard=k) for k in range(plan.shards)]
        return folders

    def gather_overrides(self, plan: Plan, wildcards) -> list[str]:
        """``stages.gather_shards``'s overrides: the shards' parent folder, their count, the stage's folder."""
        values = dict(wildcards.items())
        root = self.shard_output_path(plan).format(**values, shard="").rstrip("/")
        return [f"shard_root={root}", f"count={plan.shards}", f"out_dir={self.output_path(plan).format(**values)}"]

    def gather_hydra(self, plan: Plan) -> Callable:
        return lambda wildcards: shlex.join(self.gather_overrides(plan, wildcards))

    def gather_fingerprint(self, plan: Plan) -> Callable:
        """The gather's fingerprint: its three overrides are its whole config (``conf/gather_shards.yaml`` sets
        nothing else), so they are hashed as they are, without a Hydra composition per gather while planning."""
        from wsss.config import source_hash

        def of(wildcards) -> str:
            overrides = " ".join(self.gather_overrides(plan, wildcards))
            return f"{hashlib.sha256(overrides.encode()).hexdigest()[:16]}-{source_hash('stages.gather_shards')}"
        return of

    # ------------------------------------------------------------------ rule directives
    @property
    def needs_kernels(self) -> bool:
        """Whether ``stages.<name>`` imports (transitively, statically) a module of ``kernels``."""
        from wsss.config import imports_kernels

        return imports_kernels(f"stages.{self.name}")

    @property
    def log(self) -> str:
        return f"logs/{self.scope}/{self.rule_name}.log"

    @property
    def benchmark(self) -> str:
        return f"logs/{self.scope}/{self.rule_name}.benchmark.tsv"

    def output_path(self, plan: Plan) -> str:
        return f"{plan.data if self.under == 'data' else plan.results}/{self.output}"

    def declared_output(self, plan: Plan):
        """The rule's ``output:``: the folder as ``directory()``, wrapped in ``report()`` when asked."""
        from snakemake.io import directory, report

        folder = directory(self.output_path(plan))
        return report(folder, **self.in_report) if self.in_report else folder

    def input_functions(self, plan: Plan) -> dict:
        """Snakemake ``input:``: one function per input and need, ``data`` (the dataset), the kernels' stamp."""
        functions: dict = {"data": plan.data_inputs}
        for key, source in {**self.inputs, **self.needs}.items():
            functions[key] = self._input_function(plan, source)
        if self.needs_kernels:
            functions["kernels"] = KERNELS_STAMP
        if self.files:
            functions["files"] = list(self.files)
        return functions

    def _input_function(self, plan: Plan, source: InputSource) -> Callable:
        def inputs(wildcards) -> list[str]:
            path = self._resolve(plan, source, wildcards)
            return [] if path is None else path if isinstance(path, list) else [path]
        return inputs

    @staticmethod
    def _resolve(plan: Plan, source: InputSource, wildcards) -> str | list[str] | None:
        values = dict(wildcards.items())
        relative = source(plan, values) if callable(source) else source.format(**values)
        if isinstance(relative, list):
            return [f"{plan.results}/{path}" for path in relative]
        return None if relative is None else f"{plan.results}/{relative}"

    # ------------------------------------------------------------------ overrides and fingerprint
    def folders(self, plan: Plan, wildcards, shard: bool = False) -> list[str]:
        """``key=<folder>`` of the job's inputs, extra paths, ``out_dir`` (and ``work_dir``); ``shard``: the shard
        job's, ``out_dir`` its shard folder and ``shard.index`` / ``shard.count`` set."""
        values = dict(wildcards.items())
        folders = []
        for key, source in {**self.inputs, **self.paths}.items():
            path = self._resolve(plan, source, wildcards)
            if path is not None:
                folders.append(f"{key}={path}")
        output = self.output.format(**values)
        if shard:
            folders += [f"out_dir={self.shard_output_path(plan).format(**values)}", f"shard.index={values['shard']}",
                        f"shard.count={plan.shards}"]
        else:
            folders.append(f"out_dir={self.output_path(plan).format(**values)}")
        if self.work:
            folders.append(f"work_dir={plan.results}/.work/{output}")
        return folders

    def overrides(self, plan: Plan, wildcards, shard: bool = False) -> list[str]:
        """Every override of the job's command (see the module docstring), in order. Kept per job: Snakemake asks
        for them twice (``params.hydra``, ``params.fingerprint``), for each of hundreds of shard jobs."""
        key = (id(plan), tuple(sorted(wildcards.items())), shard)
        if key not in self._overrides:
            values = {k: v for k, v in wildcards.items() if k != "shard"}
            settings = list(self.settings(plan, values)) if self.settings else []
            self._overrides[key] = (plan.base_overrides(self.name, values) + settings
                                    + self.folders(plan, wildcards, shard) + plan.user_overrides(self.name, values))
        return list(self._overrides[key])

    def hydra(self, plan: Plan, shard: bool = False) -> Callable:
        return lambda wildcards: shlex.join(self.overrides(plan, wildcards, shard))

    def fingerprint(self, plan: Plan, shard: bool = False) -> Callable:
        """The job's fingerprint; a shard job's is shard 0's (composed once per stage job, so planning many shards
        stays fast) hashed with its index: the shards' configs differ only in the index and the folder it names."""
        def of(wildcards) -> str:
            if not shard:
                return planned_fingerprint(self.name, tuple(self.overrides(plan, wildcards)))
            first = {**dict(wildcards.items()), "shard": "0"}
            base = planned_fingerprint(self.name, tuple(self.overrides(plan, first, shard=True)))
            config, source = base.split("-", 1)  # <config hash>-<source hash> (wsss.config.stage_fingerprint)
            shard_config = hashlib.sha256(f"{config} shard {wildcards['shard']}".encode()).hexdigest()[:len(config)]
            return f"{shard_config}-{source}"
        return of

    def launch(self) -> str:
        """``python``, or for a launcher stage ``torchrun`` with one process per GPU when it has more than one:
        inside a SLURM job that was given GPUs (``SLURM_JOB_ID`` and ``SLURM_GPUS_ON_NODE`` set: the job
        re-reads the Snakefile, so this is evaluated there) the GPUs SLURM gave it, else ``WSSS_TRAIN_GPUS``
        (default 1). SLURM's count wins: an exported ``WSSS_TRAIN_GPUS`` cannot ask for GPUs the job lacks."""
        gpus = 1
        if self.launcher:
            slurm_gpus = os.environ.get("SLURM_GPUS_ON_NODE", "").strip()
            if os.environ.get("SLURM_JOB_ID") and slurm_gpus.isdigit() and int(slurm_gpus) > 0:
                gpus = int(slurm_gpus)
            else:
                gpus = int(os.environ.get("WSSS_TRAIN_GPUS", "1") or 1)
        if gpus > 1:
            return f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node={gpus}"
        return sys.executable

    def resources(self) -> dict[str, int]:
        return {"gpu": 1} if self.gpu else {}
