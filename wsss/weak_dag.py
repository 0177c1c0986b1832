"""DAG helpers of the point / scribble / box pipelines (``rules/weak.smk``).

The propagator is chosen like any stage setting, in the ``propagate`` stage's config: its group
``propagation`` (``random_walk`` | ``a2gnn`` | ``apro``) and its ``cam`` key (``classifier`` | ``none``),
set with ``--config propagate="propagation=apro cam=none"`` (or by editing ``conf/propagate.yaml``).
:func:`propagation_choice` composes that config at DAG-build time, so:

* ``refine_crf`` of a weak supervision reads ``results/<dataset>/<supervision>/<chosen propagator>``;
* ``make_seeds`` of a weak supervision gets the same ``cam`` mode, and needs the CAMs only when
  its seed rule uses them in that mode (:attr:`wsss.seeds.weak.WeakSeedBuilder.uses_cam`);
* ``propagate`` needs the CAMs only in ``cam=classifier`` mode and the AffinityNet only for
  ``random_walk`` and ``a2gnn``.

:class:`WeakStageCall` is :class:`wsss.dag.StageCall` plus overrides the DAG adds per job
(``before`` the user's, which may replace them, or ``after``, which win): its fingerprint hashes
exactly the config the job runs with, so switching the propagator or the CAM mode reruns the
jobs it changes and nothing else; the image pipeline's jobs are untouched.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from wsss.dag import GLOBAL_KEY, StageCall, config_overrides, planned_config, planned_fingerprint

WEAK_SUPERVISIONS = ("point", "scribble", "box")
PROPAGATORS = ("random_walk", "a2gnn", "apro")
#: ``refine_crf`` settings of the weak pipelines: A2GNN's final CRF (``crf_inference_inf``: Gaussian 2/3,
#: bilateral 50/5/10, SEEDS_ANATOMY §1.3), placed before the user's overrides (which may replace them);
#: PSA's wider kernels (the image pipeline's) erase thin objects that propagated seeds recover
WEAK_CRF = ("crf.gaussian_sxy=2", "crf.bilateral_sxy=50", "crf.bilateral_srgb=5")

Extra = Callable[[Mapping[str, str]], Sequence[str]]


def propagation_choice(config: Mapping, dataset: str, supervision: str) -> tuple[str, str]:
    """``(propagator, cam mode)`` of the ``propagate`` config for this dataset and supervision."""
    overrides = config_overrides("propagate", {"dataset": dataset, "supervision": supervision}, config)
    cfg = planned_config("propagate", tuple(overrides))
    return str(cfg.propagation.name), str(cfg.cam)


class WeakStageCall(StageCall):
    """A :class:`StageCall` with per-job overrides: ``before(wildcards)`` go right after the dataset and
    supervision (the user's overrides may replace them), ``after(wildcards)`` go last (they win).
    ``identity(wildcards)``: extra overrides hashed into the fingerprint only (e.g. an input folder that
    is not implied by the wildcards)."""

    def __init__(self, stage: str, config: Mapping, before: Extra | None = None, after: Extra | None = None,
                 identity: Extra | None = None, **dirs: str) -> None:
        super().__init__(stage, config, **dirs)
        self.before, self.after, self.identity = before, after, identity

    def _count(self, wildcards: Mapping[str, str]) -> int:
        return sum(1 for key in ("dataset", "supervision") if key in wildcards)

    def decided(self, wildcards) -> list[str]:
        """The overrides that decide the job's config (no folder paths)."""
        wildcards = dict(wildcards.items())
        base = config_overrides(self.stage, wildcards, self.config)
        count = self._count(wildcards)
        before = list(self.before(wildcards)) if self.before else []
        after = list(self.after(wildcards)) if self.after else []
        return base[:count] + before + base[count:] + after

    def overrides(self, wildcards, input, output) -> list[str]:
        decided = self.decided(wildcards)
        count = self._count(dict(wildcards.items()))
        paths = []
        for key, name in self.dirs.items():  # an input the job does not need (empty list) passes nothing
            value = getattr(input, name, None)
            if value is not None and not isinstance(value, str):
                value = next(iter(value), None)
            if value:
                paths.append(f"{key}={value}")
        paths.append(f"out_dir={output[0]}")
        return decided[:count] + paths + decided[count:]

    @property
    def fingerprint(self) -> Callable:
        def fingerprint(wildcards) -> str:
            extra = list(self.identity(dict(wildcards.items()))) if self.identity else []
            return planned_fingerprint(self.stage, tuple(self.decided(wildcards) + extra))
        return fingerprint


# ------------------------------------------------------------- per-rule pieces
def chosen_propagator_dir(config: Mapping) -> Callable:
    """Input function: ``results/<dataset>/<supervision>/<chosen propagator>``."""
    def folder(wildcards) -> str:
        values = dict(wildcards.items())
        name, _ = propagation_choice(config, values["dataset"], values["supervision"])
        return f"results/{values['dataset']}/{values['supervision']}/{name}"
    return folder


def seeds_cam_mode(config: Mapping) -> Extra:
    """``make_seeds`` overrides: the ``cam`` mode of the chosen propagation."""
    def before(wildcards) -> list[str]:
        _, cam = propagation_choice(config, wildcards["dataset"], wildcards["supervision"])
        return [f"cam={cam}"]
    return before


def seeds_cam_input(config: Mapping, call: WeakStageCall) -> Callable:
    """Input function of ``make_seeds``: the CAM folder when the seed rule uses it in this mode."""
    def inputs(wildcards) -> list[str]:
        from wsss.seeds.weak import WeakSeedBuilder  # imports torch: only when a weak seed job is planned

        cfg = planned_config("make_seeds", tuple(call.decided(wildcards)))
        return [f"results/{cfg.dataset.name}/cam"] if WeakSeedBuilder.from_config(cfg).uses_cam else []
    return inputs


def propagate_inputs(call: WeakStageCall, what: str) -> Callable:
    """Input function of ``propagate``: ``cam`` (CAM folder) or ``affinity`` (AffinityNet folder) when needed."""
    def inputs(wildcards) -> list[str]:
        cfg = planned_config("propagate", tuple(call.decided(wildcards)))
        use_cam = str(cfg.cam) == "classifier"
        if what == "cam":
            return [f"results/{wildcards.dataset}/cam"] if use_cam else []
        needs = use_cam and str(cfg.propagation.name) in ("random_walk", "a2gnn")
        return [f"results/{wildcards.dataset}/{wildcards.supervision}/affinity"] if needs else []
    return inputs


__all__ = ["WEAK_SUPERVISIONS", "PROPAGATORS", "WEAK_CRF", "GLOBAL_KEY", "WeakStageCall", "propagation_choice",
           "chosen_propagator_dir", "seeds_cam_mode", "seeds_cam_input", "propagate_inputs"]
