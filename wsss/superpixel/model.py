"""MSA's superpixel network (SCN, SEEDS_ANATOMY §1.10): SpixelFCN's ``SpixelNet1l_bn``.

A U-Net (encoder 16-32-64-128-256 channels, each ×``width``, four stride-2 stages; decoder of transposed
convolutions and skip concatenations back to full resolution; conv + BN + LeakyReLU 0.1) whose last layer gives
9 logits per pixel. ``assoc = softmax`` over them is the association of every pixel with the 3×3 neighbouring
cells of a regular grid of ``cell``-px cells, channel order :data:`kernels.superpixel.ASSOC_OFFSETS` — the ``Q``
that :func:`kernels.superpixel.superpixel_pool` / ``superpixel_upsample`` take. Neighbour cells outside the grid
get logit −∞, hence association exactly 0, so every pixel's row sums to 1 over the cells that exist.

* :class:`SpixelNet` ``(normalised image (B, 3, H, W), H, W multiples of cell) → assoc (B, 9, H, W)``;
* :func:`image_assoc` for an image of any size (padded bottom/right to the cell; the grid lives on the padded
  image);
* :func:`load_superpixel_net` reads the ``train_superpixel`` stage's ``model.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kernels.superpixel import ASSOC_OFFSETS

#: encoder channels of SpixelFCN at ``width = 1``
BASE_CHANNELS = (16, 32, 64, 128, 256)
#: the encoder's total downsampling (four stride-2 stages): the network runs on sides that are multiples of it
NET_STRIDE = 16
#: file name of the trained network in the stage folder
MODEL_FILE = "model.pt"


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.LeakyReLU(0.1))


def _deconv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1), nn.LeakyReLU(0.1))


def out_of_grid(height: int, width: int, cell: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(9, height, width)`` bool: True where channel ``t``'s neighbour cell of the pixel lies outside the grid of
    ``height/cell × width/cell`` cells (``height``, ``width`` multiples of ``cell``)."""
    rows = torch.arange(height, device=device) // cell
    cols = torch.arange(width, device=device) // cell
    grid_h, grid_w = height // cell, width // cell
    planes = []
    for dy, dx in ASSOC_OFFSETS:
        row_out = (rows + dy < 0) | (rows + dy >= grid_h)
        col_out = (cols + dx < 0) | (cols + dx >= grid_w)
        planes.append(row_out[:, None] | col_out[None, :])
    return torch.stack(planes)


class SpixelNet(nn.Module):
    """SpixelFCN's single-layer superpixel network (module docstring).

    ``width`` scales every channel count; ``cell``: side (px) of the grid's cells.
    """

    def __init__(self, cell: int = 16, width: float = 1.0) -> None:
        super().__init__()
        if cell < 1:
            raise ValueError(f"SpixelNet: cell must be >= 1, got {cell}")
        self.cell, self.width = int(cell), float(width)
        c0, c1, c2, c3, c4 = (max(1, round(c * width)) for c in BASE_CHANNELS)
        self.encoder = nn.ModuleList([
            nn.Sequential(_conv(3, c0), _conv(c0, c0)),
            nn.Sequential(_conv(c0, c1, 2), _conv(c1, c1)),
            nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2)),
            nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3)),
            nn.Sequential(_conv(c3, c4, 2), _conv(c4, c4)),
        ])
        # decoder, deepest first: upsample, concatenate the encoder's skip, fuse
        self.up = nn.ModuleList([_deconv(c4, c3), _deconv(c3, c2), _deconv(c2, c1), _deconv(c1, c0)])
        self.fuse = nn.ModuleList([_conv(2 * c3, c3), _conv(2 * c2, c2), _conv(2 * c1, c1), _conv(2 * c0, c0)])
        self.head = nn.Conv2d(c0, len(ASSOC_OFFSETS), 3, padding=1)

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder and decoder parameters, the 9-logit head's) for :func:`wsss.training.train_epochs`."""
        head = list(self.head.parameters())
        ids = {id(p) for p in head}
        return [p for p in self.parameters() if id(p) not in ids], head

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 9, H, W)`` unmasked logits of a ``(B, 3, H, W)`` image, ``H``, ``W`` multiples of :data:`NET_STRIDE`."""
        skips = []
        x = image
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1])):
            x = fuse(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``assoc (B, 9, H, W)`` float32 of a normalised image ``(B, 3, H, W)`` (:func:`wsss.data.transforms.normalize`),
        ``H``, ``W`` multiples of ``cell``. Sides that are no multiple of :data:`NET_STRIDE` run replicate-padded
        and are cropped back; out-of-grid neighbours get 0."""
        height, width = image.shape[-2:]
        if height % self.cell or width % self.cell:
            raise ValueError(f"SpixelNet: image size {height}x{width} is not a multiple of the cell {self.cell} "
                             f"(pad it: image_assoc)")
        pad_h, pad_w = (-height) % NET_STRIDE, (-width) % NET_STRIDE
        padded = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
        logits = self.logits(padded)[..., :height, :width].float()
        logits = logits.masked_fill(out_of_grid(height, width, self.cell, logits.device), float("-inf"))
        return torch.softmax(logits, dim=1)


def pad_to_cell(image: torch.Tensor, cell: int) -> torch.Tensor:
    """``(B, C, H, W)`` replicate-padded at the bottom and right to ``(B, C, Hp, Wp)``, the next multiples of ``cell``."""
    pad_h, pad_w = (-image.shape[-2]) % cell, (-image.shape[-1]) % cell
    return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image


@torch.no_grad()
def image_assoc(model: SpixelNet, image: torch.Tensor) -> torch.Tensor:
    """``assoc (B, 9, Hp, Wp)`` of a normalised image ``(B, 3, H, W)`` of any size (no gradient).

    The image is replicate-padded at the bottom/right to ``Hp``, ``Wp``, the next multiples of ``model.cell``; the
    grid of ``Hp/cell × Wp/cell`` cells is defined on the padded image (crop ``[..., :H, :W]`` for the image's
    pixels). Runs on the model's device and mode (:func:`load_superpixel_net` gives it in eval mode).
    """
    device = next(model.parameters()).device
    return model(pad_to_cell(image.to(device), model.cell))


def load_superpixel_net(folder: str | Path, device: torch.device | str = "cpu") -> SpixelNet:
    """The network of a ``train_superpixel`` folder (its ``model.pt``), in eval mode on ``device``.

    A missing, truncated or foreign file is a one-line :class:`wsss.errors.WsssError` naming it.
    """
    from wsss.errors import WsssError
    from wsss.io import load_torch

    path = Path(folder) / MODEL_FILE
    state = load_torch(path, "superpixel network", required=("state_dict", "cell", "width"))
    model = SpixelNet(int(state["cell"]), float(state["width"]))
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise WsssError(f"{path}: superpixel network weights do not fit SpixelNet(cell={state['cell']}, "
                        f"width={state['width']}) ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
