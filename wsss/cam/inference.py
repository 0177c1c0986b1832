"""Class activation maps: the trained classifier, multi-scale + flip inference, normalisation, CAM → label map."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.classifier import CAMClassifier, build_classifier
from wsss.params import MSASettings
from wsss.data.transforms import normalize

if TYPE_CHECKING:
    from wsss.superpixel.model import SpixelNet


def load_classifier(classifier_dir, device: torch.device | str = "cpu") -> CAMClassifier:
    """The trained classifier of a ``train_classifier`` output folder, in eval mode: a :class:`CAMClassifier`, or
    an :class:`wsss.cam.msa.MSAClassifier` when it was trained with MSA's parts (its config's ``msa``)."""
    from wsss.errors import WsssError
    from wsss.io import load_torch

    path = Path(classifier_dir) / "model.pt"
    if not path.is_file():
        raise WsssError(f"{path}: classifier not found (run train_classifier first)")
    checkpoint = load_torch(path, "classifier", ("config", "state_dict"))
    backbone = checkpoint["config"]["backbone"]
    model = build_classifier(backbone["arch"], backbone["output_stride"], "", backbone.get("width", 64),
                             MSASettings(**checkpoint["config"].get("msa", {})))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval().to(device)


def needs_assoc(model: CAMClassifier) -> bool:
    """Whether the classifier's CAMs read the superpixel association (MSA's DCR)."""
    settings = getattr(model, "settings", None)
    return bool(settings is not None and settings.dcr)


def classifier_cam(model: CAMClassifier, image: torch.Tensor, assoc: torch.Tensor | None) -> torch.Tensor:
    """``model.cam`` of ``image (B,3,H,W)``, with the association ``assoc (B,9,H,W)`` for a classifier that reads it."""
    return model.cam(image, assoc) if needs_assoc(model) else model.cam(image)


def stride_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Size of a map at ``stride`` covering an ``H×W`` image: ``(ceil(H/s), ceil(W/s))``."""
    return math.ceil(height / stride), math.ceil(width / stride)


#: ``make_cam``'s ``upsample``: how the stride-16 CAMs reach the image's resolution
UPSAMPLING = ("bilinear", "superpixel")


