"""Seed builders of point, scribble and box supervision on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from wsss.data.annotations import BoxAnnotation, PointAnnotation, ScribbleAnnotation
from wsss.seeds.box import (BoxSeedParams, GrabCutReport, box_seeds, class_box_masks, filled_box_labels,
                            grabcut_object)
from wsss.seeds.evidence import cam_for_classes
from wsss.seeds.point import nearest_point_labels, point_discs, point_seeds
from wsss.seeds.scribble import nearest_seed_labels, scribble_seeds

IGNORE = 255


# ------------------------------------------------------------------ points
def test_point_discs_radius_and_nearest_point_wins():
    points = [PointAnnotation(5, 5, 12), PointAnnotation(9, 5, 8)]
    seeds = point_discs(points, (12, 16), radius=3)
    assert seeds[5, 5] == 12 and seeds[5, 9] == 8
    assert seeds[5, 2] == 12 and seeds[5, 1] == IGNORE      # distance 3 in, 4 out
    assert seeds[5, 6] == 12 and seeds[5, 8] == 8           # each side of the midpoint
    assert seeds[5, 7] == 12                                # tie at distance 2: the earlier point
    assert seeds[8, 5] == 12 and seeds[9, 5] == IGNORE      # vertical distance 3 in, 4 out


def test_point_discs_exact_disc_area():
    seeds = point_discs([PointAnnotation(10, 10, 3)], (21, 21), radius=3)
    assert (seeds == 3).sum() == 29  # lattice points with x² + y² <= 9


def test_nearest_point_labels_is_a_voronoi_partition():
    labels = nearest_point_labels([PointAnnotation(0, 0, 0), PointAnnotation(9, 0, 5)], (3, 10))
    assert labels[:, :5].tolist() == [[0] * 5] * 3 and labels[:, 5:].tolist() == [[5] * 5] * 3
    assert (nearest_point_labels([], (2, 2)) == IGNORE).all()


def test_point_seeds_without_cam_are_the_discs_and_low_confidence_is_dropped():
    points = [PointAnnotation(4, 4, 2, 1.0), PointAnnotation(14, 4, 3, 0.5)]
    seeds = point_seeds(points, (10, 20), radius=2, min_confidence=0.7)
    assert seeds[4, 4] == 2 and seeds[4, 14] == IGNORE


def test_point_seeds_fuse_cam_evidence_near_points_only():
    size = (20, 40)
    cam_seeds = np.full(size, IGNORE, np.uint8)
    cam_seeds[:, :4] = 0                    # confident background
    cam_seeds[5:15, 8:14] = 12              # a dog blob 3 px from the click
    cam_seeds[5:15, 30:36] = 12             # a dog blob far from every dog click
    cam_seeds[0:3, 20:25] = 7               # a class no point names
    points = [PointAnnotation(17, 10, 12)]
    seeds = point_seeds(points, size, radius=1, cam_seeds=cam_seeds, max_gap=5)
    assert (seeds[:, :4] == 0).all()
    assert (seeds[5:15, 8:14] == 12).all()
    assert (seeds[5:15, 30:36] == IGNORE).all()
    assert (seeds[0:3, 20:25] == IGNORE).all()
    assert seeds[10, 17] == 12 and seeds[10, 18] == 12
    kept_all = point_seeds(points, size, radius=1, cam_seeds=cam_seeds, max_gap=None)
    assert (kept_all[5:15, 30:36] == 12).all()


def test_point_overrides_cam_background():
    cam_seeds = np.zeros((9, 9), np.uint8)
    seeds = point_seeds([PointAnnotation(4, 4, 5)], (9, 9), radius=1, cam_seeds=cam_seeds)
    assert seeds[4, 4] == 5 and seeds[4, 5] == 5 and seeds[0, 0] == 0


def test_cam_for_classes_reindexes_and_zero_fills():
    cam = np.stack([np.full((2, 2), 0.3), np.full((2, 2), 0.9)]).astype(np.float32)
    out = cam_for_classes(cam, np.array([4, 9]), np.array([9, 2]))
    assert out.shape == (2, 2, 2) and np.allclose(out[0], 0.9) and np.allclose(out[1], 0.0)


# --------------------------------------------------------------- scribbles
def test_scribble_width_and_rest_unknown():
    seeds = scribble_seeds([ScribbleAnnotation(12, ((2, 5), (17, 5)))], (11, 20), width=3)
    assert set(np.unique(seeds[4:7, 2:18])) == {12}
    assert (seeds[:3] == IGNORE).all() and (seeds[8:] == IGNORE).all()
    thin = scribble_seeds([ScribbleAnnotation(12, ((2, 5), (17, 5)))], (11, 20), width=1)
    assert (thin == 12).sum() == 16


def test_object_strokes_drawn_over_background_strokes_and_in_file_order():
    strokes = [ScribbleAnnotation(3, ((0, 4), (9, 4))), ScribbleAnnotation(0, ((4, 0), (4, 9))),
               ScribbleAnnotation(7, ((0, 6), (9, 6)))]
    seeds = scribble_seeds(strokes, (10, 10), width=1)
    assert seeds[4, 4] == 3 and seeds[6, 4] == 7 and seeds[0, 4] == 0 and seeds[5, 4] == 0


def test_single_vertex_scribble_is_a_dot():
    seeds = scribble_seeds([ScribbleAnnotation(9, ((5, 5),))], (11, 11), width=5)
    assert seeds[5, 5] == 9 and seeds[5, 7] == 9 and seeds[5, 8] == IGNORE


def test_nearest_seed_labels():
    seeds = np.full((3, 8), IGNORE, np.uint8)
    seeds[1, 0], seeds[1, 7] = 0, 4
    labels = nearest_seed_labels(seeds)
    assert (labels[:, :4] == 0).all() and (labels[:, 4:] == 4).all()


# ------------------------------------------------------------------- boxes
def disc_scene() -> np.ndarray:
    """A 60×80 textured grey image with a red disc (centre (40, 30), radius 12)."""
    rng = np.random.default_rng(0)
    image = rng.integers(100, 140, size=(60, 80, 3)).astype(np.uint8)
    rows, cols = np.mgrid[:60, :80]
    image[(rows - 30) ** 2 + (cols - 40) ** 2 <= 144] = (210, 30, 30)
    return image


def test_grabcut_finds_the_object_inside_its_box():
    image = disc_scene()
    obj = grabcut_object(image, (24, 14, 56, 46))
    rows, cols = np.mgrid[:60, :80]
    disc = (rows - 30) ** 2 + (cols - 40) ** 2 <= 144
    iou = (obj & disc).sum() / (obj | disc).sum()
    assert iou > 0.9
    assert not obj[:14].any() and not obj[:, :24].any()  # never outside its box


def test_grabcut_is_deterministic():
    image = disc_scene()
    assert (grabcut_object(image, (24, 14, 56, 46)) == grabcut_object(image, (24, 14, 56, 46))).all()


def test_grabcut_falls_back_to_the_filled_box():
    image = disc_scene()
    whole = grabcut_object(image, (0, 0, 79, 59))   # no background sample: filled box
    assert whole.all()
    thin = grabcut_object(image, (10, 10, 10, 40))  # 1 px wide
    assert thin.sum() == 31
    # a box on flat background: GrabCut's object covers less than min_cover -> filled box
    flat = np.full((60, 80, 3), 120, np.uint8)
    flat[0:5] = (10, 200, 10)
    box = grabcut_object(flat, (20, 20, 40, 40), min_cover=1.01)
    assert box.sum() == 21 * 21


def test_every_filled_box_fallback_is_counted_by_reason():
    image = disc_scene()
    flat = np.full((60, 80, 3), 120, np.uint8)
    flat[0:5] = (10, 200, 10)
    report = GrabCutReport()
    grabcut_object(image, (24, 14, 56, 46), report=report)                 # GrabCut's own object
    grabcut_object(image, (0, 0, 79, 59), report=report)                   # whole image
    grabcut_object(image, (10, 10, 10, 40), report=report)                 # thin
    grabcut_object(flat, (20, 20, 40, 40), min_cover=1.01, report=report)  # low cover
    assert report.as_dict() == {"boxes": 4, "opencv_errors": [], "filled_box_fallbacks": {
        "thin_box": 1, "whole_image": 1, "low_cover": 1, "opencv_error": 0}}
    assert report.summary() == "GrabCut: 4 boxes, 3 filled box fallbacks (thin_box 1, whole_image 1, low_cover 1)"


def test_an_opencv_failure_is_logged_and_counted_not_silent(monkeypatch, capsys):
    import cv2

    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(5.1.0) grabcut.cpp:386: error: (-215:Assertion failed) !bgdSamples.empty()")

    monkeypatch.setattr(cv2, "grabCut", broken)
    report = GrabCutReport()
    seeds = box_seeds(disc_scene(), [BoxAnnotation(12, (24, 14, 56, 46))], report=report, image_id="2008_000123")
    assert (seeds[14:47, 24:57] == 12).all()  # the filled box, as the rule says, but not silently:
    assert report.fallbacks["opencv_error"] == 1
    assert report.errors == ["2008_000123: box (24, 14, 56, 46): OpenCV(5.1.0) grabcut.cpp:386: error: "
                             "(-215:Assertion failed) !bgdSamples.empty()"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("[grabcut] OpenCV error, filled box used instead: 2008_000123: box")


def test_box_seeds_inside_ignore_or_background_and_outside_background():
    image = disc_scene()
    boxes = [BoxAnnotation(12, (24, 14, 56, 46))]
    seeds = box_seeds(image, boxes)
    assert seeds[30, 40] == 12 and seeds[15, 25] == IGNORE and seeds[5, 5] == 0
    seeds_bg = box_seeds(image, boxes, BoxSeedParams(inside="background"))
    assert seeds_bg[15, 25] == 0 and seeds_bg[30, 40] == 12
    with pytest.raises(ValueError):
        box_seeds(image, boxes, BoxSeedParams(inside="maybe"))


def test_smaller_boxes_win_overlaps():
    flat = np.full((40, 40, 3), 128, np.uint8)
    boxes = [BoxAnnotation(5, (10, 10, 20, 20)), BoxAnnotation(7, (0, 0, 39, 39))]
    label = filled_box_labels(boxes, (40, 40))
    assert label[15, 15] == 5 and label[30, 30] == 7
    seeds = box_seeds(flat, boxes, BoxSeedParams(min_cover=1.01))  # filled boxes
    assert seeds[15, 15] == 5 and seeds[30, 30] == 7


def test_box_seeds_cam_intersection_drops_confident_background():
    image = disc_scene()
    cam_seeds = np.full((60, 80), IGNORE, np.uint8)
    cam_seeds[25:35, 35:45] = 0
    seeds = box_seeds(image, [BoxAnnotation(12, (24, 14, 56, 46))], cam_seeds=cam_seeds)
    assert (seeds[25:35, 35:45] == IGNORE).all() and seeds[20, 40] == 12


def test_class_box_masks_union_per_class():
    boxes = [BoxAnnotation(3, (0, 0, 1, 1)), BoxAnnotation(3, (3, 3, 4, 4)), BoxAnnotation(9, (2, 0, 2, 0))]
    masks = class_box_masks(boxes, np.array([3, 9, 11]), (5, 5))
    assert masks.shape == (3, 5, 5)
    assert masks[0].sum() == 8 and masks[1].sum() == 1 and masks[2].sum() == 0
