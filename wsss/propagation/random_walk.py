"""Random-walk propagation of CAMs on learned affinities (PSA/IRN, SEEDS_ANATOMY §1.6).

The walk itself is :func:`kernels.random_walk` (sparse, O(N·D) memory); this
module prepares its input (CAMs with a background channel at the affinity
stride) and turns its output into full-resolution class scores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsss.params import RandomWalkParams


def cam_at_stride(cam_highres: np.ndarray, stride: int) -> torch.Tensor:
    """Average-pool ``(K,H,W)`` CAMs to ``(K, ceil(H/s), ceil(W/s))`` (zero padding at bottom/right, PSA)."""
    tensor = torch.from_numpy(np.ascontiguousarray(cam_highres, dtype=np.float32))[None]
    height, width = tensor.shape[-2:]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    return F.avg_pool2d(tensor, stride)[0]


def with_power_background(cam_low: torch.Tensor, alpha: float) -> torch.Tensor:
    """PSA's walk input: ``(K,h,w)`` CAMs in [0, 1] → ``(K+1,h,w)`` with the background ``(1 − max_k cam)^alpha`` first."""
    max_cam = cam_low.amax(dim=0, keepdim=True) if cam_low.shape[0] else cam_low.new_zeros((1, *cam_low.shape[1:]))
    return torch.cat([(1.0 - max_cam).clamp(min=0).pow(alpha), cam_low])


def propagate(cam_low: torch.Tensor, affinity: torch.Tensor, params: RandomWalkParams) -> torch.Tensor:
    """Random walk of CAMs.

    ``cam_low``: ``(K,h,w)`` CAMs in [0, 1] at the affinity stride; ``affinity``:
    ``(1,D,h,w)`` pair affinities. Returns ``(K+1,h,w)`` non-negative scores,
    channel 0 = background.
    """
    from kernels import random_walk

    cam_low = cam_low.to(affinity.dtype).to(affinity.device)
    if params.background == "power":
        values = with_power_background(cam_low, params.alpha)
        return random_walk(values[None], affinity, params.radius, params.beta, params.steps)[0]
    if params.background == "constant":
        if cam_low.shape[0] == 0:
            return torch.ones((1, *cam_low.shape[1:]), dtype=cam_low.dtype, device=cam_low.device)
        walked = random_walk(cam_low[None], affinity, params.radius, params.beta, params.steps)[0]
        walked = walked / walked.max().clamp(min=1e-5)
        background = torch.full_like(walked[:1], params.bg_threshold)
        return torch.cat([background, walked])
    raise ValueError(f"random walk background must be 'power' or 'constant', got '{params.background}'")


def upsample_scores(scores: torch.Tensor, stride: int, height: int, width: int) -> np.ndarray:
    """``(C,h,w)`` scores at ``stride`` → ``(C,H,W)`` per-pixel distributions (bilinear ×stride, crop, normalise)."""
    upsampled = F.interpolate(scores[None].float(), scale_factor=stride, mode="bilinear", align_corners=False)[0]
    upsampled = upsampled[:, :height, :width].clamp(min=0)
    upsampled = upsampled / upsampled.sum(dim=0, keepdim=True).clamp(min=1e-8)
    return upsampled.cpu().numpy()
