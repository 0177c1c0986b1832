"""Class activation maps: the trained classifier, multi-scale + flip inference, normalisation, CAM → label map."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.classifier import CAMClassifier
from wsss.data.transforms import normalize


def load_classifier(classifier_dir, device: torch.device | str = "cpu") -> CAMClassifier:
    """The trained classifier of a ``train_classifier`` output folder, in eval mode."""
    from pathlib import Path

    from wsss.errors import WsssError

    from wsss.io import load_torch

    path = Path(classifier_dir) / "model.pt"
    if not path.is_file():
        raise WsssError(f"{path}: classifier not found (run train_classifier first)")
    checkpoint = load_torch(path, "classifier", ("config", "state_dict"))
    backbone = checkpoint["config"]["backbone"]
    model = CAMClassifier(backbone["arch"], backbone["output_stride"], 20, width=backbone.get("width", 64))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval().to(device)


def stride_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Size of a map at ``stride`` covering an ``H×W`` image: ``(ceil(H/s), ceil(W/s))``."""
    return math.ceil(height / stride), math.ceil(width / stride)


@torch.no_grad()
def compute_cams(
    model: CAMClassifier,
    image: np.ndarray,
    image_labels: np.ndarray,
    scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
    flip: bool = True,
    low_stride: int = 4,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CAMs of the classes present in ``image_labels``.

    ``image``: ``(H,W,3)`` uint8 RGB; ``image_labels``: ``(20,)`` multi-hot.
    For every scale (and its horizontal flip) the ReLU CAM is upsampled
    bilinearly to the image size and to the stride-``low_stride`` size and summed;
    each class map is then divided by its maximum (+1e-5).

    Returns ``keys (K,) int64`` (class ids 1..20), ``cam_highres (K,H,W) float32``
    in [0, 1], ``cam_low (K, ceil(H/s), ceil(W/s)) float32`` in [0, 1].
    """
    height, width = image.shape[:2]
    keys = np.flatnonzero(np.asarray(image_labels) > 0.5) + 1
    low_size = stride_size(height, width, low_stride)
    if keys.size == 0:
        return keys.astype(np.int64), np.zeros((0, height, width), np.float32), np.zeros((0, *low_size), np.float32)
    tensor = torch.from_numpy(normalize(image))[None].to(device)
    highres = torch.zeros((keys.size, height, width), device=device)
    low = torch.zeros((keys.size, *low_size), device=device)
    index = torch.as_tensor(keys - 1, device=device)
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False) if scale != 1.0 else tensor
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        cams = model.cam(batch)[:, index]
        if flip:
            cams = cams[:1] + cams[1:].flip(-1)
        highres += F.interpolate(cams, size=(height, width), mode="bilinear", align_corners=False)[0]
        low += F.interpolate(cams, size=low_size, mode="bilinear", align_corners=False)[0]
    highres /= highres.flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-5
    low /= low.flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-5
    return keys.astype(np.int64), highres.cpu().numpy(), low.cpu().numpy()


def cam_to_label(cam: np.ndarray, keys: np.ndarray, bg_threshold: float) -> np.ndarray:
    """Label map from normalised CAMs with a constant background score.

    ``cam``: ``(K,H,W)``; ``keys``: ``(K,)`` class ids. Returns ``(H,W)`` uint8 with
    0 where no class exceeds ``bg_threshold``, else the argmax class id.
    """
    height, width = cam.shape[-2:]
    scores = np.concatenate([np.full((1, height, width), bg_threshold, dtype=np.float32), cam.astype(np.float32)])
    lookup = np.concatenate([[0], keys]).astype(np.uint8)
    return lookup[scores.argmax(axis=0)]


def with_background_power(cam: np.ndarray, alpha: float) -> np.ndarray:
    """PSA's background score ``(1 − max_c cam_c)^α`` stacked before the class maps: ``(K+1,H,W)``."""
    if cam.shape[0] == 0:
        return np.ones((1, *cam.shape[1:]), dtype=np.float32)
    background = np.power(1.0 - cam.max(axis=0, keepdims=True), alpha)
    return np.concatenate([background, cam]).astype(np.float32)


@dataclass
class CamJob:
    """What every image of a ``make_cam`` run shares (sent once to each worker process, :mod:`wsss.parallel`).

    The classifier is loaded from ``classifier_dir`` on first use, once per process. :func:`cam_image` writes
    ``out_dir/highres/<id>.npy`` and ``out_dir/stride<low_stride>/<id>.npy`` (float16, atomically).
    """

    classifier_dir: Path
    out_dir: Path
    scales: tuple[float, ...]
    flip: bool
    low_stride: int
    bg_threshold: float
    device: str = "cpu"
    _model: CAMClassifier | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}  # each worker loads its own copy

    def model(self) -> CAMClassifier:
        if self._model is None:
            self._model = load_classifier(self.classifier_dir, self.device)
        return self._model


def cam_image(job: CamJob, item: tuple[str, np.ndarray, np.ndarray]) -> tuple[str, np.ndarray, np.ndarray]:
    """One image of ``make_cam``: ``item = (id, image (H,W,3) uint8, image_labels (20,))`` →
    ``(id, keys (K,) int64, label map (H,W) uint8)`` (:func:`cam_to_label`); the CAMs go to files (:class:`CamJob`)."""
    from wsss.io import save_npy

    image_id, image, image_labels = item
    keys, cam_highres, cam_low = compute_cams(job.model(), image, image_labels, job.scales, job.flip, job.low_stride,
                                              job.device)
    save_npy(job.out_dir / "highres" / f"{image_id}.npy", cam_highres.astype(np.float16))
    save_npy(job.out_dir / f"stride{job.low_stride}" / f"{image_id}.npy", cam_low.astype(np.float16))
    return image_id, keys, cam_to_label(cam_highres, keys, job.bg_threshold)
