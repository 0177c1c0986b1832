"""Mask losses from boxes alone: APro's box projection, global and local propagation losses (SEEDS_ANATOMY §1.11).

APro trains an instance network with no mask targets: its own mask predictions, propagated on the image's
minimum spanning tree (global, two passes) and in local windows (local), give soft pseudo-labels it is
trained towards inside the box, plus a projection loss that ties the mask's extent to the box's. Here the
network is Mask R-CNN: every positive RoI's ``M×M`` mask prediction (the matched box's class) is the mask,
and the image crop of the same RoI grid is the guide, so all three losses live in the RoI frame.

* guide: the network's input image, Gaussian-blurred (``guide_blur``), sampled on the RoI grid;
* box mask ``b`` (:func:`roi_box_masks`): the RoI grid cells whose centre lies inside the matched ground-truth
  box (the filled box as Mask R-CNN's own mask target would sample it);
* projection (:func:`box_projection_loss`): dice between the x (and y) max-projections of the mask and of ``b``;
* global (:func:`propagation_targets`): ``s1 = GP(m, guide, ζ 0.03)``, ``s2 = GP(s1, s1, ζ 0.07)`` on the guide's
  MST (``kernels.grid_mst``, ``kernels.minimax_propagation``), loss ``Σ|s2 − m|·b / Σb``;
* local: ``kernels.local_propagation`` (k 5, ζ 0.15, 20 iterations) from ``m⊙b``, loss ``Σ|m − lp|·b / Σb``.

The pseudo-labels ``s2`` and ``lp`` are computed from the detached predictions (no gradient through the
propagation, as in APro) and batched over every RoI of the batch in one kernel call each (APro recomputes them
per instance). The kernels run on the tensors' device (CPU or CUDA).
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import box_iou, roi_align
from torchvision.transforms.functional import gaussian_blur

from kernels import grid_mst, local_propagation, minimax_propagation
from wsss.params import BoxMaskLossSettings

#: the loss names :class:`AProMaskLoss` returns (Mask R-CNN's loss dict keys)
LOSS_NAMES = ("loss_projection", "loss_global", "loss_local")




def roi_box_masks(proposals: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Which cells of each RoI's ``size×size`` grid have their centre inside its box.

    Args:
        proposals: ``(R, 4)`` RoIs, xyxy in pixels (the grid RoIAlign samples, ``aligned=False``: cell ``j``
            centred at ``x0 + (j + 0.5)·(x1 − x0)/size``, the RoI at least 1 px wide).
        boxes: ``(R, 4)`` the matched boxes, xyxy with exclusive ends (a box covers ``x0 ≤ x < x1``).

    Returns ``(R, size, size)`` float (1 inside, 0 outside).
    """
    steps = (torch.arange(size, device=proposals.device, dtype=proposals.dtype) + 0.5) / size
    width = (proposals[:, 2] - proposals[:, 0]).clamp(min=1.0)
    height = (proposals[:, 3] - proposals[:, 1]).clamp(min=1.0)
    xs = proposals[:, :1] + steps[None] * width[:, None]
    ys = proposals[:, 1:2] + steps[None] * height[:, None]
    inside_x = (xs >= boxes[:, :1]) & (xs < boxes[:, 2:3])
    inside_y = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :]).to(proposals.dtype)


