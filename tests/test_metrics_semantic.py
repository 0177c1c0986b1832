"""Semantic scores on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wsss.data.classes import VOC_CLASSES
from wsss.errors import WsssError
from wsss.io import save_json
from wsss.metrics import SegmentationScorer, eval_semantic_segmentation

GT = np.array([[0, 0, 1], [1, 255, 2]])
PRED = np.array([[0, 1, 1], [1, 0, 0]])


def test_eval_semantic_segmentation_hand_case():
    # valid pixels (g,p): (0,0) (0,1) (1,1) (1,1) (2,0)
    result = eval_semantic_segmentation([PRED], [GT])
    assert result["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert np.allclose(result["iou"], [1 / 3, 2 / 3, 0])
    assert result["miou"] == pytest.approx(1 / 3)
    assert result["pixel_accuracy"] == pytest.approx(3 / 5)
    assert np.allclose(result["class_accuracy"], [1 / 2, 1, 0])
    assert result["mean_class_accuracy"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_eval_semantic_segmentation_any_integer_dtype(dtype):
    # label PNGs load as uint8: the same scores as with int64, and an all-ignore image adds nothing
    result = eval_semantic_segmentation([PRED.astype(dtype), PRED.astype(dtype)],
                                        [GT.astype(dtype), np.full((2, 3), 255, dtype)])
    assert result["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert result["miou"] == pytest.approx(1 / 3)


def test_eval_semantic_segmentation_absent_class_is_nan():
    result = eval_semantic_segmentation([PRED, PRED], [GT, GT], num_classes=4)
    assert math.isnan(result["iou"][3]) and math.isnan(result["class_accuracy"][3])
    assert result["miou"] == pytest.approx(1 / 3)  # nanmean: class 3 left out
    # a class predicted but never in ground truth: IoU 0, class accuracy NaN
    result = eval_semantic_segmentation([np.array([[3, 0]])], [np.array([[0, 0]])])
    assert np.isnan(result["iou"][1:3]).all()  # classes 1, 2 absent everywhere
    assert result["iou"][3] == 0 and math.isnan(result["class_accuracy"][3]) and result["iou"][0] == 0.5


def test_eval_semantic_segmentation_grows_like_chainercv():
    # chainercv grows the matrix to the largest label seen, prediction values included
    pred = np.array([[0, 255]])
    gt = np.array([[0, 255]])
    result = eval_semantic_segmentation([pred], [gt])
    assert result["iou"].shape == (256,) and result["miou"] == 1.0


def test_eval_semantic_segmentation_errors():
    with pytest.raises(ValueError, match="different lengths"):
        eval_semantic_segmentation([PRED, PRED], [GT])
    with pytest.raises(ValueError, match="differs"):
        eval_semantic_segmentation([PRED[:, :2]], [GT])


def test_scorer_hand_case_with_unlabeled_pixels():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 255, 1, 0], [255, 2, 0, 255]])
    scorer = SegmentationScorer()
    assert scorer.add(pred, gt) == pytest.approx(100 * 4 / 9)
    record = scorer.record({"split": "train", "gt": "SegmentationClass"})
    assert record["miou"] == pytest.approx(100 * 4 / 9)
    assert record["per_class_iou"]["background"] == pytest.approx(100 / 3)
    assert record["per_class_iou"]["aeroplane"] == pytest.approx(50)
    assert math.isnan(record["per_class_iou"]["dog"])
    assert record["precision"] == pytest.approx(100 * 5 / 6)
    assert record["recall"] == pytest.approx(50)
    assert record["coverage"] == pytest.approx(100 * 4 / 6)
    assert record["pixel_accuracy"] == pytest.approx(50)
    assert record["n_images"] == 1 and record["protocol"] == {"split": "train", "gt": "SegmentationClass"}
    assert list(record["per_class_iou"]) == list(VOC_CLASSES)


def test_scorer_matches_chainercv_without_unlabeled():
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 21, (7, 9)) for _ in range(3)]
    gts = [np.where(rng.random((7, 9)) < 0.1, 255, rng.integers(0, 21, (7, 9))) for _ in range(3)]
    scorer = SegmentationScorer()
    for p, g in zip(preds, gts):
        scorer.add(p, g)
    reference = eval_semantic_segmentation(preds, gts, num_classes=21)
    record = scorer.record({})
    assert record["miou"] == pytest.approx(100 * reference["miou"])
    assert record["pixel_accuracy"] == pytest.approx(100 * reference["pixel_accuracy"])
    assert record["coverage"] == 100.0


def test_scorer_perfect_empty_and_all_ignore(tmp_path):
    gt = np.array([[0, 15], [15, 255]])
    perfect = SegmentationScorer()
    assert perfect.add(gt.copy(), gt) == 100.0
    assert perfect.record({})["miou"] == 100.0
    empty = SegmentationScorer()
    assert empty.add(np.full_like(gt, 255), gt) == 0.0
    record = empty.record({})
    assert record["miou"] == 0.0 and record["coverage"] == 0.0 and math.isnan(record["precision"])
    assert record["recall"] == 0.0
    ignored = SegmentationScorer()
    assert math.isnan(ignored.add(np.zeros((2, 2)), np.full((2, 2), 255)))
    record = ignored.record({"crf": False})
    assert record["n_images"] == 1 and math.isnan(record["miou"]) and math.isnan(record["coverage"])
    save_json(tmp_path / "metrics.json", record)  # NaN -> null, valid JSON
    assert json.loads((tmp_path / "metrics.json").read_text())["miou"] is None


def test_scorer_rejects_bad_input():
    scorer = SegmentationScorer()
    with pytest.raises(WsssError, match=r"^x\.png: prediction size 2x1 differs from ground truth 3x2"):
        scorer.add(np.zeros((1, 2)), GT, name="x.png")
    with pytest.raises(WsssError, match=r"^x\.png: prediction value 21 outside 0\.\.20 and 255"):
        scorer.add(np.full_like(GT, 21), GT, name="x.png")
    assert scorer.n_images == 0


# ------------------------------------------------------------------ classification AP (the classifier's val mAP)
def _ap_brute_force(scores, hits):
    """VOC 2010+ AP by its definition: for each recall level k/P reached, the best precision at any rank whose
    recall is at least k/P, averaged over the P positives (the area under the precision envelope)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [hits[i] for i in order]
    positives = sum(ranked)
    points = []
    for rank in range(1, len(ranked) + 1):
        tp = sum(ranked[:rank])
        points.append((tp / positives, tp / rank))
    return sum(max(p for r, p in points if r >= k / positives) for k in range(1, positives + 1)) / positives


def test_classification_ap_known_answer_and_no_positive_is_nan():
    from wsss.metrics import multilabel_average_precision

    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = multilabel_average_precision(scores, labels)
    assert ap[0] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3) and np.isnan(ap[1])


def test_classification_ap_matches_its_definition_on_random_rankings():
    from wsss.metrics import multilabel_average_precision

    rng = np.random.default_rng(3)
    for _ in range(30):
        n, c = int(rng.integers(2, 25)), int(rng.integers(1, 5))
        scores = rng.permutation(n * c).reshape(n, c).astype(float)  # distinct scores: one ranking
        labels = rng.random((n, c)) < 0.4
        labels[0] = True  # every class has a positive
        ap = multilabel_average_precision(scores, labels)
        for column in range(c):
            assert ap[column] == pytest.approx(_ap_brute_force(list(scores[:, column]), list(labels[:, column])))
