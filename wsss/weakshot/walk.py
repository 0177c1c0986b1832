"""RETAB's two-stage random walk (SEEDS_ANATOMY §1.9), through the compiled :func:`kernels.random_walk`.

Stage 1 walks the CAMs (with PSA's background) on the AffinityNet pairs whose two ends are both non-boundary:
a boundary cell has only its self loop, so nothing crosses a predicted boundary. Stage 2 starts from stage 1's
scores on every pair, with the non-boundary cells frozen: they keep their stage-1 values (boundary↔boundary
edges both ways, non-boundary→boundary edges one way, none between two non-boundary cells), and the boundary
cells are filled from the interior around them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsss.params import BoundaryWalkParams


def boundary_at_stride(boundary: np.ndarray, stride: int) -> torch.Tensor:
    """``(H, W)`` bool boundary pixels → ``(ceil(H/s), ceil(W/s))`` bool cells: a cell is boundary when any of its
    pixels is (the image padded with non-boundary at the bottom/right, as the CAMs are)."""
    tensor = torch.from_numpy(np.ascontiguousarray(boundary, dtype=np.float32))[None, None]
    height, width = tensor.shape[-2:]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    return F.max_pool2d(tensor, stride)[0, 0] > 0


GATES = ("endpoints", "path")


def path_cells(dy: int, dx: int, gate: str = "endpoints") -> list[tuple[int, int]]:
    """The cells (offsets from the pair's first end) that must be off the boundaries for the pair ``(0,0)–(dy,dx)``
    to be kept: its two ends (``endpoints``), or every cell of the straight line between them, rounded (``path``)."""
    if gate not in GATES:
        raise ValueError(f"propagation.gate: must be one of {', '.join(GATES)}, got '{gate}'")
    if gate == "endpoints":
        return [(0, 0), (dy, dx)]
    steps = max(abs(dy), abs(dx))
    return sorted({(round(k * dy / steps), round(k * dx / steps)) for k in range(steps + 1)})


def interior_pairs(affinity: torch.Tensor, boundary: torch.Tensor, radius: int, gate: str = "endpoints") -> torch.Tensor:
    """``affinity`` ``(B, D, h, w)`` with every pair that meets a boundary cell (``boundary`` ``(B, h, w)`` bool) at one
    of its :func:`path_cells` set to 0."""
    from kernels import direction_offsets

    inside = (~boundary).to(affinity.dtype)
    height, width = boundary.shape[-2:]
    kept = torch.zeros_like(affinity)
    for d, (dy, dx) in enumerate(direction_offsets(radius)):
        rows, cols = max(0, height - dy), max(0, width - abs(dx))
        left = max(0, -dx)  # first column whose neighbour (y + dy, x + dx) is inside
        if rows == 0 or cols == 0:
            continue
        gate_open = affinity[:, d, :rows, left:left + cols]
        for py, px in path_cells(dy, dx, gate):  # every cell of the path lies between the two ends: inside
            gate_open = gate_open * inside[:, py:py + rows, left + px:left + px + cols]
        kept[:, d, :rows, left:left + cols] = gate_open
    return kept


def two_stage_walk(values: torch.Tensor, affinity: torch.Tensor, boundary: torch.Tensor,
                   params: BoundaryWalkParams) -> tuple[torch.Tensor, torch.Tensor]:
    """RETAB's walk of ``values`` ``(C, h, w)`` (e.g. background + CAMs) on ``affinity`` ``(1, D, h, w)`` with
    boundary cells ``boundary`` ``(h, w)`` bool. Returns ``(stage1, stage2)``, each ``(C, h, w)``; ``stage2`` is
    ``stage1`` when ``params.second_stage`` is off."""
    from kernels import random_walk

    boundary = boundary.to(affinity.device)[None]
    values = values.to(affinity.dtype).to(affinity.device)[None]
    stage1 = random_walk(values, interior_pairs(affinity, boundary, params.radius, params.gate), params.radius,
                         params.beta, params.steps)
    if not params.second_stage:
        return stage1[0], stage1[0]
    stage2 = random_walk(stage1, affinity, params.radius, params.beta, params.steps, frozen=~boundary)
    return stage1[0], stage2[0]
