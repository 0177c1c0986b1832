"""MSA's unsupervised superpixel loss (``QLoss``, SpixelFCN's colour + position loss; SEEDS_ANATOMY §1.10).

Pixel features ``f = [lab, xy]``: the CIELAB colour of the image (:func:`lab_features`, OpenCV's RGB→LAB of
the float image ``uint8/255``: L in [0, 100], a and b in about [−128, 127]) and the pixel's ``(x, y)``
coordinates in pixels. Their reconstruction through the superpixels,
``f̂ = superpixel_upsample(superpixel_pool(f, Q, cell), Q, cell)``, is compared per pixel::

    L = lab_weight · Σ_p ‖lab_p − f̂_lab,p‖₂ / (B·cell)  +  xy_weight · Σ_p ‖xy_p − f̂_xy,p‖₂ / (B·cell)

MSA: ``lab_weight = 0.005``, ``xy_weight = 0.005 · 0.003`` (SpixelFCN's ``pos_weight`` 0.003 under the common
0.005), normalised by ``B·16`` at its 16-px cell. A constant colour reconstructs exactly, whatever ``Q``
(pooling a constant gives the constant and upsampling with rows summing to 1 gives it back).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kernels.superpixel import superpixel_pool, superpixel_upsample
from wsss.params import SUPERPIXEL_LAB_WEIGHT as LAB_WEIGHT, SUPERPIXEL_XY_WEIGHT as XY_WEIGHT


def lab_features(image: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float32 CIELAB of an ``(H, W, 3)`` uint8 RGB image (MSA: ``cv2.COLOR_RGB2LAB`` of ``image/255``)."""
    lab = cv2.cvtColor(np.ascontiguousarray(image).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return np.ascontiguousarray(lab.transpose(2, 0, 1))


def xy_features(batch: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(batch, 2, height, width)`` float32 pixel coordinates: channel 0 the column ``x``, channel 1 the row ``y``."""
    rows, cols = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                                torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([cols, rows])[None].expand(batch, 2, height, width)


def reconstruct(features: torch.Tensor, assoc: torch.Tensor, cell: int) -> torch.Tensor:
    """``(B, C, H, W)`` features pooled into the superpixels of ``assoc (B, 9, H, W)`` and upsampled back."""
    return superpixel_upsample(superpixel_pool(features, assoc, cell), assoc, cell)


@dataclass(frozen=True)
class SuperpixelLoss:
    """The loss of the module docstring; ``cell``: the grid's cell side (px)."""

    cell: int = 16
    lab_weight: float = LAB_WEIGHT
    xy_weight: float = XY_WEIGHT

    def terms(self, assoc: torch.Tensor, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unweighted ``(Σ‖lab − f̂_lab‖₂, Σ‖xy − f̂_xy‖₂)``, each divided by ``B·cell``, of ``assoc (B, 9, H, W)`` and
        ``lab (B, 3, H, W)`` float32 (:func:`lab_features`)."""
        batch, _, height, width = lab.shape
        features = torch.cat([lab, xy_features(batch, height, width, lab.device)], dim=1)
        error = reconstruct(features, assoc, self.cell) - features
        scale = batch * self.cell
        colour = error[:, :3].norm(p=2, dim=1).sum() / scale
        position = error[:, 3:].norm(p=2, dim=1).sum() / scale
        return colour, position

    def weighted(self, colour: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """``lab_weight · colour + xy_weight · position`` of :meth:`terms`."""
        return self.lab_weight * colour + self.xy_weight * position

    def __call__(self, assoc: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        """The loss (a scalar tensor)."""
        return self.weighted(*self.terms(assoc, lab))