@torch.no_grad()
def compute_cams(
    model: CAMClassifier,
    image: np.ndarray,
    image_labels: np.ndarray,
    scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
    flip: bool = True,
    low_stride: int = 4,
    device: torch.device | str = "cpu",
    superpixel_net: SpixelNet | None = None,
    upsample: str = "bilinear",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CAMs of the classes present in ``image_labels``.

    ``image``: ``(H,W,3)`` uint8 RGB; ``image_labels``: ``(20,)`` multi-hot.
    For every scale (and its horizontal flip) the ReLU CAM is upsampled
    bilinearly to the image size and to the stride-``low_stride`` size and summed;
    each class map is then divided by its maximum (+1e-5).

    ``upsample="superpixel"`` (MSA): each scale's CAM first reaches the scaled image's resolution through the
    association of the superpixel network (:func:`compute_cam_upsamplings`).

    Returns ``keys (K,) int64`` (class ids 1..20), ``cam_highres (K,H,W) float32``
    in [0, 1], ``cam_low (K, ceil(H/s), ceil(W/s)) float32`` in [0, 1].
    """
    keys, maps = compute_cam_upsamplings(model, image, image_labels, scales, flip, low_stride, device, superpixel_net,
                                         (upsample,))
    return (keys, *maps[upsample])


@torch.no_grad()
def compute_cam_upsamplings(
    model: CAMClassifier,
    image: np.ndarray,
    image_labels: np.ndarray,
    scales: Sequence[float],
    flip: bool,
    low_stride: int,
    device: torch.device | str,
    superpixel_net: SpixelNet | None,
    upsamplings: Sequence[str],
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """:func:`compute_cams` of the same network outputs under several upsamplings (:data:`UPSAMPLING`) at once.

    With ``superpixel_net`` (needed by ``superpixel`` and by a classifier with MSA's DCR), each scaled image is
    padded to a multiple of the net's cell (:func:`wsss.superpixel.model.image_assoc`) and its association ``Q``
    computed once; ``bilinear`` then resizes the stride-cell CAM over the padded image and cuts it at the image's
    edge, ``superpixel`` brings it to the scaled image's resolution through ``Q``
    (:func:`kernels.superpixel.superpixel_upsample`); both are then resized bilinearly to the image and to the
    stride ``low_stride`` and summed over scales and flips as :func:`compute_cams` says.

    Returns ``keys (K,)`` and ``{upsampling: (cam_highres (K,H,W), cam_low (K,ceil(H/s),ceil(W/s)))}`` float32.
    """
    height, width = image.shape[:2]
    keys = np.flatnonzero(np.asarray(image_labels) > 0.5) + 1
    low_size = stride_size(height, width, low_stride)
    unknown = [mode for mode in upsamplings if mode not in UPSAMPLING]
    if unknown or not upsamplings:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {list(upsamplings)!r}")
    if superpixel_net is None and ("superpixel" in upsamplings or needs_assoc(model)):
        raise ValueError("superpixel upsampling and MSA's DCR need the superpixel network (superpixel_net)")
    if keys.size == 0:
        empty = (np.zeros((0, height, width), np.float32), np.zeros((0, *low_size), np.float32))
        return keys.astype(np.int64), {mode: empty for mode in upsamplings}
    tensor = torch.from_numpy(normalize(image))[None].to(device)
    highres = {mode: torch.zeros((keys.size, height, width), device=device) for mode in upsamplings}
    low = {mode: torch.zeros((keys.size, *low_size), device=device) for mode in upsamplings}
    index = torch.as_tensor(keys - 1, device=device)
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False) if scale != 1.0 else tensor
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        if superpixel_net is None:
            per_mode = {"bilinear": model.cam(batch)[:, index]}
        else:
            per_mode = _cams_on_superpixels(model, superpixel_net, batch, index, upsamplings)
        for mode in upsamplings:
            cams = per_mode[mode]
            if flip:
                cams = cams[:1] + cams[1:].flip(-1)
            highres[mode] += F.interpolate(cams, size=(height, width), mode="bilinear", align_corners=False)[0]
            low[mode] += F.interpolate(cams, size=low_size, mode="bilinear", align_corners=False)[0]
    maps = {}
    for mode in upsamplings:
        high_mode = highres[mode] / (highres[mode].flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-5)
        low_mode = low[mode] / (low[mode].flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-5)
        maps[mode] = (high_mode.cpu().numpy(), low_mode.cpu().numpy())
    return keys.astype(np.int64), maps


def _cams_on_superpixels(model: CAMClassifier, superpixel_net: SpixelNet, batch: torch.Tensor, index: torch.Tensor,
                         upsamplings: Sequence[str]) -> dict[str, torch.Tensor]:
    """CAMs (channels ``index``) of ``batch (B,3,h,w)`` padded to the superpixel net's cell, each
    ``(B,K,h,w)``: ``bilinear`` over the padded image, ``superpixel`` through its association; cut at the image."""
    from kernels.superpixel import superpixel_upsample
    from wsss.superpixel.model import image_assoc

    height, width = batch.shape[-2:]
    assoc = image_assoc(superpixel_net, batch)  # (B,9,Hp,Wp): the grid lies on the padded image
    padded = F.pad(batch, (0, assoc.shape[-1] - width, 0, assoc.shape[-2] - height), mode="replicate")
    cams = classifier_cam(model, padded, assoc)[:, index].float().contiguous()
    per_mode = {}
    for mode in upsamplings:
        if mode == "superpixel":
            full = superpixel_upsample(cams, assoc.float().contiguous(), superpixel_net.cell)
        else:
            full = F.interpolate(cams, size=assoc.shape[-2:], mode="bilinear", align_corners=False)
        per_mode[mode] = full[..., :height, :width]
    return per_mode


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
    #: how the CAMs reach full resolution (:data:`UPSAMPLING`)
    upsample: str = "bilinear"
    #: the ``train_superpixel`` folder, read when ``upsample`` is ``superpixel`` or the classifier has MSA's DCR
    superpixel_dir: Path | None = None
    _model: CAMClassifier | None = field(default=None, init=False, repr=False, compare=False)
    _superpixel_net: SpixelNet | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None, "_superpixel_net": None}  # each worker loads its own copy

    def model(self) -> CAMClassifier:
        if self._model is None:
            self._model = load_classifier(self.classifier_dir, self.device)
        return self._model

    def superpixel_net(self) -> SpixelNet | None:
        """The superpixel network where the upsampling or the classifier needs it, else None."""
        if self._superpixel_net is None and (self.upsample == "superpixel" or needs_assoc(self.model())):
            from wsss.errors import WsssError
            from wsss.superpixel.model import load_superpixel_net

            if self.superpixel_dir is None:
                raise WsssError("superpixel_dir: superpixel upsampling and MSA's DCR need the superpixel network")
            self._superpixel_net = load_superpixel_net(self.superpixel_dir, self.device)
        return self._superpixel_net


def cam_image(job: CamJob, item: tuple[str, np.ndarray, np.ndarray]
              ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
    """One image of ``make_cam``: ``item = (id, image (H,W,3) uint8, image_labels (20,))`` →
    ``(id, keys (K,) int64, label map (H,W) uint8, bilinear label map or None)`` (:func:`cam_to_label`); the CAMs go
    to files (:class:`CamJob`). Under superpixel upsampling the same network outputs are also upsampled bilinearly,
    for the label map of the comparison (the 4th value); otherwise it is None."""
    from wsss.io import save_npy

    image_id, image, image_labels = item
    upsamplings = (job.upsample, "bilinear") if job.upsample != "bilinear" else ("bilinear",)
    keys, maps = compute_cam_upsamplings(job.model(), image, image_labels, job.scales, job.flip, job.low_stride,
                                         job.device, job.superpixel_net(), upsamplings)
    cam_highres, cam_low = maps[job.upsample]
    save_npy(job.out_dir / "highres" / f"{image_id}.npy", cam_highres.astype(np.float16))
    save_npy(job.out_dir / f"stride{job.low_stride}" / f"{image_id}.npy", cam_low.astype(np.float16))
    bilinear = cam_to_label(maps["bilinear"][0], keys, job.bg_threshold) if job.upsample != "bilinear" else None
    return image_id, keys, cam_to_label(cam_highres, keys, job.bg_threshold), bilinear
