"""Random walk from seeds (+ CAMs) on AffinityNet affinities: the PSA/IRN walk for point, scribble and box seeds.

The image-level stage (``stages/random_walk``) walks the CAMs; here the walk starts from the
supervision's evidence (SEEDS_ANATOMY §1.6 form, ``v · T^t`` with ``T = A^β`` column-normalised,
:func:`kernels.random_walk`), at the affinity stride:

* CAM mode: ``v = [(1 − max cam)^α, cam]`` average-pooled to the stride (PSA), CAM-free: ``v = 0``;
* every cell holding seeds is set to the one-hot of its majority seed channel (the annotation, or
  the seed rule, is surer than the CAM);
* box supervision: class channels are zeroed outside their boxes before and after the walk.

* every ``clamp_every`` steps the seeded cells are reset to their one-hot, so the walk interpolates
  between the seeds (Grady's random walker) instead of diffusing them away as PSA's free walk of
  CAMs does (``clamp_every = 0``).

The walked scores are upsampled bilinearly, box-masked and normalised per pixel. A pixel that no
mass reaches is background.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsss.params import SeededWalkParams
from wsss.propagation.inputs import (PropagationInput, allowed_at_stride, apply_allowed, seeds_at_stride,
                                     upsample_scores)


def initial_values(data: PropagationInput, stride: int, alpha: float) -> torch.Tensor:
    """``(K+1, ceil(H/s), ceil(W/s))`` float32 start of the walk (module docstring)."""
    height, width = data.size
    prior = data.cam_prior(alpha)
    if prior is None:
        prior = np.zeros((data.channels, height, width), np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32))[None]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    values = F.avg_pool2d(tensor, stride)[0] if stride > 1 else tensor[0]
    cells = torch.from_numpy(seeds_at_stride(data.seed_channels(), data.channels, stride))
    rows, cols = torch.nonzero(cells >= 0, as_tuple=True)
    values[:, rows, cols] = 0.0
    values[cells[rows, cols], rows, cols] = 1.0
    allowed = allowed_at_stride(data.allowed, stride)
    if allowed is not None:
        values = values * torch.from_numpy(allowed)
    return values


def seeded_walk(data: PropagationInput, affinity: torch.Tensor, stride: int, params: SeededWalkParams) -> np.ndarray:
    """Walk the evidence of ``data`` on ``affinity (1,D,h,w)`` (stride ``stride``). Returns ``(K+1,H,W)`` float32."""
    from kernels import random_walk

    height, width = data.size
    values = initial_values(data, stride, params.alpha).to(affinity.dtype).to(affinity.device)
    if tuple(values.shape[-2:]) != tuple(affinity.shape[-2:]):
        raise ValueError(f"seeded_walk: affinity grid {tuple(affinity.shape[-2:])} differs from the seeds' "
                         f"grid {tuple(values.shape[-2:])} at stride {stride}")
    if params.clamp_every <= 0:
        walked = random_walk(values[None], affinity, params.radius, params.beta, params.steps)[0]
    else:  # seeds stay what they are: the walk interpolates between them (Grady's random walker)
        cells = torch.from_numpy(seeds_at_stride(data.seed_channels(), data.channels, stride)).to(values.device)
        rows, cols = torch.nonzero(cells >= 0, as_tuple=True)
        clamped = values[:, rows, cols].clone()
        walked = values
        done = 0
        while done < params.steps:
            chunk = min(params.clamp_every, params.steps - done)
            walked = random_walk(walked[None], affinity, params.radius, params.beta, chunk)[0]
            walked[:, rows, cols] = clamped
            done += chunk
    scores = upsample_scores(walked, stride, height, width)
    return apply_allowed(scores, data.allowed)
