"""Seeds from image-level labels: CAM + dense CRF confident regions (PSA; IRN variant)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsss.cam.inference import with_background_power
from wsss.crf import CRFParams, crf_from_labels, crf_from_probs

IGNORE = 255


def psa_seeds(
    image: np.ndarray, cam: np.ndarray, keys: np.ndarray, alpha_low: float = 4.0, alpha_high: float = 32.0,
    crf: CRFParams = CRFParams(),
) -> np.ndarray:
    """PSA's la/ha rule (SEEDS_ANATOMY §1.2).

    ``cam (K,H,W)`` normalised CAMs of the present classes ``keys (K,)``.
    Background score ``(1 − max cam)^α``; the CRF under ``alpha_low`` gives the
    confident foreground (its non-background argmax), the CRF under ``alpha_high``
    the confident background (its background argmax); the rest is 255.
    Returns ``(H,W)`` uint8 in {0, keys, 255}.
    """
    lookup = np.concatenate([[0], keys]).astype(np.uint8)
    low = crf_from_probs(image, with_background_power(cam, alpha_low), crf).argmax(axis=0)
    high = crf_from_probs(image, with_background_power(cam, alpha_high), crf).argmax(axis=0)
    seeds = lookup[low]
    seeds[low == 0] = IGNORE
    seeds[high == 0] = 0
    return seeds


def irn_seeds(
    image: np.ndarray, cam: np.ndarray, keys: np.ndarray, fg_threshold: float = 0.30, bg_threshold: float = 0.05,
    crf: CRFParams = CRFParams(bilateral_sxy=50.0, bilateral_srgb=5.0),
) -> np.ndarray:
    """IRN's threshold variant: CRF-refined argmax with a constant background of
    ``fg_threshold`` (confident foreground) and ``bg_threshold`` (confident background).
    Returns ``(H,W)`` uint8 in {0, keys, 255}.
    """
    lookup = np.concatenate([[0], keys]).astype(np.uint8)
    height, width = cam.shape[-2:]

    def refined(threshold: float) -> np.ndarray:
        scores = np.concatenate([np.full((1, height, width), threshold, np.float32), cam])
        return crf_from_labels(image, scores.argmax(axis=0), len(lookup), crf)

    fg_conf = refined(fg_threshold)
    bg_conf = refined(bg_threshold)
    seeds = lookup[fg_conf]
    seeds[fg_conf == 0] = IGNORE
    seeds[(fg_conf == 0) & (bg_conf == 0)] = 0
    return seeds


@dataclass(frozen=True)
class ImageSeedJob:
    """What every image of an image-level ``make_seeds`` run shares (sent once to each worker process,
    :mod:`wsss.parallel`): the rule (``psa`` or ``irn``), its parameters and the CRF kernels."""

    method: str
    alpha_low: float
    alpha_high: float
    fg_threshold: float
    bg_threshold: float
    crf: CRFParams

    def __post_init__(self) -> None:
        from wsss.errors import WsssError

        if self.method not in ("psa", "irn"):
            raise WsssError(f"image.method: must be 'psa' or 'irn', got '{self.method}'")


def image_seeds(job: ImageSeedJob, item: tuple[str, np.ndarray, np.ndarray, np.ndarray]) -> tuple[str, np.ndarray]:
    """One image of ``make_seeds`` under image tags: ``item = (id, image (H,W,3) uint8, cam (K,H,W) float32,
    keys (K,))`` → ``(id, seeds (H,W) uint8)`` by :func:`psa_seeds` or :func:`irn_seeds`."""
    image_id, image, cam, keys = item
    if job.method == "psa":
        return image_id, psa_seeds(image, cam, keys, job.alpha_low, job.alpha_high, job.crf)
    return image_id, irn_seeds(image, cam, keys, job.fg_threshold, job.bg_threshold, job.crf)
