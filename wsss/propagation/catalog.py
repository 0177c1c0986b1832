"""The propagators of the ``propagate`` stage and what each needs from the stages before it.

Read while Snakemake plans (which inputs a ``propagate`` job has) and by :class:`wsss.propagation.run.Propagator`
(which refuses a CAM-free run of a propagator that needs the classifier): one table, no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PropagatorNeeds:
    """``classifier``: needs the CAMs and the classifier-initialised AffinityNet (no CAM-free run);
    ``affinity``: reads the AffinityNet trained on the seeds (``train_affinity``); ``boundary``: reads the boundary
    maps of ``train_boundary`` (weak-shot supervision only)."""

    classifier: bool
    affinity: bool
    boundary: bool = False


#: name (= ``conf/propagation/<name>.yaml``) -> needs
PROPAGATORS: dict[str, PropagatorNeeds] = {
    "cam_walk": PropagatorNeeds(classifier=True, affinity=True),  # PSA/IRN: the CAMs walked on AffinityNet affinities
    "random_walk": PropagatorNeeds(classifier=True, affinity=True),  # the seeds (+ CAMs) walked, seeds clamped
    "a2gnn": PropagatorNeeds(classifier=True, affinity=True),  # per-image graph attention network
    "apro": PropagatorNeeds(classifier=False, affinity=False),  # tree + local propagation on the image alone
    # RETAB: the CAM walk in two stages gated by the boundary network's boundaries
    "boundary_walk": PropagatorNeeds(classifier=True, affinity=True, boundary=True),
}
#: propagators that run without the classifier (``cam=none``)
CAM_FREE: tuple[str, ...] = tuple(name for name, needs in PROPAGATORS.items() if not needs.classifier)


def needs_of(name: str) -> PropagatorNeeds:
    """The :class:`PropagatorNeeds` of propagator ``name``; ``KeyError`` names the known ones."""
    try:
        return PROPAGATORS[name]
    except KeyError:
        raise KeyError(f"unknown propagator '{name}' (expected {', '.join(PROPAGATORS)})") from None
