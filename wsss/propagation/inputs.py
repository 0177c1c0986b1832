"""What every seed propagator receives for one image, and the channel conventions they share.

Channels: ``0`` background, ``k = 1..K`` the classes present ``keys[k-1]`` (from the weak
annotation, or the CAM keys for image tags). Propagators return ``(K+1, H, W)`` non-negative
scores normalised per pixel, so ``argmax`` + ``[0, *keys]`` gives the label map and the dense CRF
(``refine_crf``) can follow with ``keys`` read from the propagator's ``keys.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255


@dataclass
class PropagationInput:
    """One image's evidence.

    Attributes:
        image: ``(H,W,3)`` uint8 RGB.
        keys: ``(K,)`` int64 class ids present (1..20 on VOC).
        seeds: ``(H,W)`` uint8: 0 background, a class id, 255 unknown (seeds of a class not in
            ``keys`` count as unknown).
        cam: optional ``(K,H,W)`` float32 CAMs in [0, 1] of ``keys`` (``None``: CAM-free).
        allowed: optional ``(K+1,H,W)`` bool, where each channel may be non-zero (box supervision:
            a class only inside its boxes; the background everywhere). ``None``: everywhere.
        cam_low: optional ``(K,h,w)`` float32 CAMs of ``keys`` at a stride (the CAM network's own
            low-resolution output, read by ``cam_walk``); ``None``: only ``cam``.
        boundary: optional ``(H,W)`` bool, the predicted boundary pixels (``train_boundary``, read by
            ``boundary_walk``); ``None``: no boundary map.
    """

    image: np.ndarray
    keys: np.ndarray
    seeds: np.ndarray
    cam: np.ndarray | None = None
    allowed: np.ndarray | None = None
    cam_low: np.ndarray | None = None
    boundary: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @property
    def channels(self) -> int:
        """``K + 1``."""
        return len(self.keys) + 1

    def seed_channels(self) -> np.ndarray:
        """``(H,W)`` int64 channel index of each seed pixel (0 bg, k for ``keys[k-1]``), -1 where unknown."""
        lookup = np.full(256, -1, np.int64)
        lookup[0] = 0
        for k, c in enumerate(np.asarray(self.keys).tolist(), start=1):
            lookup[int(c)] = k
        return lookup[self.seeds]

    def seed_onehot(self) -> np.ndarray:
        """``(K+1,H,W)`` float32 one-hot of the seeds (all zeros at unknown pixels)."""
        index = self.seed_channels()
        onehot = np.zeros((self.channels, *self.size), np.float32)
        rows, cols = np.nonzero(index >= 0)
        onehot[index[rows, cols], rows, cols] = 1.0
        return onehot

    def cam_prior(self, alpha: float) -> np.ndarray | None:
        """PSA's CAM distribution ``[(1 − max cam)^α, cam]`` normalised per pixel: ``(K+1,H,W)``; ``None`` when CAM-free."""
        if self.cam is None:
            return None
        cam = np.clip(np.asarray(self.cam, np.float32), 0.0, 1.0)
        top = cam.max(axis=0, keepdims=True) if len(cam) else np.zeros((1, *self.size), np.float32)
        prior = np.concatenate([np.power(1.0 - top, alpha), cam])
        return apply_allowed(prior, self.allowed)

    def label(self, scores: np.ndarray) -> np.ndarray:
        """``(H,W)`` uint8 label map of ``(K+1,H,W)`` scores."""
        lookup = np.concatenate([[0], self.keys]).astype(np.uint8)
        return lookup[np.asarray(scores).argmax(axis=0)]


def apply_allowed(scores: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Zero ``scores (C,H,W)`` where ``allowed (C,H,W)`` is False and renormalise per pixel.

    A pixel left with no mass gets everything on channel 0 (background).
    """
    scores = np.asarray(scores, np.float32)
    if allowed is not None:
        scores = scores * allowed
    total = scores.sum(axis=0, keepdims=True)
    empty = total[0] <= 0
    scores = scores / np.where(total > 0, total, 1.0)
    if empty.any():
        scores[:, empty] = 0.0
        scores[0, empty] = 1.0
    return scores


def seeds_at_stride(channels: np.ndarray, num_channels: int, stride: int) -> np.ndarray:
    """Seed channel map at ``stride``: each ``stride×stride`` cell takes its most frequent seed channel.

    ``channels``: ``(H,W)`` int64 (-1 unknown). Returns ``(ceil(H/s), ceil(W/s))`` int64, -1 where the
    cell holds no seed pixel (ties: the lower channel). Unlike nearest sampling, a point disc smaller
    than a cell still marks its cell.
    """
    if stride == 1:
        return channels.astype(np.int64)
    height, width = channels.shape
    onehot = np.zeros((num_channels, height, width), np.float32)
    rows, cols = np.nonzero(channels >= 0)
    onehot[channels[rows, cols], rows, cols] = 1.0
    tensor = torch.from_numpy(onehot)[None]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    counts = F.avg_pool2d(tensor, stride, divisor_override=1)[0]
    best = counts.argmax(dim=0)
    best[counts.amax(dim=0) <= 0] = -1
    return best.numpy().astype(np.int64)


def allowed_at_stride(allowed: np.ndarray | None, stride: int) -> np.ndarray | None:
    """``(C,H,W)`` bool → ``(C, ceil(H/s), ceil(W/s))``: a channel is allowed in a cell where it is allowed anywhere in it."""
    if allowed is None:
        return None
    height, width = allowed.shape[-2:]
    tensor = torch.from_numpy(np.ascontiguousarray(allowed, dtype=np.float32))[None]
    tensor = F.pad(tensor, (0, (-width) % stride, 0, (-height) % stride))
    return (F.max_pool2d(tensor, stride)[0] > 0).numpy()


def upsample_scores(scores: torch.Tensor, stride: int, height: int, width: int) -> np.ndarray:
    """``(C,h,w)`` node scores → ``(C,H,W)`` per-pixel distributions (bilinear, cropped, normalised), float32."""
    if stride == 1:
        upsampled = scores.float()[:, :height, :width]
    else:
        upsampled = F.interpolate(scores[None].float(), scale_factor=stride, mode="bilinear", align_corners=False)[0]
        upsampled = upsampled[:, :height, :width]
    upsampled = upsampled.clamp(min=0)
    upsampled = upsampled / upsampled.sum(dim=0, keepdim=True).clamp(min=1e-12)
    return upsampled.cpu().numpy().astype(np.float32)
