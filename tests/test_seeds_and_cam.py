"""CAM → labels, PSA's seed rule and IRN's variant on hand-made CAMs."""

import numpy as np

from wsss.cam.inference import cam_to_label, with_background_power
from wsss.seeds.image import irn_seeds, psa_seeds


def _scene():
    """A 40×40 image: grey background, a red square (class 12 = dog) at rows/cols 10..29.
    The CAM is strong in the square's centre, weak at its rim, zero outside."""
    image = np.full((40, 40, 3), 90, np.uint8)
    image[10:30, 10:30] = (200, 30, 30)
    cam = np.zeros((1, 40, 40), np.float32)
    cam[0, 10:30, 10:30] = 0.35
    cam[0, 15:25, 15:25] = 1.0
    return image, cam, np.array([12])


def test_cam_to_label_uses_constant_background():
    _, cam, keys = _scene()
    label = cam_to_label(cam, keys, bg_threshold=0.5)
    assert label[20, 20] == 12 and label[12, 12] == 0 and label[0, 0] == 0
    label = cam_to_label(cam, keys, bg_threshold=0.3)
    assert label[12, 12] == 12


def test_background_power():
    cam = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    stacked = with_background_power(cam, 2.0)
    np.testing.assert_allclose(stacked[0, 0], [1.0, 0.25, 0.0])
    np.testing.assert_allclose(stacked[1], cam[0])


def test_psa_seeds_confident_fg_bg_and_band():
    image, cam, keys = _scene()
    seeds = psa_seeds(image, cam, keys, alpha_low=4, alpha_high=32)
    assert set(np.unique(seeds)) <= {0, 12, 255}
    assert seeds[20, 20] == 12          # strong CAM: confident foreground
    assert seeds[0, 0] == 0             # far from the object: confident background
    # the CRF with the colour edge pulls the weak rim into the object, never to background
    assert seeds[11, 11] in (12, 255)
    # the higher alpha_high, the less background is confident
    loose = psa_seeds(image, cam, keys, alpha_low=4, alpha_high=2)
    assert (loose == 0).sum() >= (seeds == 0).sum()


def test_irn_seeds_thresholds():
    image, cam, keys = _scene()
    seeds = irn_seeds(image, cam, keys, fg_threshold=0.30, bg_threshold=0.05)
    assert seeds[20, 20] == 12 and seeds[0, 0] == 0
    strict = irn_seeds(image, cam, keys, fg_threshold=0.9, bg_threshold=0.05)
    assert (strict == 12).sum() <= (seeds == 12).sum()
