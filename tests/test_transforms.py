"""random_crop builds only its window: the same crops, labels and masks as padding the whole canvas first."""

import numpy as np
import pytest

from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, random_crop


def _crop_by_canvas(image, crop, rng, label, ignore=255):
    """The definition: pad a whole canvas (mean colour / ignore), then cut the window out of it."""
    height, width = image.shape[:2]
    pad_h, pad_w = max(crop - height, 0), max(crop - width, 0)
    canvas = np.empty((height + pad_h, width + pad_w, 3), dtype=np.uint8)
    canvas[:] = (IMAGENET_MEAN * 255).round().astype(np.uint8)
    top, left = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
    canvas[top:top + height, left:left + width] = image
    valid = np.zeros(canvas.shape[:2], dtype=bool)
    valid[top:top + height, left:left + width] = True
    label_canvas = np.full(canvas.shape[:2], ignore, dtype=label.dtype)
    label_canvas[top:top + height, left:left + width] = label
    y0 = int(rng.integers(0, canvas.shape[0] - crop + 1))
    x0 = int(rng.integers(0, canvas.shape[1] - crop + 1))
    window = (slice(y0, y0 + crop), slice(x0, x0 + crop))
    return canvas[window], label_canvas[window], valid[window]


@pytest.mark.parametrize("seed", range(40))
def test_random_crop_is_the_padded_canvas_window(seed):
    rng = np.random.default_rng(seed)
    height, width, crop = (int(v) for v in rng.integers(1, 40, size=3))
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    label = rng.integers(0, 21, (height, width), dtype=np.uint8)
    ours = random_crop(image, crop, np.random.default_rng(seed + 100), label)
    expected = _crop_by_canvas(image, crop, np.random.default_rng(seed + 100), label)
    for got, want in zip(ours, expected):
        assert got.shape == want.shape and np.array_equal(got, want)
    assert ours[2].sum() == min(height, crop) * min(width, crop)


def test_normalize_is_the_formula():
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    expected = ((image.astype(np.float64) / 255 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    out = normalize(image)
    assert out.dtype == np.float32 and out.shape == (3, 7, 5) and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
