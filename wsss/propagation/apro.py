"""APro propagation of seeds: global tree propagation on the image MST, then local window propagation.

APro (SEEDS_ANATOMY §1.11) refines one soft mask per box with a global pass (GP) over the image's
minimum spanning tree and a local pass (LP). Here the same operators propagate *seeds*, one channel
per class (background included):

1. Initial probabilities ``q (K+1,H,W)`` and confidences ``w (H,W)``: at a seed pixel the seed's
   one-hot with ``w = 1``; elsewhere, in CAM mode, PSA's CAM distribution ``[(1−max cam)^α, cam]``
   with ``w = prior_weight`` (default 0: on minivoc's CAMs any prior weight lowered every supervision,
   so CAM evidence enters through the seeds alone: point fusion, box intersection); with no CAM
   (or ``prior_weight = 0``), when no seed is background (points rarely mark it), the
   background one-hot with ``w = background_prior``, a weak prior that leaves the regions no object
   seed claims to the background (with background seeds, ``w = 0`` there).
   Box supervision: a class channel is zero outside its boxes.
2. Global pass, on the guide (the ImageNet-normalised image as APro's, Gaussian-blurred by
   ``guide_blur``) reduced by cell means to at most ``max_side`` (APro also runs GP on a reduced
   image: the mask-prediction size); the MST of the guide (:func:`kernels.grid_mst`):

   * APro's GP (:func:`kernels.minimax_propagation`, weights ``exp(−W_ij/ζ²)``, ``W_ij`` the largest
     ``‖g_u − g_v‖²`` on the tree path) as a confidence-weighted average
     ``s_c = GP(w·q_c) / GP(w)``: each pixel takes the classes of the evidence it reaches over the
     weakest boundaries;
   * mixed (``geodesic_weight``) with the same average under TreeFilter's affinity
     (:func:`kernels.tree_filter`: product of the edge weights on the tree path, edge cost
     ``‖Δg‖²/geodesic_zeta² + (step/geodesic_sigma)²``), a geodesic distance that also decays
     with path length, so a weak boundary far away leaks less than under the minimax rule;
   * where no evidence is reachable (the sum underflows) ``s = q``; optional second GP with the soft
     labels as the embedding (APro's ``GP(s1, s1)``, ``zeta_label``; 0 skips it); bilinear back
     to full size; seed pixels keep their one-hot.
3. Local pass: :func:`kernels.local_propagation` (k×k window, ζ_s, iterations; APro: 5, 0.15, 20)
   on the ImageNet-normalised image, masked per channel by the boxes.
4. Box-masked, normalised, then sharpened (``scores^sharpen``, renormalised): LP's averaging leaves
   the scores over-smooth, and the dense CRF that follows reads them as confidences.

All in float64 (the GP weights span hundreds of orders of magnitude).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from wsss.data.transforms import normalize
from wsss.params import AProParams
from wsss.propagation.inputs import PropagationInput, apply_allowed

#: below this GP(w) a pixel reached no evidence (float64 underflow guard)
_UNREACHED = 1e-280


def normalised_image(image: np.ndarray, blur: float = 0.0) -> torch.Tensor:
    """``(1,3,H,W)`` float64 ImageNet-normalised image (APro's guide), Gaussian-blurred with σ = ``blur`` px (0: none)."""
    normalised = normalize(image).astype(np.float64)
    if blur > 0:
        normalised = np.stack([cv2.GaussianBlur(channel, (0, 0), blur) for channel in normalised])
    return torch.from_numpy(np.ascontiguousarray(normalised))[None]


def initial_evidence(data: PropagationInput, params: AProParams) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: ``q (K+1,H,W)`` float64 probabilities and ``w (H,W)`` float64 confidences."""
    height, width = data.size
    prior = data.cam_prior(params.alpha) if params.prior_weight > 0 else None
    if prior is None:
        q = np.zeros((data.channels, height, width), np.float64)
        q[0] = 1.0
        has_background_seeds = bool((data.seeds == 0).any())
        w = np.full((height, width), 0.0 if has_background_seeds else params.background_prior, np.float64)
    else:
        q = prior.astype(np.float64)
        w = np.full((height, width), params.prior_weight, np.float64)
    channels = data.seed_channels()
    seeded = channels >= 0
    if seeded.any():
        q[:, seeded] = 0.0
        rows, cols = np.nonzero(seeded)
        q[channels[rows, cols], rows, cols] = 1.0
        w[seeded] = 1.0
    if data.allowed is not None:
        q = q * data.allowed
        total = q.sum(axis=0)
        w = np.where(total > 0, w, 0.0)
        q = q / np.where(total > 0, total, 1.0)
    return q, w


def global_stride(height: int, width: int, max_side: int) -> int:
    """Integer stride at which the global pass runs: the smallest ``k`` with ``ceil(max(H, W) / k) <= max_side``."""
    if max_side <= 0:
        return 1
    return max(1, math.ceil(max(height, width) / max_side))


def _pool(array: torch.Tensor, stride: int) -> torch.Tensor:
    """``(B,C,H,W)`` mean over ``stride×stride`` cells (bottom/right edge replicated)."""
    if stride == 1:
        return array
    height, width = array.shape[-2:]
    padded = F.pad(array, (0, (-width) % stride, 0, (-height) % stride), mode="replicate")
    return F.avg_pool2d(padded, stride)


def _normalised_spread(spread: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """``spread (K+2, h, w)`` = propagated ``[w·q, w]`` → ``w``-weighted average ``(K+1, h, w)`` (``fallback`` where unreached)."""
    reach = spread[-1]
    out = spread[:-1] / reach.clamp(min=_UNREACHED)
    unreached = reach <= _UNREACHED
    if bool(unreached.any()):
        out[:, unreached] = fallback[:, unreached]
    return out


def global_pass(q: np.ndarray, w: np.ndarray, image: np.ndarray, params: AProParams,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Steps 2–3 at stride :func:`global_stride`: ``(K+1,H,W)`` float64 soft labels at full resolution, on ``device``."""
    from kernels import grid_mst, minimax_propagation, tree_filter

    height, width = w.shape
    stride = global_stride(height, width, params.max_side)
    guide = _pool(normalised_image(image, params.guide_blur).to(device), stride)
    evidence = _pool(torch.from_numpy(np.concatenate([q * w[None], w[None]]))[None].to(device), stride)
    fallback = _pool(torch.from_numpy(q)[None].to(device), stride)[0]
    tree = grid_mst(guide)
    s1 = torch.zeros_like(fallback)
    if params.geodesic_weight < 1:
        spread = minimax_propagation(evidence, tree, guide, params.zeta_global)[0].double()
        s1 = s1 + (1 - params.geodesic_weight) * _normalised_spread(spread, fallback)
    if params.geodesic_weight > 0:
        rows, cols = guide.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(rows, dtype=torch.float64, device=guide.device),
                                torch.arange(cols, dtype=torch.float64, device=guide.device), indexing="ij")
        embed = torch.cat([guide / params.geodesic_zeta, (yy / params.geodesic_sigma)[None, None],
                           (xx / params.geodesic_sigma)[None, None]], dim=1)
        spread = tree_filter(evidence, embed, tree)[0].double()
        s1 = s1 + params.geodesic_weight * _normalised_spread(spread, fallback)
    if params.zeta_label > 0:
        s1 = minimax_propagation(s1[None], tree, s1[None], params.zeta_label)[0].double()
    if stride > 1:
        s1 = F.interpolate(s1[None], scale_factor=stride, mode="bilinear", align_corners=False)[0, :, :height, :width]
    return s1


def apro_propagate(data: PropagationInput, params: AProParams = AProParams(),
                   device: torch.device | str = "cpu") -> np.ndarray:
    """APro scores ``(K+1,H,W)`` float32 for one image (module docstring); the kernels run on ``device``."""
    from kernels import local_propagation

    q, w = initial_evidence(data, params)
    s1 = global_pass(q, w, data.image, params, device)
    seeded = torch.from_numpy(w >= 1.0).to(s1.device)
    s1[:, seeded] = torch.from_numpy(q).to(s1.device)[:, seeded]  # seeds stay what they are
    mask = None if data.allowed is None else torch.from_numpy(data.allowed.astype(np.float64))[None].to(s1.device)
    if params.iterations > 0:
        image = normalised_image(data.image).to(s1.device)
        s1 = local_propagation(s1[None], image, params.kernel_size, params.zeta_local, params.iterations, mask)[0]
    scores = apply_allowed(s1.float().cpu().numpy(), data.allowed)
    if params.sharpen != 1.0:
        scores = apply_allowed(np.power(scores, params.sharpen), data.allowed)
    return scores
