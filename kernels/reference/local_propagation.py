"""Reference for :func:`kernels.local_propagation`: APro's unfold formulation in plain PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_propagation_unfold(values: torch.Tensor, image: torch.Tensor, kernel_size: int = 5, zeta: float = 0.15,
                             iterations: int = 20, mask: torch.Tensor | None = None,
                             dtype=torch.float64) -> torch.Tensor:
    """APro LP with ``F.unfold`` windows; out-of-image neighbours are masked out exactly. Returns ``dtype``."""
    batch, channels, height, width = values.shape
    taps, pad = kernel_size * kernel_size, kernel_size // 2
    image = image.to(dtype)
    windows = F.unfold(image, kernel_size, padding=pad).view(batch, image.shape[1], taps, height, width)
    valid = F.unfold(torch.ones(1, 1, height, width, dtype=dtype, device=image.device), kernel_size, padding=pad)
    valid = valid.view(1, taps, height, width)
    affinity = torch.exp(-((windows - image[:, :, None]) ** 2).sum(dim=1) / zeta**2) * valid
    affinity = affinity / affinity.sum(dim=1, keepdim=True)
    mask = torch.ones(batch, 1, height, width, dtype=dtype, device=values.device) if mask is None else mask.to(dtype)
    x = values.to(dtype) * mask
    for _ in range(iterations):
        neighbours = F.unfold(x, kernel_size, padding=pad).view(batch, channels, taps, height, width)
        x = (neighbours * affinity[:, None]).sum(dim=2) * mask
    return x
