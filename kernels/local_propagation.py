"""APro's local propagation (LP): iterated image-guided averaging in a k×k window."""

from __future__ import annotations

import torch

from kernels._checks import check_finite, check_int, check_positive_float, check_same, check_tensor, compiled_ops

__all__ = ["local_propagation"]


def local_propagation(
    values: torch.Tensor,
    image: torch.Tensor,
    kernel_size: int = 5,
    zeta: float = 0.15,
    iterations: int = 20,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """APro LP: ``x ← mask ⊙ (Σ_j a_ij x_j / Σ_j a_ij)`` repeated ``iterations`` times from ``values ⊙ mask``.

    ``a_ij = exp(-Σ_c (I_c,j − I_c,i)² / zeta²)`` over the ``kernel_size²`` window around ``i``
    including ``i`` itself (``a_ii = 1``), computed once from ``image``. Neighbours outside the image
    contribute nothing (exactly; APro approximates this by shifting the image by +10 before zero
    padding). APro's defaults: ``kernel_size=5, zeta=0.15, iterations=20``.

    Args:
        values: ``(B, C, H, W)`` float32/float64 (e.g. predicted instance masks), CPU or CUDA.
        image: ``(B, K, H, W)`` guide (e.g. normalised RGB, K = 3), same dtype and device.
        kernel_size: odd window size >= 1.
        zeta: colour bandwidth > 0.
        iterations: >= 0 (0 returns ``values ⊙ mask``).
        mask: ``None`` (all ones) or ``(B, 1, H, W)`` / ``(B, C, H, W)`` (e.g. the box mask), same
            device; bool or float, cast to ``values.dtype``.

    Returns ``(B, C, H, W)``, same dtype and device. Not differentiable (APro runs it under no_grad).
    """
    op = "local_propagation"
    check_tensor(op, "values", values, 4)
    check_tensor(op, "image", image, 4)
    check_same(op, "values", values, "image", image)
    if image.shape[0] != values.shape[0] or image.shape[2:] != values.shape[2:]:
        raise ValueError(f"{op}: image must be (B, K, H, W) = ({values.shape[0]}, K, {values.shape[2]}, {values.shape[3]}) "
                         f"like values {tuple(values.shape)}, got {tuple(image.shape)}")
    if image.shape[1] < 1:
        raise ValueError(f"{op}: image needs at least one channel")
    kernel_size = check_int(op, "kernel_size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise ValueError(f"{op}: kernel_size must be odd, got {kernel_size}")
    zeta = check_positive_float(op, "zeta", zeta)
    iterations = check_int(op, "iterations", iterations, 0)
    if mask is not None:
        check_tensor(op, "mask", mask, 4, (torch.bool, torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64))
        if mask.device != values.device:
            raise ValueError(f"{op}: mask is on {mask.device} but values is on {values.device}")
        b, c, h, w = values.shape
        if mask.shape[0] != b or mask.shape[1] not in (1, c) or mask.shape[2:] != values.shape[2:]:
            raise ValueError(f"{op}: mask must be ({b}, 1 or {c}, {h}, {w}), got {tuple(mask.shape)}")
        mask = mask.detach().to(values.dtype)
    check_finite(op, "values", values)
    check_finite(op, "image", image)
    with torch.no_grad():
        ops = compiled_ops(op, values, image)
        return ops.local_propagation(values.detach(), image.detach(), mask, kernel_size, zeta, iterations)
