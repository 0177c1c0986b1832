"""Dense CRF (pydensecrf2) with the parameter sets the papers use (SEEDS_ANATOMY §1.3)."""

from __future__ import annotations

import numpy as np

from wsss.io import IGNORE_INDEX

from wsss.params import CRFParams


def _crf(image: np.ndarray, unary: np.ndarray, n_labels: int, params: CRFParams) -> np.ndarray:
    import pydensecrf.densecrf as dcrf

    height, width = image.shape[:2]
    model = dcrf.DenseCRF2D(width, height, n_labels)
    model.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    model.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    model.addPairwiseBilateral(
        sxy=params.bilateral_sxy, srgb=params.bilateral_srgb,
        # a copy: pydensecrf needs a writable buffer and decoded images (np.asarray of PIL) are read-only
        rgbim=np.array(image, dtype=np.uint8, order="C", copy=True), compat=params.bilateral_compat,
    )
    result = model.inference(params.iterations)
    return np.array(result, dtype=np.float32).reshape(n_labels, height, width)


def crf_from_probs(image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Refine ``probs (n,H,W)`` (non-negative scores, normalised here) on ``image (H,W,3) uint8``.

    Returns CRF marginals ``(n,H,W)`` float32.
    """
    n_labels = probs.shape[0]
    if n_labels == 1:
        return np.ones_like(probs, dtype=np.float32)
    normalised = probs / np.clip(probs.sum(axis=0, keepdims=True), 1e-8, None)
    unary = -np.log(np.clip(normalised, 1e-5, 1.0)).reshape(n_labels, -1)
    return _crf(image, unary, n_labels, params)


def crf_from_labels(
    image: np.ndarray, labels: np.ndarray, n_labels: int, params: CRFParams = CRFParams(), gt_prob: float = 0.7
) -> np.ndarray:
    """IRN's ``crf_inference_label``: unary from hard ``labels (H,W)`` in ``0..n_labels-1``.

    Returns the refined ``(H,W)`` int64 label indices.
    """
    if n_labels == 1:
        return np.zeros(labels.shape, dtype=np.int64)
    from pydensecrf.utils import unary_from_labels

    unary = unary_from_labels(labels.astype(np.int32), n_labels, gt_prob=gt_prob, zero_unsure=False)
    return _crf(image, unary, n_labels, params).argmax(axis=0)


def keep_confident_seeds(labels: np.ndarray, seeds: np.ndarray, where: str = "seeds") -> np.ndarray:
    """``labels (H,W)`` with every confident pixel of ``seeds (H,W)`` (not 255) set to its seed label. ``(H,W)`` uint8.

    ``where`` names the seeds file in the error raised on a size mismatch.
    """
    from wsss.errors import WsssError

    if seeds.shape != labels.shape:
        raise WsssError(f"{where}: seeds size {seeds.shape[1]}x{seeds.shape[0]} differs from the labels "
                        f"{labels.shape[1]}x{labels.shape[0]}")
    return np.where(seeds != IGNORE_INDEX, seeds, labels).astype(np.uint8)
