"""Point seeds' geodesic evidence: background without a background click, a click beating an inverted CAM."""

import numpy as np
import pytest

from wsss.crf import keep_confident_seeds
from wsss.data.annotations import PointAnnotation
from wsss.seeds.geodesic import GeodesicParams, geodesic_competition, grid_graph
from wsss.seeds.point import point_seeds


def textured_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 60x80 image: a noisy grey-green textured background, a red 20x24 object and a blue 14x14 one. Returns (image, gt)."""
    rng = np.random.default_rng(seed)
    image = np.empty((60, 80, 3), np.float32)
    image[:] = (110, 130, 100)
    image += rng.normal(0, 12, image.shape)
    stripes = (np.arange(80) // 4 % 2 == 0)[None, :, None]
    image += np.where(stripes, 10, -10)
    gt = np.zeros((60, 80), np.uint8)
    gt[15:35, 10:34] = 7
    gt[30:44, 50:64] = 12
    image[gt == 7] = (200, 40, 40)
    image[gt == 12] = (40, 60, 210)
    image[gt > 0] += rng.normal(0, 6, (int((gt > 0).sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), gt


def test_grid_graph_edge_costs():
    image = np.zeros((2, 3, 3), np.uint8)
    image[:, 2] = 255
    graph = grid_graph(image, blur=0.0, step=0.5).toarray()
    assert graph[0, 1] == pytest.approx(0.5)  # flat: the step alone
    assert graph[1, 2] == pytest.approx(np.sqrt(3) + 0.5)  # black -> white
    assert graph[0, 3] == pytest.approx(0.5) and graph[0, 4] == 0  # down neighbour; no diagonal


def test_background_without_a_background_click():
    image, gt = textured_scene()
    points = [PointAnnotation(22, 25, 7), PointAnnotation(57, 37, 12)]  # object clicks only
    labels = geodesic_competition(image, points)
    background = gt == 0
    assert (labels[background] == 0).mean() > 0.9  # the border prior finds the background
    for c in (7, 12):
        assert (labels[gt == c] == c).mean() > 0.9
        assert (labels[background] == c).mean() < 0.01
    # with no margin every reached pixel is decided; with a huge one nothing is
    assert (geodesic_competition(image, points, GeodesicParams(margin=0.0)) != 255).mean() > 0.99
    assert (geodesic_competition(image, points, GeodesicParams(margin=1e9)) == 255).all()


def test_object_touching_the_border_is_not_background():
    image, gt = textured_scene()
    image[gt == 12] = (110, 130, 100)  # drop the blue object
    gt[gt == 12] = 0
    image[0:12, 30:50] = (200, 40, 40)  # a red object cut by the top border
    gt[0:12, 30:50] = 7
    labels = geodesic_competition(image, [PointAnnotation(22, 25, 7), PointAnnotation(40, 5, 7)])
    assert (labels[0:12, 30:50] == 0).mean() < 0.02 and (labels[0:12, 30:50] == 7).mean() > 0.8
    unguarded = geodesic_competition(image, [PointAnnotation(22, 25, 7), PointAnnotation(40, 5, 7)],
                                     GeodesicParams(border_guard=0.0))
    assert (unguarded[0:12, 30:50] == 7).mean() < (labels[0:12, 30:50] == 7).mean()


def test_background_click_is_a_background_source():
    image, gt = textured_scene()
    no_border = GeodesicParams(border_guard=float("inf"))  # every border pixel is within the guard: no border source
    alone = geodesic_competition(image, [PointAnnotation(22, 25, 7)], no_border)
    assert (alone == 0).sum() == 0  # nothing but the click: every pixel it reaches is class 7
    with_bg = geodesic_competition(image, [PointAnnotation(22, 25, 7), PointAnnotation(70, 8, 0)], no_border)
    near = np.hypot(*np.mgrid[0:60, 0:80] - np.array([8, 70])[:, None, None]) <= 8
    assert (with_bg[near] == 0).mean() > 0.9 and (with_bg[gt == 7] == 7).mean() > 0.9


def test_no_foreground_click_means_background():
    image, _ = textured_scene()
    assert (geodesic_competition(image, []) == 0).all()


def test_click_overrides_an_inverted_cam():
    image, gt = textured_scene()
    points = [PointAnnotation(22, 25, 7)]
    # an inverted CAM's seeds: the red object confident background, the textured background class 7
    inverted = np.full(gt.shape, 255, np.uint8)
    inverted[gt == 7] = 0
    inverted[(gt == 0) & (np.arange(80)[None, :] > 40)] = 7
    seeds = point_seeds(points, gt.shape, radius=2, cam_seeds=inverted, max_gap=None, image=image,
                        geodesic=GeodesicParams())
    assert (seeds[gt == 7] == 7).mean() > 0.9  # the class comes out where the click is
    without = point_seeds(points, gt.shape, radius=2, cam_seeds=inverted, max_gap=None)
    assert (without[gt == 7] == 0).mean() > 0.8  # the CAM alone: the object is background but for the disc
    with pytest.raises(ValueError, match="need the image"):
        point_seeds(points, gt.shape, cam_seeds=inverted, geodesic=GeodesicParams())


def test_keep_confident_seeds():
    labels = np.array([[1, 1], [2, 2]], np.uint8)
    seeds = np.array([[255, 0], [3, 255]], np.uint8)
    assert keep_confident_seeds(labels, seeds).tolist() == [[1, 0], [3, 2]]
    with pytest.raises(Exception, match="s.png: seeds size 3x2 differs"):
        keep_confident_seeds(labels, np.zeros((2, 3), np.uint8), "s.png")
