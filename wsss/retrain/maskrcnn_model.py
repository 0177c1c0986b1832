"""torchvision Mask R-CNN on a :class:`ResNetTrunk` + FPN (``BackboneWithFPN``), sized by configuration.

Real photos: ResNet-50-FPN with torchvision's head sizes (FPN 256 channels,
1024-d box head, 4×256 mask head), ImageNet trunk weights from a local file,
frozen BatchNorm and stem + layer1 frozen (``trainable_layers`` 3), as
torchvision's ``maskrcnn_resnet50_fpn``. The demo: a ResNet-18 trunk, 64-channel
FPN and heads, small images and anchors.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.ops.poolers import MultiScaleRoIAlign, initLevelMapper

from wsss.backbone import ResNetTrunk
from wsss.errors import WsssError
from wsss.params import MaskRCNNSettings
from wsss.retrain.deeplab_model import check_trunk_config, load_trunk_weights

_TRUNK_STAGES = ["layer4", "layer3", "layer2", "layer1", "stem"]


def _freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``module`` by a ``FrozenBatchNorm2d`` with its statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)
    return module


def build_maskrcnn(settings: MaskRCNNSettings, num_classes: int) -> MaskRCNN:
    """Mask R-CNN with ``num_classes`` outputs (background included: 21 for VOC).

    ``model(images, targets)`` in train mode returns the loss dict; in eval mode a
    list of ``{"boxes" (R,4) xyxy, "labels" (R,), "scores" (R,), "masks" (R,1,H,W)}``.
    Images are ``(3, H, W)`` float in [0, 1] (the model normalises them).
    """
    if not 0 <= settings.trainable_layers <= 5:
        raise WsssError(f"model.trainable_layers: must be 0..5, got {settings.trainable_layers}")
    if len(settings.anchor_sizes) != 5:
        raise WsssError(f"model.anchor_sizes: one size per FPN level (5), got {list(settings.anchor_sizes)}")
    trunk = ResNetTrunk(settings.arch, 32, settings.pretrained, settings.width)
    if settings.init_trunk:
        check_trunk_config(settings.init_trunk, settings.arch, settings.width)
        load_trunk_weights(trunk, settings.init_trunk)
    if settings.frozen_bn:
        _freeze_batchnorm(trunk)
    train = set(_TRUNK_STAGES[: settings.trainable_layers])
    for name, child in trunk.named_children():
        for parameter in child.parameters():
            parameter.requires_grad_(name in train)
    backbone = BackboneWithFPN(trunk, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               list(trunk.channels), settings.fpn_channels)
    ratios = ((0.5, 1.0, 2.0),) * 5
    anchors = AnchorGenerator(tuple((int(s),) for s in settings.anchor_sizes), ratios)
    channels = settings.fpn_channels
    mask_layers = list(settings.mask_layers)
    model = MaskRCNN(
        backbone,
        num_classes=None,
        min_size=tuple(int(s) for s in settings.min_size_train),
        max_size=settings.max_size,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(channels, anchors.num_anchors_per_location()[0]),
        rpn_pre_nms_top_n_train=settings.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=settings.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=settings.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=settings.rpn_post_nms_test,
        rpn_batch_size_per_image=settings.rpn_batch_size,
        box_head=TwoMLPHead(channels * 7 * 7, settings.representation_size),
        box_predictor=FastRCNNPredictor(settings.representation_size, num_classes),
        box_batch_size_per_image=settings.box_batch_size,
        box_score_thresh=settings.score_threshold,
        box_detections_per_img=settings.detections_per_image,
        mask_head=MaskRCNNHeads(channels, mask_layers, 1),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes),
    )
    for pooler in (model.roi_heads.box_roi_pool, model.roi_heads.mask_roi_pool):
        _fix_pooler_scales(pooler, FPN_STRIDES)
    return model


#: strides of the FPN levels the RoI poolers read ("0".."3": ResNet layer1..layer4)
FPN_STRIDES = (4, 8, 16, 32)


def _fix_pooler_scales(pooler: MultiScaleRoIAlign, strides: tuple[int, ...]) -> None:
    """Give the pooler its level scales (1/stride) instead of letting it guess them at its first forward.

    torchvision infers them once, from the first batch, as the power of two nearest feature size / image
    size; on small images (the padded batch much larger than the image) it guesses 1/2 for the stride-4
    level, and keeps whatever the first batch gave: a model evaluated in the process that trained it and the
    same weights loaded afresh (a resumed run, a saved model) then pool from different places.
    """
    if len(pooler.featmap_names) != len(strides):
        raise ValueError(f"pooler reads {len(pooler.featmap_names)} levels, got {len(strides)} strides")
    pooler.scales = [1.0 / stride for stride in strides]
    levels = [stride.bit_length() - 1 for stride in strides]
    pooler.map_levels = initLevelMapper(levels[0], levels[-1], canonical_scale=pooler.canonical_scale,
                                        canonical_level=pooler.canonical_level)


def set_inference_size(model: MaskRCNN, min_size: int) -> None:
    """Use ``min_size`` for the shorter image side at inference (training sizes are drawn from ``min_size_train``)."""
    model.transform.min_size = (int(min_size),)


def maskrcnn_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters."""
    return [p for p in model.parameters() if p.requires_grad]
