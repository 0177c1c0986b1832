"""APro's mask losses from boxes alone (wsss.retrain.box_supervision) and the box-trained Mask R-CNN path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kernels.reference.local_propagation import local_propagation_unfold
from wsss.data.annotations import BoxAnnotation
from wsss.params import BoxMaskLossSettings
from wsss.retrain.box_supervision import (apro_losses, box_projection_loss, propagation_targets, roi_box_masks)

SETTINGS = BoxMaskLossSettings(kind="apro")


def _random_case(count: int = 5, size: int = 12, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(count, size, size, generator=generator, dtype=torch.float64)
    guide = torch.randn(count, 3, size, size, generator=generator, dtype=torch.float64)
    x0 = torch.randint(0, size // 2, (count,), generator=generator)
    y0 = torch.randint(0, size // 2, (count,), generator=generator)
    boxes = torch.stack([x0, y0, x0 + size // 2, y0 + size // 3 + 1], 1).to(torch.float64)
    proposals = torch.tensor([[0.0, 0.0, size, size]] * count, dtype=torch.float64)
    return logits, guide, roi_box_masks(proposals, boxes, size)


def test_roi_box_masks_known_answers():
    rois = torch.tensor([[0.0, 0.0, 8.0, 8.0], [10.0, 20.0, 14.0, 24.0], [0.0, 0.0, 4.0, 4.0]])
    boxes = torch.tensor([[0.0, 0.0, 4.0, 8.0], [10.0, 20.0, 14.0, 24.0], [1.0, 1.0, 3.0, 2.0]])
    masks = roi_box_masks(rois, boxes, 4)
    # cell j of an 8-px RoI on a 4-grid is centred at 1 + 2j: x < 4 keeps columns 0, 1
    assert masks[0].tolist() == [[1, 1, 0, 0]] * 4
    assert masks[1].tolist() == [[1] * 4] * 4  # the box is the RoI
    # cells centred at 0.5 .. 3.5; x in [1, 3) keeps columns 1, 2; y in [1, 2) row 1
    assert masks[2].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_projection_loss_is_zero_exactly_when_the_mask_fills_its_box():
    _, _, boxes = _random_case()
    assert torch.allclose(box_projection_loss(boxes, boxes), torch.zeros(len(boxes), dtype=boxes.dtype), atol=1e-12)
    # a mask narrower than its box projects to fewer columns: a positive loss
    narrower = boxes.clone()
    for k in range(len(boxes)):
        columns = boxes[k].amax(0).nonzero()[:, 0]
        narrower[k, :, columns[-1]] = 0
    assert (box_projection_loss(narrower, boxes) > 0.01).all()
    # hand value: a 1x2 box, the mask 0.5 on both cells: x-projection dice 1 - 2*1/(0.5+2) = 0.2,
    # y-projection (one row) dice 1 - 2*0.5/(0.25+1) = 0.2
    box = torch.tensor([[[1.0, 1.0]]])
    assert box_projection_loss(torch.full((1, 1, 2), 0.5), box).item() == pytest.approx(0.2 + 0.2)


def test_propagation_losses_vanish_for_a_constant_mask():
    _, guide, boxes = _random_case()
    constant = torch.full(boxes.shape, 0.7, dtype=torch.float64)
    losses = apro_losses(constant, guide, boxes, SETTINGS)
    # GP of a constant is that constant everywhere: the global loss is zero for any box
    assert losses["loss_global"].item() == pytest.approx(0.0, abs=1e-6)
    # LP starts from the mask inside the box and averages with the zeros outside: zero only when the box is the RoI
    full = torch.ones_like(boxes)
    assert apro_losses(constant, guide, full, SETTINGS)["loss_local"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss_local"].item() > 0.0


def test_local_target_matches_the_unfold_reference():
    logits, guide, boxes = _random_case(seed=3)
    probs = logits.sigmoid()
    _, local = propagation_targets(probs, guide, boxes, SETTINGS)
    reference = local_propagation_unfold(probs[:, None], guide, 5, 0.15, 20, boxes[:, None], dtype=torch.float64)[:, 0]
    torch.testing.assert_close(local, reference, atol=1e-5, rtol=1e-5)  # the targets run in float32


def test_gradients_reach_the_logits_and_none_flows_through_the_pseudo_labels():
    logits, guide, boxes = _random_case(seed=1)
    logits.requires_grad_(True)
    probs = logits.sigmoid()
    losses = apro_losses(probs, guide, boxes, SETTINGS)
    for name in ("loss_global", "loss_local"):
        (grad,) = torch.autograd.grad(losses[name], logits, retain_graph=True)
        assert grad.abs().sum() > 0
        # the gradient of weight * mean_r(Σ|m - t|·b / Σb) with the target t held constant
        global_target, local_target = propagation_targets(probs.detach(), guide, boxes, SETTINGS)
        target = global_target if name == "loss_global" else local_target
        weight = SETTINGS.global_weight if name == "loss_global" else SETTINGS.local_weight
        p = probs.detach()
        expected = weight * torch.sign(p - target) * boxes / boxes.flatten(1).sum(1)[:, None, None] / len(p) * p * (1 - p)
        torch.testing.assert_close(grad, expected, atol=1e-12, rtol=1e-9)
    (grad,) = torch.autograd.grad(losses["loss_projection"], logits)
    assert grad.abs().sum() > 0


def test_losses_batched_over_instances_equal_the_per_instance_loop():
    logits, guide, boxes = _random_case(count=6, seed=2)
    probs = logits.sigmoid()
    batched = apro_losses(probs, guide, boxes, SETTINGS)
    single = [apro_losses(probs[k:k + 1], guide[k:k + 1], boxes[k:k + 1], SETTINGS) for k in range(len(probs))]
    for name, value in batched.items():
        assert value.item() == pytest.approx(np.mean([s[name].item() for s in single]), rel=1e-10)
    empty = apro_losses(probs[:0], None, None, SETTINGS)
    assert all(v.item() == 0.0 for v in empty.values())


def _tiny_maskrcnn():
    from wsss.params import MaskRCNNSettings
    from wsss.retrain.maskrcnn_model import build_maskrcnn

    torch.manual_seed(0)
    settings = MaskRCNNSettings(arch="resnet10", width=16, pretrained="", trainable_layers=5, frozen_bn=False,
                                fpn_channels=16, representation_size=32, mask_layers=[16],
                                anchor_sizes=[16, 32, 64, 128, 256], min_size_train=[64], min_size_test=64, max_size=96)
    return build_maskrcnn(settings, 21)


def test_apro_mask_loss_replaces_the_mask_loss_in_a_mask_rcnn_step():
    from wsss.retrain.box_supervision import AProMaskLoss

    model = _tiny_maskrcnn().train()
    apro = AProMaskLoss(model, SETTINGS)
    images = [torch.rand(3, 60, 72), torch.rand(3, 50, 64)]
    masks = torch.zeros(1, 60, 72, dtype=torch.uint8)
    masks[0, 10:40, 8:50] = 1
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 50.0, 40.0]]), "labels": torch.tensor([4]), "masks": masks},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, 50, 64, dtype=torch.uint8)}]  # a negative image
    losses = model(images, targets)
    losses.pop("loss_mask")
    extra = apro.losses()
    assert set(extra) == {"loss_projection", "loss_global", "loss_local"}
    assert all(torch.isfinite(v) for v in extra.values())
    sum({**losses, **extra}.values()).backward()
    assert model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="no training forward"):
        apro.losses()  # what one forward captured is used once
    apro.remove()


def test_box_masks_become_instances_and_labels_small_boxes_on_top():
    from wsss.retrain.maskrcnn import box_mask_labels

    boxes = [BoxAnnotation(3, (0, 0, 5, 5)), BoxAnnotation(7, (2, 2, 3, 3)), BoxAnnotation(9, (6, 6, 7, 7))]
    probs = np.zeros((3, 8, 8), np.float32)
    probs[0, 0:5, 0:5] = 0.9
    probs[0, 7, 7] = 0.9  # outside its box: dropped
    probs[1, 2:4, 2:4] = 0.8
    probs[2] = 0.2  # nothing above 0.5: the filled box, half the score
    instances, semantic, filled = box_mask_labels(probs, boxes)
    assert filled == 1 and instances.labels.tolist() == [3, 7, 9]
    assert instances.masks[0].sum() == 25 and not instances.masks[0, 7, 7]
    assert instances.scores.tolist() == pytest.approx([0.9, 0.8, 0.1])
    assert semantic[2, 2] == 7 and semantic[0, 0] == 3 and semantic[4, 4] == 3 and semantic[5, 5] == 0
    assert (semantic[6:8, 6:8] == 9).all() and semantic[7, 0] == 0


def test_box_samples_fill_the_annotated_boxes(tmp_path):
    from tests.voc_fixture import make_tiny_voc
    from wsss.data.annotations import read_boxes
    from wsss.data.voc import VOCDataset
    from wsss.retrain.maskrcnn import BoxSamples

    root = make_tiny_voc(tmp_path / "VOC", n_train=2, n_val=1, size=(40, 48))
    dataset = VOCDataset(root, "train")
    _, target = BoxSamples(dataset, seed=0, flip=False)[(0, 0)]
    boxes = read_boxes(dataset, dataset.ids[0])
    assert target["labels"].tolist() == [b.class_id for b in boxes]
    for k, b in enumerate(boxes):
        x0, y0, x1, y1 = b.box
        assert target["boxes"][k].tolist() == [x0, y0, x1 + 1, y1 + 1]
        assert target["masks"][k].sum() == (x1 - x0 + 1) * (y1 - y0 + 1) == target["masks"][k, y0:y1 + 1, x0:x1 + 1].sum()


def test_target_signal_carves_the_background_of_a_flat_box():
    """From a filled-box mask on a flat object in a flat background, both propagations pull the box's background
    cells below its object cells (the diagnostic of ``benchmarks.apro_loss``)."""
    from benchmarks.apro_loss import target_signal

    class OneImage:
        ids = ["a"]

        def load_image(self, image_id):
            image = np.full((64, 80, 3), (40, 120, 40), np.uint8)
            image[20:44, 24:40] = (200, 30, 30)      # the object's body: the left part of its box
            image[20:26, 40:56] = (200, 30, 30)      # and a thin arm that makes the box wider than the body
            return image

        def instances(self, image_id):
            mask = np.zeros((1, 64, 80), bool)
            mask[0, 20:44, 24:40] = True
            mask[0, 20:26, 40:56] = True
            return mask, np.array([1])

    dataset = OneImage()
    row, = target_signal(dataset, SETTINGS, [0.01], 1)
    assert row["objects"] == 1
    assert row["lp_background"] < row["lp_object"] - 0.2
    assert row["gp_background"] < row["gp_object"] - 0.2