def _dice_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``1 − 2Σpt / (Σp² + Σt²)`` over the last dimension. ``(R, L)`` → ``(R,)``."""
    intersection = (prediction * target).sum(-1)
    union = (prediction * prediction).sum(-1) + (target * target).sum(-1)
    return 1.0 - 2.0 * intersection / union.clamp(min=eps)


def box_projection_loss(mask_probs: torch.Tensor, box_masks: torch.Tensor) -> torch.Tensor:
    """Dice of the x-projection (max over rows) plus dice of the y-projection (max over columns).

    ``mask_probs``, ``box_masks``: ``(R, H, W)``. Returns ``(R,)``: 0 where the mask exactly fills its box.
    """
    loss_x = _dice_loss(mask_probs.amax(dim=1), box_masks.amax(dim=1))
    loss_y = _dice_loss(mask_probs.amax(dim=2), box_masks.amax(dim=2))
    return loss_x + loss_y


@torch.no_grad()
def propagation_targets(mask_probs: torch.Tensor, guide: torch.Tensor, box_masks: torch.Tensor,
                        settings: BoxMaskLossSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """APro's soft pseudo-labels of the masks: global (two GP passes on the guide's MST) and local (LP in the box).

    Args:
        mask_probs: ``(R, H, W)`` mask probabilities (detached here).
        guide: ``(R, C, H, W)`` the image under each mask (ImageNet-normalised RGB).
        box_masks: ``(R, H, W)`` 0/1.

    Returns ``(global_target, local_target)``, each ``(R, H, W)`` in ``mask_probs``' dtype, no gradient.
    """
    masks = mask_probs.detach()[:, None].float()
    guide = guide.detach().float().contiguous()
    tree = grid_mst(guide)
    first = minimax_propagation(masks, tree, guide, settings.zeta_image)
    second = minimax_propagation(first, tree, first, settings.zeta_mask)
    local = local_propagation(masks, guide, settings.local_kernel, settings.local_zeta, settings.local_iterations,
                              box_masks[:, None])
    return second[:, 0].to(mask_probs.dtype), local[:, 0].to(mask_probs.dtype)


def _masked_mean_abs(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ|a − b|·w / Σw`` per RoI. ``(R, H, W)`` → ``(R,)`` (0 where ``w`` is empty)."""
    return ((a - b).abs() * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp(min=1.0)


def apro_losses(mask_probs: torch.Tensor, guide: torch.Tensor, box_masks: torch.Tensor,
                settings: BoxMaskLossSettings, ramp: float = 1.0, context: int = 0) -> dict[str, torch.Tensor]:
    """The three weighted losses, each the mean over RoIs (0 with no RoI).

    ``mask_probs`` ``(R, H, W)`` (with gradient), ``guide`` ``(R, C, H, W)``, ``box_masks`` ``(R, H, W)``;
    ``ramp`` in [0, 1] scales the two propagation losses (their warm-up). ``context``: the inputs are the RoI
    grown by this many cells on each side (see :class:`AProMaskLoss`): the propagation runs over all of it, the
    projection and the losses count the central RoI only.
    """
    if mask_probs.shape[0] == 0:
        zero = mask_probs.sum() * 0.0
        return {name: zero for name in LOSS_NAMES}
    height, width = mask_probs.shape[1:]
    central = torch.zeros_like(box_masks)
    central[:, context:height - context, context:width - context] = 1.0
    weights = box_masks * central
    inner = (slice(None), slice(context, height - context), slice(context, width - context))
    projection = box_projection_loss(mask_probs[inner], box_masks[inner]).mean()
    global_target, local_target = propagation_targets(mask_probs, guide, box_masks, settings)
    global_loss = _masked_mean_abs(global_target, mask_probs, weights).mean()
    local_loss = _masked_mean_abs(mask_probs, local_target, weights).mean()
    return {"loss_projection": settings.projection_weight * projection,
            "loss_global": settings.global_weight * ramp * global_loss,
            "loss_local": settings.local_weight * ramp * local_loss}


class AProMaskLoss:
    """APro's losses for a torchvision Mask R-CNN, in place of its mask loss.

    torchvision computes the mask loss inside ``RoIHeads.forward`` from mask targets; this reads what it needs
    from the model's own forward through hooks: the transformed (normalised, resized) images and targets
    (``model.transform``), the positive RoIs (``roi_heads.mask_roi_pool``'s input) and their mask logits
    (``roi_heads.mask_predictor``'s output). Each RoI's box is the ground-truth box it overlaps most (the match
    torchvision's ``Matcher`` made), its class that box's. Call :meth:`losses` after a training forward.
    Targets still carry ``masks`` (torchvision checks for them): the filled boxes, whose loss is discarded.
    """

    def __init__(self, model: torch.nn.Module, settings: BoxMaskLossSettings) -> None:
        self.settings = settings
        self._captured: dict[str, object] = {}
        roi_heads = model.roi_heads
        self._handles = [
            model.transform.register_forward_hook(self._on_transform),
            roi_heads.mask_roi_pool.register_forward_pre_hook(self._on_mask_rois),
            roi_heads.mask_predictor.register_forward_hook(self._on_mask_logits),
        ]

    def _on_transform(self, module, inputs, output) -> None:
        if module.training:
            images, targets = output
            self._captured = {"images": images.tensors, "targets": targets}

    def _on_mask_rois(self, module, inputs) -> None:
        if module.training:
            self._captured["proposals"] = inputs[1]

    def _on_mask_logits(self, module, inputs, output) -> None:
        if module.training:
            self._captured["mask_logits"] = output

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def losses(self, ramp: float = 1.0) -> dict[str, torch.Tensor]:
        """The losses of the last training forward (see :func:`apro_losses`)."""
        try:
            images, targets = self._captured["images"], self._captured["targets"]
            proposals, mask_logits = self._captured["proposals"], self._captured["mask_logits"]
        except KeyError as missing:
            raise RuntimeError(f"AProMaskLoss: no training forward captured ({missing} missing)") from None
        self._captured = {}
        boxes, labels = [], []
        for image_proposals, target in zip(proposals, targets):
            if len(image_proposals):
                match = box_iou(target["boxes"], image_proposals).argmax(dim=0)
                boxes.append(target["boxes"][match])
                labels.append(target["labels"][match])
        size = mask_logits.shape[-1]
        if not boxes:
            return apro_losses(mask_logits.new_zeros((0, size, size)), None, None, self.settings)
        boxes_all, labels_all = torch.cat(boxes), torch.cat(labels)
        probs = mask_logits[torch.arange(len(labels_all), device=labels_all.device), labels_all].float().sigmoid()
        # The RoI grown by `context` cells of its own size on each side: positive RoIs hug their boxes, and a
        # propagation confined to the box would have no background to spread from. Outside the box the mask is
        # background (the box's own prior, APro's masks are trained to 0 there); inside the box but outside the
        # RoI (a RoI smaller than its box) it is unknown, 0.5.
        context = int(round(self.settings.context * size))
        grown = [_grow(p.float(), context / size) for p in proposals]
        full = size + 2 * context
        # one list entry per image (empty ones included): roi_align reads the list index as the batch index
        guide = roi_align(blurred_guide(images, self.settings), grown, (full, full), spatial_scale=1.0,
                          sampling_ratio=2)
        box_masks = roi_box_masks(torch.cat(grown), boxes_all.float(), full)
        grown_probs = 0.5 * box_masks
        grown_probs[:, context:context + size, context:context + size] = probs
        return apro_losses(grown_probs, guide, box_masks, self.settings, ramp, context)


def blurred_guide(images: torch.Tensor, settings: BoxMaskLossSettings) -> torch.Tensor:
    """``(B, 3, H, W)`` normalised images → the guide the RoIs are sampled from (Gaussian, σ = ``guide_blur``)."""
    source = images.float()
    if settings.guide_blur > 0:
        sigma = settings.guide_blur
        source = gaussian_blur(source, [2 * math.ceil(3 * sigma) + 1] * 2, [sigma, sigma])
    return source


def _grow(rois: torch.Tensor, fraction: float) -> torch.Tensor:
    """``(R, 4)`` xyxy RoIs grown by ``fraction`` of their width / height on each side."""
    width = (rois[:, 2] - rois[:, 0]).clamp(min=1.0) * fraction
    height = (rois[:, 3] - rois[:, 1]).clamp(min=1.0) * fraction
    return rois + torch.stack([-width, -height, width, height], 1)
