"""Dense CRF (pydensecrf2) with the parameter sets the papers use (SEEDS_ANATOMY §1.3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.errors import WsssError
from wsss.io import IGNORE_INDEX, load_label_png, load_npy, save_npy
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
    if seeds.shape != labels.shape:
        raise WsssError(f"{where}: seeds size {seeds.shape[1]}x{seeds.shape[0]} differs from the labels "
                        f"{labels.shape[1]}x{labels.shape[0]}")
    return np.where(seeds != IGNORE_INDEX, seeds, labels).astype(np.uint8)


@dataclass(frozen=True)
class RefineJob:
    """What every image of a ``refine_crf`` run shares (sent once to each worker process, :mod:`wsss.parallel`).

    ``scores_dir``: ``<id>.npy`` ``(K+1,H,W)`` scores, channel 0 background, channel k the class ``keys_of[id][k-1]``
    (only the classes present: the CRF runs over K+1 labels, not 21); ``out_dir``: refined scores go to
    ``out_dir/scores/<id>.npy``; ``seeds_dir``: when set, every confident seed keeps its label.
    """

    scores_dir: Path
    out_dir: Path
    keys_of: dict[str, np.ndarray]
    params: CRFParams = CRFParams()
    seeds_dir: Path | None = None


def refine_image(job: RefineJob, item: tuple[str, np.ndarray]) -> tuple[str, np.ndarray]:
    """One image of ``refine_crf``: ``item = (id, image (H,W,3) uint8)`` → ``(id, labels (H,W) uint8)``.

    Reads its scores, runs the CRF over the classes present, writes the refined scores (float16, atomically),
    takes the argmax as class ids and keeps the confident seeds when ``job.seeds_dir`` is set. Bad scores
    (missing, non-finite, not matching keys.json or the image) are a one-line :class:`WsssError`.
    """
    image_id, image = item
    path = job.scores_dir / f"{image_id}.npy"
    keys = job.keys_of.get(image_id)
    if keys is None:
        raise WsssError(f"{job.scores_dir.parent / 'keys.json'}: no entry for image '{image_id}'")
    scores = load_npy(path).astype(np.float32)
    if scores.ndim != 3 or scores.shape[0] != len(keys) + 1:
        raise WsssError(f"{path}: scores of shape {scores.shape}, expected {len(keys) + 1} channels (background + "
                        f"the {len(keys)} classes keys.json lists)")
    if scores.shape[1:] != image.shape[:2]:
        raise WsssError(f"{path}: scores size {scores.shape[2]}x{scores.shape[1]} differs from the image "
                        f"{image.shape[1]}x{image.shape[0]}")
    refined = crf_from_probs(image, scores, job.params)
    save_npy(job.out_dir / "scores" / f"{image_id}.npy", refined.astype(np.float16))
    lookup = np.concatenate([[0], keys]).astype(np.uint8)
    labels = lookup[refined.argmax(axis=0)]
    if job.seeds_dir is not None:
        seeds_path = job.seeds_dir / f"{image_id}.png"
        labels = keep_confident_seeds(labels, load_label_png(seeds_path), str(seeds_path))
    return image_id, labels
