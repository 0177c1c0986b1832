"""AffinityNet inference: pair affinities of one image, and the trained net of a ``train_affinity`` folder."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsss.affinity.model import AffinityNet
from wsss.data.transforms import normalize


@torch.no_grad()
def affinity_features(model: AffinityNet, image: np.ndarray, device: torch.device | str = "cpu",
                      flip: bool = True) -> torch.Tensor:
    """AffinityNet features ``(1, F, ceil(H/s), ceil(W/s))`` of one ``(H,W,3)`` uint8 image (averaged with the h-flip)."""
    tensor = torch.from_numpy(normalize(image))[None].to(device)
    stride = model.stride
    pad_h, pad_w = (-tensor.shape[-2]) % stride, (-tensor.shape[-1]) % stride
    if pad_h or pad_w:  # so that the flipped grid of cells lines up with the original one
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate")
    features = model(tensor)
    if flip:
        features = 0.5 * (features + model(tensor.flip(-1)).flip(-1))
    return features


@torch.no_grad()
def infer_affinity(model: AffinityNet, image: np.ndarray, radius: int, device: torch.device | str = "cpu",
                   flip: bool = True) -> torch.Tensor:
    """Affinities ``(1, D, ceil(H/s), ceil(W/s))`` of one ``(H,W,3)`` uint8 image (features averaged with the h-flip)."""
    from kernels import pair_affinity_from_features

    return pair_affinity_from_features(affinity_features(model, image, device, flip), radius)


def load_affinity_net(affinity_dir, device: torch.device | str = "cpu") -> tuple[AffinityNet, int]:
    """The trained AffinityNet of a ``train_affinity`` output folder (eval mode) and its pair radius."""
    from pathlib import Path

    from wsss.errors import WsssError

    path = Path(affinity_dir) / "model.pt"
    if not path.is_file():
        raise WsssError(f"{path}: AffinityNet not found (run train_affinity first)")
    from wsss.io import load_torch

    checkpoint = load_torch(path, "AffinityNet", ("config", "backbone", "state_dict"))
    model_cfg, backbone = checkpoint["config"]["model"], checkpoint["backbone"]
    model = AffinityNet(backbone["arch"], backbone["output_stride"], model_cfg["feature_dim"], model_cfg["stride"],
                        width=backbone["width"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval().to(device), int(model_cfg["radius"])
