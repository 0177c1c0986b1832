"""Running a configured propagator on one image (the ``propagate`` stage's per-image work).

:class:`Propagator` is built once from the ``propagation`` config node (and, for ``cam_walk``,
``random_walk`` and ``a2gnn``, the AffinityNet of ``train_affinity``), then called per image with a
:class:`~wsss.propagation.inputs.PropagationInput`; it returns ``(K+1,H,W)`` float32 scores.
The propagators and what each needs: :mod:`wsss.propagation.catalog`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from wsss.affinity.inference import affinity_features, infer_affinity, load_affinity_net
from wsss.errors import WsssError
from wsss.propagation.a2gnn import A2GNNParams, a2gnn_propagate_batch
from wsss.propagation.apro import AProParams, apro_propagate
from wsss.propagation.catalog import CAM_FREE, PROPAGATORS
from wsss.propagation.inputs import PropagationInput
from wsss.params import BoundaryWalkParams
from wsss.propagation.random_walk import (RandomWalkParams, cam_at_stride, propagate, upsample_scores,
                                         with_power_background)
from wsss.propagation.seeded_walk import SeededWalkParams, seeded_walk
from wsss.weakshot.walk import GATES, boundary_at_stride, two_stage_walk


def propagation_input(dataset: Any, kind: str, folder: str, image_id: str, image: np.ndarray, seeds: np.ndarray,
                      cam: tuple[np.ndarray, np.ndarray] | None = None,
                      image_keys: np.ndarray | None = None, where: str = "",
                      cam_low: np.ndarray | None = None, boundary: np.ndarray | None = None) -> PropagationInput:
    """Assemble one image's :class:`PropagationInput`.

    The classes present are the weak annotation's (read from ``<root>/<folder>/``; boxes also give
    the per-class box masks) or, for image tags (``image``, and ``weakshot``'s tags), ``image_keys``. ``cam`` is
    ``(cam (K,H,W), cam_keys (K,))`` from ``make_cam`` (re-indexed onto the classes present), or
    ``None`` (CAM-free); ``cam_low`` the same CAMs at a stride (``make_cam``'s ``stride<s>/<id>.npy``,
    channels as ``cam[1]``), or ``None``; ``boundary`` the ``(H,W)`` bool boundary pixels, or ``None``.
    ``where`` (the seeds file) names a size mismatch.
    """
    from wsss.data.annotations import load_weak_annotation
    from wsss.seeds.box import class_box_masks
    from wsss.seeds.evidence import cam_for_classes

    if seeds.shape != image.shape[:2]:
        raise WsssError(f"{where or image_id}: seeds size {seeds.shape[1]}x{seeds.shape[0]} differs from its image "
                        f"{image.shape[1]}x{image.shape[0]}")
    allowed = None
    if boundary is not None and boundary.shape != image.shape[:2]:
        raise WsssError(f"{image_id}: boundary map size {boundary.shape[1]}x{boundary.shape[0]} differs from its image "
                        f"{image.shape[1]}x{image.shape[0]}")
    if kind in ("image", "weakshot"):
        if image_keys is None:
            raise WsssError(f"{image_id}: image-level supervision needs the CAM keys")
        keys = np.asarray(image_keys, np.int64)
    else:
        annotation = load_weak_annotation(dataset, kind, folder, image_id)
        keys = annotation.classes()
        if kind == "box":
            allowed = np.concatenate([np.ones((1, *seeds.shape), bool), class_box_masks(annotation.boxes, keys, seeds.shape)])
    cam_values = None if cam is None else cam_for_classes(cam[0], cam[1], keys)
    low_values = None if cam is None or cam_low is None else cam_for_classes(cam_low, cam[1], keys)
    return PropagationInput(image, keys, seeds, cam_values, allowed, low_values, boundary)


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
        affinity_dir: AffinityNet folder (``cam_walk``, ``random_walk``, ``a2gnn``).
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
        #: labelled scores of the last image's intermediate stages, ``{name: (K+1,H,W)}`` (``boundary_walk``: stage1)
        self.intermediate: dict[str, np.ndarray] = {}
        if self.name == "boundary_walk":
            self.boundary_walk = _params(BoundaryWalkParams, node)
            if self.boundary_walk.steps < 1:
                raise WsssError(f"propagation.steps: must be a positive number of walk steps, got {self.boundary_walk.steps}")
            if self.boundary_walk.gate not in GATES:
                raise WsssError(f"propagation.gate: must be one of {', '.join(GATES)}, got '{self.boundary_walk.gate}'")
        elif self.name == "cam_walk":
            self.cam_walk = _params(RandomWalkParams, node)
            if self.cam_walk.background not in ("power", "constant"):
                raise WsssError(f"propagation.background: must be 'power' or 'constant', got '{self.cam_walk.background}'")
            if self.cam_walk.steps < 1:
                raise WsssError(f"propagation.steps: must be a positive number of walk steps, got {self.cam_walk.steps}")
        elif self.name == "random_walk":
            self.walk = _params(SeededWalkParams, node)
        elif self.name == "a2gnn":
            overrides = dict(node.get("by_supervision", {}) or {}).get(supervision, {}) or {}
            self.a2gnn = _params(A2GNNParams, node, overrides)
            if self.a2gnn.batch_images < 1:
                raise WsssError(f"propagation.batch_images: must be a positive number of images, got {self.a2gnn.batch_images}")
        else:
            self.apro = _params(AProParams, node)
        if PROPAGATORS[self.name].affinity:
            if affinity_dir is None:
                raise WsssError(f"propagation={self.name}: affinity_dir is required")
            self.model, self.radius = load_affinity_net(affinity_dir, self.device)
            if self.name == "cam_walk":
                self.cam_walk = dataclasses.replace(self.cam_walk, radius=self.radius)
            elif self.name == "boundary_walk":
                self.boundary_walk = dataclasses.replace(self.boundary_walk, radius=self.radius)
            elif self.name == "random_walk":
                self.walk = dataclasses.replace(self.walk, radius=self.radius)
            else:
                self.a2gnn = dataclasses.replace(self.a2gnn, rw_radius=self.radius)

    @property
    def cam_stride(self) -> int | None:
        """The stride of the CAMs this propagator reads beside the full-resolution ones (``cam_low``), or None."""
        return self.model.stride if self.name in ("cam_walk", "boundary_walk") else None

    @property
    def batch_size(self) -> int:
        """How many images :meth:`batch` takes at once to advantage (A2GNN trains a batch in the same steps)."""
        return self.a2gnn.batch_images if self.name == "a2gnn" else 1

    def batch(self, datas: list[PropagationInput]) -> list[np.ndarray]:
        """Scores of several images; the same as calling the propagator on each (up to float rounding)."""
        if self.name != "a2gnn":
            return [self(data) for data in datas]
        from kernels import pair_affinity_from_features

        features = [affinity_features(self.model, data.image, self.device, self.flip) for data in datas]
        affinities = [pair_affinity_from_features(f, self.radius) for f in features]
        return a2gnn_propagate_batch(datas, [f[0] for f in features], self.model.stride, self.a2gnn, affinities,
                                     self.seed)

    def __call__(self, data: PropagationInput) -> np.ndarray:
        """``(K+1,H,W)`` float32 scores of one image."""
        if self.name == "a2gnn":
            return self.batch([data])[0]
        if self.name == "apro":
            return apro_propagate(data, self.apro, self.device)
        if self.name == "cam_walk":
            return self._walk_cams(data)
        if self.name == "boundary_walk":
            return self._walk_in_two_stages(data)
        from kernels import pair_affinity_from_features

        features = affinity_features(self.model, data.image, self.device, self.flip)
        affinity = pair_affinity_from_features(features, self.radius)
        stride = self.model.stride
        return seeded_walk(data, affinity, stride, self.walk)

    def _cams_at_stride(self, data: PropagationInput) -> torch.Tensor:
        """``(K,h,w)`` CAMs at the AffinityNet stride: ``make_cam``'s own when given, else pooled from the full ones."""
        if data.cam_low is not None:
            return torch.from_numpy(np.ascontiguousarray(data.cam_low, dtype=np.float32))
        return cam_at_stride(data.cam, self.model.stride)

    def _walk_in_two_stages(self, data: PropagationInput) -> np.ndarray:
        """RETAB: the CAMs (PSA's background) walked inside the predicted boundaries, then the boundaries filled."""
        if data.cam is None or data.boundary is None:
            raise WsssError("propagation=boundary_walk: needs the CAMs (cam=classifier) and the boundary maps (boundary_dir)")
        height, width = data.size
        stride = self.model.stride
        affinity = infer_affinity(self.model, data.image, self.radius, self.device, self.flip)
        values = with_power_background(self._cams_at_stride(data), self.boundary_walk.alpha)
        stage1, stage2 = two_stage_walk(values, affinity, boundary_at_stride(data.boundary, stride), self.boundary_walk)
        self.intermediate = {"stage1": upsample_scores(stage1, stride, height, width)}
        return upsample_scores(stage2, stride, height, width)

    def _walk_cams(self, data: PropagationInput) -> np.ndarray:
        """PSA/IRN: the CAMs (at the AffinityNet stride) walked on the image's affinities, a background channel added."""
        if data.cam is None:
            raise WsssError("propagation=cam_walk: needs the CAMs (cam=classifier)")
        height, width = data.size
        stride = self.model.stride
        affinity = infer_affinity(self.model, data.image, self.radius, self.device, self.flip)
        return upsample_scores(propagate(self._cams_at_stride(data), affinity, self.cam_walk), stride, height, width)
