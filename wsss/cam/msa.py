"""MSA's CAM classifier (``CHENDL-SHEN/MSA``, seeds anatomy §1.10): a CAM classifier guided by superpixels.

Three parts on top of :class:`~wsss.cam.classifier.CAMClassifier`, each switchable (:class:`MSASettings`):

* **DCR** (:class:`DynamicReassembly`): after layer3 and after layer4, an SE-style channel gate and a
  content-adaptive 3×3 reassembly whose kernel is predicted from the stage's features and from the superpixel
  association (:class:`AssociationEncoder`). After layer3 the reassembled features feed layer4; after layer4
  the gated features give the classification logits (global average pooling) and the reassembled ones the CAM.
* **AP** (:class:`AffinityPropagation`): the class-score map is propagated β times over the thresholded cosine
  affinity of the layer3 features (after DCR), in training and at inference.
* **IPC** (:func:`ipc_loss`): the CAM must explain the superpixel-pooled image colours with one colour
  prototype per region (background and each class) inside each of P patches.

Shapes: ``image (B, 3, H, W)`` ImageNet-normalised, ``H`` and ``W`` multiples of ``cell`` (callers pad, with the
mean colour: 0 after normalisation, which IPC reads as padding); ``assoc (B, 9, H, W)`` the superpixel network's
softmax association of each pixel with the 3×3 grid cells around its own (channel order
:data:`kernels.superpixel.ASSOC_OFFSETS`); maps at the classifier's stride ``(B, ·, h, w)``, ``h = H/cell``.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

from kernels.superpixel import POOL_EPS, superpixel_pool, superpixel_upsample
from wsss.cam.classifier import CAMClassifier
from wsss.params import MSASettings

#: Width of the association features and of the stage embeddings that predict a reassembly kernel (MSA: 128).
GUIDE_CHANNELS = 128

#: every part on, MSA's hyper-parameters (the schema's default, :class:`wsss.params.MSASettings`, has every part off)
MSA_DEFAULTS = MSASettings(dcr=True, ap=True, ipc=True)

_LeakyConv = partial(Conv2dNormActivation, activation_layer=partial(nn.LeakyReLU, 0.1))


class AssociationEncoder(nn.Sequential):
    """The association ``(B, 9, H, W)`` → guide features ``(B, 128, H/cell, W/cell)``.

    Two strided 4×4 convolutions (stride 4, then ``cell/4``; BatchNorm, LeakyReLU 0.1) and a 3×3 one, as MSA's
    ``get_qfeats`` for its 16-pixel grid. ``H``, ``W`` must be multiples of ``cell``.
    """

    def __init__(self, cell: int = 16, hidden: int = 32) -> None:
        if cell not in (8, 16):
            raise ValueError(f"AssociationEncoder: cell must be 8 or 16, got {cell}")
        super().__init__(_LeakyConv(9, hidden, 4, 4, padding=1),
                         _LeakyConv(hidden, GUIDE_CHANNELS, 4, cell // 4, padding=1),
                         _LeakyConv(GUIDE_CHANNELS, GUIDE_CHANNELS, 3, norm_layer=None))


class ChannelGate(nn.Module):
    """Squeeze-and-excitation gate ``x · σ(W₂ ReLU(W₁ GAP(s)))`` (bias-free 1×1 convs, reduction 16, as MSA's ``ala``).

    ``forward(features (B, C, h, w), statistics=None) -> (B, C, h, w)``; the gate is computed from
    ``statistics`` (default: ``features``), so a caller can pass ``features.detach()``.
    (torchvision's ``SqueezeExcitation`` has biases and no separate statistics input.)
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.excite = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                    nn.Conv2d(hidden, channels, 1, bias=False), nn.Sigmoid())

    def forward(self, features: torch.Tensor, statistics: torch.Tensor | None = None) -> torch.Tensor:
        source = features if statistics is None else statistics
        return features * self.excite(F.adaptive_avg_pool2d(source, 1))


def reassemble(features: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Content-adaptive 3×3 reassembly ``out_p = Σ_t kernel[t, p] · features[p + ASSOC_OFFSETS[t]]`` (zero outside).

    ``features (B, C, h, w)``, ``kernel (B, 9, h, w)`` (e.g. a softmax) → ``(B, C, h, w)``: the superpixel
    upsampling with a 1-pixel cell (MSA's ``upfeat(x, kernel, 1, 1)``). A kernel that is 1 on channel 4 (the
    centre) is the identity.
    """
    return superpixel_upsample(features, kernel, 1)


class DynamicReassembly(nn.Module):
    """One DCR block (MSA's ``SP_CAM_Model3``): the channel gate and the reassembly kernel of one stage.

    ``forward(features (B, C, h, w), guide (B, 128, h, w)) -> (gated(features), kernel(features, guide))``:
    :meth:`gated` = :class:`ChannelGate` of the features (its statistics detached when ``detach_gate``, as MSA's
    layer4 gate); :meth:`kernel` = 9-way softmax of ``3×3 conv(256) → 1×1 conv(9)`` on
    ``[1×1 conv(features.detach()) → 128, guide]``. Apply the kernel with :func:`reassemble`.
    """

    def __init__(self, channels: int, detach_gate: bool = False, hidden: int = 256) -> None:
        super().__init__()
        self.detach_gate = detach_gate
        self.gate = ChannelGate(channels)
        self.embed = _LeakyConv(channels, GUIDE_CHANNELS, 1)
        self.kernel_head = nn.Sequential(_LeakyConv(2 * GUIDE_CHANNELS, hidden, 3, norm_layer=None),
                                         nn.Conv2d(hidden, 9, 1), nn.Softmax(dim=1))

    def gated(self, features: torch.Tensor) -> torch.Tensor:
        """The features ``(B, C, h, w)`` times their channel gate."""
        return self.gate(features, features.detach() if self.detach_gate else None)

    def kernel(self, features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """The reassembly kernel ``(B, 9, h, w)``, summing to 1 over the 9 neighbours; no gradient to ``features``."""
        return self.kernel_head(torch.cat([self.embed(features.detach()), guide], dim=1))

    def forward(self, features: torch.Tensor, guide: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gated(features), self.kernel(features, guide)


class AffinityPropagation(nn.Module):
    """MSA's AP module: class scores propagated over the feature affinity.

    ``affinity(features (B, C, h, w)) -> (B, N, N)``, ``N = h·w``: ``A = clamp(F̂ᵀF̂, 0.01, 0.999)`` with ``F̂`` the
    features L2-normalised over channels, entries below ``threshold`` set to 0, each column divided by its sum
    (the diagonal, 0.999, keeps a column non-empty for ``threshold`` ≤ 0.999 unless the pixel's features are all
    0; such a column stays 0, where MSA would divide by 0).
    ``propagate(scores (B, K, h, w), affinity) -> (B, K, h, w)``: ``S ← S·A`` repeated ``iterations`` times
    (``S`` as ``(B, K, N)``). ``forward(scores, features)`` = ``propagate(scores, affinity(features))``.
    """

    def __init__(self, threshold: float = 0.6, iterations: int = 8) -> None:
        super().__init__()
        self.threshold = threshold
        self.iterations = iterations

    def affinity(self, features: torch.Tensor) -> torch.Tensor:
        flat = F.normalize(features.flatten(2), dim=1)
        affinity = torch.bmm(flat.transpose(1, 2), flat).clamp(0.01, 0.999)
        affinity = torch.where(affinity < self.threshold, torch.zeros_like(affinity), affinity)
        return affinity / affinity.sum(dim=1, keepdim=True).clamp_min(torch.finfo(affinity.dtype).tiny)

    def propagate(self, scores: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
        flat = scores.flatten(2)
        for _ in range(self.iterations):
            flat = torch.bmm(flat, affinity)
        return flat.view_as(scores)

    def forward(self, scores: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.propagate(scores, self.affinity(features))


def _patch_index(height: int, width: int, tiles: int, device: torch.device) -> torch.Tensor:
    """``(h·w,)`` patch of each position of an ``h × w`` map tiled ``tiles × tiles`` (bands of ±1 row or column)."""
    rows = torch.arange(height, device=device) * tiles // height
    cols = torch.arange(width, device=device) * tiles // width
    return (rows[:, None] * tiles + cols[None, :]).flatten()


def ipc_loss(cam_fg: torch.Tensor, image: torch.Tensor, assoc: torch.Tensor, settings: MSASettings,
             valid: torch.Tensor | None = None) -> torch.Tensor:
    """MSA's IPC loss (``SP_CAM_Loss2`` on ``tile_features``), a scalar.

    Args:
        cam_fg: ``(B, K, h, w)`` foreground CAMs in [0, 1] (absent classes 0), ``h = H/cell``; gets the gradient.
        image: ``(B, 3, H, W)`` colours to explain (MSA: the normalised network input); no gradient.
        assoc: ``(B, 9, H, W)`` superpixel association; no gradient.
        valid: ``(B, 1, H, W)`` bool, the image pixels (not padding); default ``image.sum(1) != 0`` (the mean
            colour pads normalised images). A cell counts if its top-left pixel is valid (MSA's nearest resize).

    With ``P = [1 − max_k cam_fg, cam_fg]`` (``1+K`` regions) and ``f`` the superpixel-pooled ``image``
    L2-normalised over channels, both tiled into ``settings.ipc_patches`` patches: per patch and region the
    prototype ``μ_c = Σ P_c f / (Σ P_c + ε)``, the reconstruction ``f̂ = Σ_c P_c μ_c``, and the loss
    ``Σ ‖f̂ − f‖² / (#cells + 0.001)`` over the valid cells of the patches whose max foreground and max background
    (over valid cells) both exceed ``settings.ipc_ignore``; the others contribute nothing (no patch: 0).
    It is 0 when ``P`` is one-hot and ``f`` is constant within each region of each patch.
    """
    tiles = math.isqrt(settings.ipc_patches)
    if tiles * tiles != settings.ipc_patches:
        raise ValueError(f"ipc_loss: ipc_patches must be a square number, got {settings.ipc_patches}")
    batch, _, height, width = cam_fg.shape
    cell = settings.cell
    if tuple(image.shape[2:]) != (height * cell, width * cell):
        raise ValueError(f"ipc_loss: image {tuple(image.shape)} is not cam_fg {tuple(cam_fg.shape)} at cell {cell}")
    with torch.no_grad():
        target = F.normalize(superpixel_pool(image, assoc, cell), dim=1).flatten(2)  # (B, 3, N)
        if valid is None:
            valid = image.sum(dim=1, keepdim=True) != 0
        valid_cells = valid[:, :, ::cell, ::cell].flatten(2).to(cam_fg.dtype)  # (B, 1, N)
    background = 1 - cam_fg.amax(dim=1, keepdim=True)
    probs = torch.cat([background, cam_fg], dim=1).flatten(2)  # (B, 1+K, N)
    membership = F.one_hot(_patch_index(height, width, tiles, cam_fg.device), tiles * tiles).to(cam_fg.dtype)  # (N, P)
    with torch.no_grad():  # which patches hold both a confident foreground and a confident background
        peaks = [(region * valid_cells).transpose(1, 2).mul(membership).amax(dim=1)  # (B, P)
                 for region in (1 - background.flatten(2), background.flatten(2))]
        kept = (peaks[0] > settings.ipc_ignore) & (peaks[1] > settings.ipc_ignore)
        weight = valid_cells[:, 0] * (kept.to(cam_fg.dtype) @ membership.T)  # (B, N)
    weighted = probs * weight[:, None]
    mass = torch.einsum("bcn,np->bpc", weighted, membership)
    prototypes = torch.einsum("bcn,bdn,np->bpcd", weighted, target, membership) / (mass[..., None] + POOL_EPS)
    per_cell = torch.einsum("np,bpcd->bncd", membership, prototypes)  # (B, N, 1+K, 3)
    reconstruction = torch.einsum("bcn,bncd->bdn", probs, per_cell)
    error = ((reconstruction - target) ** 2).sum(dim=1)
    return (error * weight).sum() / (weight.sum() + 1e-3)


def normalised_cams(scores: torch.Tensor, image_labels: torch.Tensor) -> torch.Tensor:
    """MSA's ``make_cam`` × labels: ``ReLU(scores)`` divided by its spatial max (+1e-5) per class, 0 on absent classes.

    ``scores (B, K, h, w)``, ``image_labels (B, K)`` multi-hot → ``(B, K, h, w)`` in [0, 1].
    """
    cams = F.relu(scores)
    cams = cams / (cams.amax(dim=(2, 3), keepdim=True) + 1e-5)
    return cams * image_labels[:, :, None, None].to(cams.dtype)


class MSAClassifier(CAMClassifier):
    """:class:`CAMClassifier` with MSA's DCR, AP and IPC (module docstring); the same ``trunk`` and ``classifier``.

    New modules exist only for the parts that are on, so with every part off the state dict and the outputs are
    :class:`CAMClassifier`'s. DCR and AP need ``output_stride`` 8 or 16 (layer3 and layer4 at the same
    resolution); DCR and IPC need ``settings.cell == output_stride``.

    * ``forward(image, assoc=None) -> logits (B, num_classes)``: GAP of the (gated) layer4 features → classifier.
    * ``cam(image, assoc=None) -> (B, num_classes, H/s, W/s)``: ReLU of the class-score map after DCR and AP.
    * ``loss(image, image_labels, assoc=None, image_rgb01=None) -> (total, {"cls", "ipc", "logits"})``.

    ``assoc (B, 9, H, W)`` is required when DCR is on (and by ``loss`` when IPC is on); ``H``, ``W`` multiples of
    ``settings.cell``.
    """

    def __init__(self, arch: str, output_stride: int, num_classes: int = 20, pretrained: str = "", width: int = 64,
                 settings: MSASettings = MSA_DEFAULTS) -> None:
        super().__init__(arch, output_stride, num_classes, pretrained, width)
        if (settings.dcr or settings.ap) and output_stride not in (8, 16):
            raise ValueError(f"MSAClassifier: DCR and AP need output_stride 8 or 16, got {output_stride}")
        if (settings.dcr or settings.ipc) and settings.cell != output_stride:
            raise ValueError(f"MSAClassifier: settings.cell ({settings.cell}) must equal output_stride ({output_stride})")
        self.settings = settings
        channels = self.trunk.channels
        if settings.dcr:
            self.guide = AssociationEncoder(settings.cell)
            self.dcr3 = DynamicReassembly(channels[2])
            self.dcr4 = DynamicReassembly(channels[3], detach_gate=True)
        if settings.ap:
            self.propagation = AffinityPropagation(settings.ap_threshold, settings.ap_iterations)

    def _check_inputs(self, image: torch.Tensor, assoc: torch.Tensor | None, parts_using_assoc: dict[str, bool]) -> None:
        """ValueError unless ``assoc`` is given for the parts that are on and use it, and fits ``image``."""
        cell = self.settings.cell
        using = [name for name, on in parts_using_assoc.items() if on]
        if using and assoc is None:
            raise ValueError(f"MSAClassifier: assoc (B, 9, H, W) is required with {' and '.join(using)} on")
        if assoc is not None and (assoc.shape[0] != image.shape[0] or assoc.shape[2:] != image.shape[2:]):
            raise ValueError(f"MSAClassifier: assoc {tuple(assoc.shape)} does not match image {tuple(image.shape)}")
        if using and (image.shape[2] % cell or image.shape[3] % cell):
            raise ValueError(f"MSAClassifier: image size {tuple(image.shape[2:])} is not a multiple of {cell} (pad it)")

    def _stages(self, image: torch.Tensor, assoc: torch.Tensor | None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(layer3 features after DCR, layer4 features, guide (B, 128, h, w) or None without DCR)``."""
        if not self.settings.dcr:
            features = self.trunk(image)
            return features[2], features[3], None
        guide = self.guide(assoc)

        def after_layer3(index: int, features: torch.Tensor) -> torch.Tensor:
            return reassemble(*self.dcr3(features, guide)) if index == 2 else features

        features = self.trunk(image, after_layer3)
        return features[2], features[3], guide

    def _pooled_logits(self, layer4: torch.Tensor) -> torch.Tensor:
        """``(B, K)``: the classifier on the global average of the (gated) layer4 features, as CAMClassifier."""
        return self.classifier(F.adaptive_avg_pool2d(layer4, 1)).flatten(1)

    def _logits_and_scores(self, image: torch.Tensor, assoc: torch.Tensor | None,
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, K), class-score map (B, K, h, w) after DCR and AP)`` from one trunk pass."""
        layer3, layer4, guide = self._stages(image, assoc)
        if guide is None:
            scores = self.classifier(layer4)
        else:  # the classifier is a 1×1 map, so reassembling its scores = scoring the reassembled features
            layer4, kernel = self.dcr4(layer4, guide)
            scores = reassemble(self.classifier(layer4), kernel)
        if self.settings.ap:
            scores = self.propagation(scores, layer3)
        return self._pooled_logits(layer4), scores

    def forward(self, image: torch.Tensor, assoc: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(image, assoc, {"dcr": self.settings.dcr})
        _, layer4, _ = self._stages(image, assoc)
        return self._pooled_logits(self.dcr4.gated(layer4) if self.settings.dcr else layer4)

    def cam(self, image: torch.Tensor, assoc: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(image, assoc, {"dcr": self.settings.dcr})
        return F.relu(self._logits_and_scores(image, assoc)[1])

    def loss(self, image: torch.Tensor, image_labels: torch.Tensor, assoc: torch.Tensor | None = None,
             image_rgb01: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(cls + ipc_weight · ipc, {"cls": cls, "ipc": ipc, "logits": logits (B, K) detached})`` (``ipc``
        unweighted, 0 when IPC is off).

        ``cls``: multi-label soft margin of the logits against ``image_labels (B, K)`` multi-hot; ``ipc``:
        :func:`ipc_loss` of :func:`normalised_cams` of the score map. Its colours are ``image`` (as MSA), or
        ``image_rgb01 (B, 3, H, W)`` when given; padding is read from ``image`` either way.
        """
        self._check_inputs(image, assoc, {"dcr": self.settings.dcr, "ipc": self.settings.ipc})
        labels = image_labels.to(image.dtype)
        if not self.settings.ipc:
            logits = self(image, assoc)
            ipc = logits.new_zeros(())
        else:
            logits, scores = self._logits_and_scores(image, assoc)
            colours = image if image_rgb01 is None else image_rgb01
            ipc = ipc_loss(normalised_cams(scores, labels), colours, assoc, self.settings,
                           valid=image.sum(dim=1, keepdim=True) != 0)
        cls = F.multilabel_soft_margin_loss(logits, labels)
        return cls + self.settings.ipc_weight * ipc, {"cls": cls, "ipc": ipc, "logits": logits.detach()}

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(trunk parameters, the classifier's and MSA's new modules' parameters)."""
        trunk = {id(p) for p in self.trunk.parameters()}
        return list(self.trunk.parameters()), [p for p in self.parameters() if id(p) not in trunk]
