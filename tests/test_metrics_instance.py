"""VOC mAP_r and COCO AP on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.realdata import realdata
from wsss.data.coco import COCODataset, encode_instances
from wsss.metrics import calc_detection_voc_ap, eval_coco, eval_instance_segmentation_voc, mask_iou

W = 10


def span(x0: int, x1: int) -> np.ndarray:
    """A 1x10 mask covering columns x0..x1 inclusive."""
    mask = np.zeros((1, W), bool)
    mask[0, x0 : x1 + 1] = True
    return mask


def stack(*masks):
    return np.stack(masks) if masks else np.zeros((0, 1, W), bool)


def evaluate(preds, gts, **kwargs):
    """preds: per image [(mask, label, score)], gts: per image [(mask, label)]."""
    return eval_instance_segmentation_voc(
        [stack(*[m for m, _, _ in p]) for p in preds],
        [np.array([l for _, l, _ in p], int) for p in preds],
        [np.array([s for _, _, s in p], float) for p in preds],
        [stack(*[m for m, _ in g]) for g in gts],
        [np.array([l for _, l in g], int) for g in gts],
        **kwargs,
    )


def test_mask_iou():
    assert mask_iou(stack(span(0, 3)), stack(span(2, 5), span(6, 9))).tolist() == [[2 / 6, 0.0]]


def test_perfect_predictions_one_based_labels():
    gts = [[(span(0, 3), 1), (span(5, 9), 2)], [(span(2, 6), 1)]]
    preds = [[(m, l, 0.9) for m, l in g] for g in gts]
    result = evaluate(preds, gts)
    assert math.isnan(result["ap"][0]) and result["ap"][1:].tolist() == [1.0, 1.0] and result["map"] == 1.0


def test_duplicates_are_false_positives_and_both_ap_definitions():
    gts = [[(span(0, 3), 1), (span(6, 9), 1)]]
    preds = [[(span(0, 3), 1, 0.9), (span(0, 3), 1, 0.8), (span(6, 9), 1, 0.7)]]
    # ranked matches: TP, FP (duplicate), TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert evaluate(preds, gts)["map"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert evaluate(preds, gts, use_07_metric=True)["map"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # a lone duplicate ranked after its original costs nothing
    assert evaluate([[(span(0, 3), 1, 0.9), (span(0, 3), 1, 0.8)]], [[(span(0, 3), 1)]])["map"] == 1.0


def test_best_match_taken_is_false_positive_even_if_another_fits():
    gts = [[(span(0, 3), 1), (span(4, 7), 1)]]
    # second detection overlaps A (taken, IoU 4/6) most and B (free) with IoU 2/8 = 0.25
    preds = [[(span(0, 3), 1, 0.9), (span(0, 5), 1, 0.8)]]
    assert evaluate(preds, gts, iou_thresh=0.25)["map"] == pytest.approx(0.5)


def test_ties_keep_order_within_an_image_and_rank_the_later_image_first():
    gts = [[(span(0, 3), 1)]]
    hit, miss = (span(0, 3), 1, 0.5), (span(6, 9), 1, 0.5)
    assert evaluate([[hit, miss]], gts)["map"] == pytest.approx(1.0)  # hit ranked first: P = 1, 1/2 at R = 1
    assert evaluate([[miss, hit]], gts)["map"] == pytest.approx(0.5)  # miss first: P = 0, 1/2
    # across images: the later image's detection first
    assert evaluate([[hit], [miss]], [[(span(0, 3), 1)], []])["map"] == pytest.approx(0.5)
    assert evaluate([[miss], [hit]], [[], [(span(0, 3), 1)]])["map"] == pytest.approx(1.0)


def test_iou_threshold():
    gts = [[(span(0, 4), 1)]]
    preds = [[(span(2, 6), 1, 0.9)]]  # IoU 3/7
    assert evaluate(preds, gts)["map"] == 0.0
    assert evaluate(preds, gts, iou_thresh=0.25)["map"] == 1.0


def test_empty_predictions_classes_without_gt_and_no_labels():
    gts = [[(span(0, 3), 1)], [(span(0, 3), 3)]]
    result = evaluate([[], []], gts)
    assert result["ap"][1] == 0.0 and result["ap"][3] == 0.0 and math.isnan(result["ap"][2]) and result["map"] == 0.0
    # a class predicted but absent from ground truth: AP NaN, left out of the mean
    result = evaluate([[(span(0, 3), 1, 0.9), (span(5, 9), 2, 0.9)]], [[(span(0, 3), 1)]])
    assert math.isnan(result["ap"][2]) and result["map"] == 1.0
    result = evaluate([[]], [[]])
    assert len(result["ap"]) == 0 and math.isnan(result["map"])


def test_difficult_ground_truth_is_ignored():
    gts = [[(span(0, 3), 1), (span(6, 9), 1)]]
    difficult = [np.array([False, True])]
    result = eval_instance_segmentation_voc(
        [stack(span(6, 9), span(0, 3))], [np.array([1, 1])], [np.array([0.9, 0.8])],
        [stack(span(0, 3), span(6, 9))], [np.array([1, 1])], gt_difficults=difficult,
    )
    # the difficult match neither helps nor hurts: one TP (rank 2) after an ignored one
    assert result["map"] == 1.0


def test_calc_detection_voc_ap_07_edges():
    ap = calc_detection_voc_ap([np.array([1.0]), None], [np.array([0.3]), None], use_07_metric=True)
    # chainercv's thresholds np.arange(0, 1.1, 0.1): the 4th is 0.30000000000000004, so recall 0.3 reaches 3 of 11
    assert ap[0] == pytest.approx(3 / 11) and math.isnan(ap[1])


def test_coco_eval_on_real_annotations():
    dataset = COCODataset(realdata("icevision", "coco"), "val2017", annotation_file="annotations.json", image_folder="images")
    gt = dataset.coco_api()
    results, boxes = [], []
    for image_id in dataset.ids:
        masks, labels = dataset.instances(image_id)
        categories = np.array([dataset.category_id(int(k)) for k in labels])
        coco_id = dataset.coco_image_id(image_id)
        results += encode_instances(coco_id, masks, categories, np.ones(len(masks)))
        boxes += [{"image_id": coco_id, "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                  for a in gt.imgToAnns[coco_id] if not a["iscrowd"]]
    segm = eval_coco(gt, results, "segm")
    assert segm["AP"] == pytest.approx(1.0) and segm["AP50"] == pytest.approx(1.0)
    assert eval_coco(gt, boxes, "bbox")["AP"] == pytest.approx(1.0)
    assert eval_coco(gt, [], "segm")["AP"] == 0.0
    half = eval_coco(gt, results[: len(results) // 2], "segm")
    assert 0.0 < half["AP"] < 1.0
