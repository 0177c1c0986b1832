"""Running a configured seed propagator on one image (the ``propagate`` stage's per-image work).

:class:`Propagator` is built once from the ``propagation`` config node (and, for ``random_walk``
and ``a2gnn``, the AffinityNet of ``train_affinity``), then called per image with a
:class:`~wsss.propagation.inputs.PropagationInput`; it returns ``(K+1,H,W)`` float32 scores.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from wsss.affinity.inference import load_affinity_net
from wsss.data.transforms import normalize
from wsss.errors import WsssError
from wsss.propagation.a2gnn import A2GNNParams, a2gnn_propagate
from wsss.propagation.apro import AProParams, apro_propagate
from wsss.propagation.inputs import PropagationInput
from wsss.propagation.seeded_walk import SeededWalkParams, seeded_walk

PROPAGATORS = ("random_walk", "a2gnn", "apro")
#: propagators that run without the classifier (image-only affinities)
CAM_FREE = ("apro",)


@torch.no_grad()
def affinity_features(model, image: np.ndarray, device: torch.device | str = "cpu", flip: bool = True) -> torch.Tensor:
    """AffinityNet features ``(1, F, ceil(H/s), ceil(W/s))`` of ``image (H,W,3)`` uint8 (averaged with the h-flip)."""
    tensor = torch.from_numpy(normalize(image))[None].to(device)
    stride = model.stride
    pad_h, pad_w = (-tensor.shape[-2]) % stride, (-tensor.shape[-1]) % stride
    if pad_h or pad_w:  # the flipped grid of cells must line up with the original one
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate")
    features = model(tensor)
    if flip:
        features = 0.5 * (features + model(tensor.flip(-1)).flip(-1))
    return features


def propagation_input(dataset: Any, kind: str, folder: str, image_id: str, image: np.ndarray, seeds: np.ndarray,
                      cam: tuple[np.ndarray, np.ndarray] | None = None,
                      image_keys: np.ndarray | None = None, where: str = "") -> PropagationInput:
    """Assemble one image's :class:`PropagationInput`.

    The classes present are the weak annotation's (read from ``<root>/<folder>/``; boxes also give
    the per-class box masks) or, for image tags (``kind == "image"``), ``image_keys``. ``cam`` is
    ``(cam (K,H,W), cam_keys (K,))`` from ``make_cam`` (re-indexed onto the classes present), or
    ``None`` (CAM-free). ``where`` (the seeds file) names a size mismatch.
    """
    from wsss.data.annotations import load_weak_annotation
    from wsss.seeds.box import class_box_masks
    from wsss.seeds.evidence import cam_for_classes

    if seeds.shape != image.shape[:2]:
        raise WsssError(f"{where or image_id}: seeds size {seeds.shape[1]}x{seeds.shape[0]} differs from its image "
                        f"{image.shape[1]}x{image.shape[0]}")
    allowed = None
    if kind == "image":
        if image_keys is None:
            raise WsssError(f"{image_id}: image-level supervision needs the CAM keys")
        keys = np.asarray(image_keys, np.int64)
    else:
        annotation = load_weak_annotation(dataset, kind, folder, image_id)
        keys = annotation.classes()
        if kind == "box":
            allowed = np.concatenate([np.ones((1, *seeds.shape), bool), class_box_masks(annotation.boxes, keys, seeds.shape)])
    cam_values = None if cam is None else cam_for_classes(cam[0], cam[1], keys)
    return PropagationInput(image, keys, seeds, cam_values, allowed)


def _params(cls, node: Mapping[str, Any], extra: Mapping[str, Any] = ()) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dict(node).items() if k in names}
    for key, value in dict(extra).items():
        if key not in names:
            raise WsssError(f"propagation.by_supervision: unknown key '{key}' (expected one of {', '.join(sorted(names))})")
        values[key] = value
    return cls(**values)


class Propagator:
    """A configured propagator.

    Args:
        node: the ``propagation`` config node (``name`` + the propagator's keys), as a plain mapping.
        supervision: the supervision name (A2GNN's ``by_supervision`` settings apply).
        cam: whether CAM evidence is available (``cam=classifier``).
        affinity_dir: AffinityNet folder (``random_walk``, ``a2gnn``).
        device: torch device; ``seed``: A2GNN's per-image seed.
    """

    def __init__(self, node: Mapping[str, Any], supervision: str, cam: bool, affinity_dir: str | Path | None,
                 device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.name = str(node["name"])
        if self.name not in PROPAGATORS:
            raise WsssError(f"propagation.name: unknown propagator '{self.name}' (expected {', '.join(PROPAGATORS)})")
        if not cam and self.name not in CAM_FREE:
            raise WsssError(f"cam=none: propagator '{self.name}' needs the classifier (AffinityNet features); "
                            f"CAM-free runs use propagation={' or '.join(CAM_FREE)}")
        self.device = torch.device(device)
        self.seed = seed
        self.flip = bool(node.get("flip", True))
        self.model = None
        self.radius = 0
        if self.name == "random_walk":
            self.walk = _params(SeededWalkParams, node)
        elif self.name == "a2gnn":
            overrides = dict(node.get("by_supervision", {}) or {}).get(supervision, {}) or {}
            self.a2gnn = _params(A2GNNParams, node, overrides)
        else:
            self.apro = _params(AProParams, node)
        if self.name in ("random_walk", "a2gnn"):
            if affinity_dir is None:
                raise WsssError(f"propagation={self.name}: affinity_dir is required")
            self.model, self.radius = load_affinity_net(affinity_dir, self.device)
            if self.name == "random_walk":
                self.walk = dataclasses.replace(self.walk, radius=self.radius)
            else:
                self.a2gnn = dataclasses.replace(self.a2gnn, rw_radius=self.radius)

    def __call__(self, data: PropagationInput) -> np.ndarray:
        """``(K+1,H,W)`` float32 scores of one image."""
        if self.name == "apro":
            return apro_propagate(data, self.apro)
        from kernels import pair_affinity_from_features

        features = affinity_features(self.model, data.image, self.device, self.flip)
        affinity = pair_affinity_from_features(features, self.radius)
        stride = self.model.stride
        if self.name == "random_walk":
            return seeded_walk(data, affinity, stride, self.walk)
        return a2gnn_propagate(data, features[0].cpu(), stride, self.a2gnn, affinity, self.seed)
