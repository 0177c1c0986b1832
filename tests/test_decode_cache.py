"""The training stages' in-memory cache of decoded images (wsss.data.cache): within its budget each item is
decoded once, cached arrays are read-only, and the training samples are exactly those of no cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsss.affinity.training import SeedCropDataset
from wsss.cam.training import ImageLabelDataset
from wsss.config import RUNTIME_ONLY_KEYS, checkpoint_fingerprint, compose
from wsss.data.cache import DecodeCache
from wsss.data.minivoc import generate
from wsss.data.voc import VOCDataset
from wsss.io import save_label_png


def test_each_key_is_loaded_once_within_the_budget_and_kept_read_only():
    loads = []

    def loader(value):
        def load():
            loads.append(value)
            return np.full((10, 10), value, np.uint8)  # 100 bytes
        return load

    cache = DecodeCache(250 / 2**20)  # room for two arrays of 100 bytes, not three
    for _ in range(3):
        for key in (1, 2, 3):
            assert (cache.get(key, loader(key)) == key).all()
    assert loads == [1, 2, 3, 3, 3]  # 1 and 2 kept, 3 past the budget: loaded every time
    assert len(cache) == 2 and cache.used_bytes == 200 and cache.hits == 4 and cache.misses == 5
    with pytest.raises(ValueError):
        cache.get(1, loader(1))[0, 0] = 9  # an augmentation writing into its input fails instead of corrupting


def test_a_view_is_kept_as_a_copy_of_its_own():
    base = np.arange(12, dtype=np.uint8).reshape(3, 4)
    kept = DecodeCache(1).get("view", lambda: base[:, 1:])
    base[:] = 0
    assert kept.tolist() == [[1, 2, 3], [5, 6, 7], [9, 10, 11]]


def test_no_budget_keeps_nothing_and_a_negative_one_is_an_error():
    cache = DecodeCache(0)
    cache.get("a", lambda: np.zeros(4))
    assert len(cache) == 0 and cache.misses == 1
    with pytest.raises(ValueError, match="decode cache"):
        DecodeCache(-1)


@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory) -> tuple[VOCDataset, Path]:
    root = tmp_path_factory.mktemp("cache") / "minivoc"
    generate(root, 6, 0, seed=3, progress=False)
    dataset = VOCDataset(root, "train")
    seeds_dir = root.parent / "seeds"
    for image_id in dataset.ids:  # seed maps: the class masks stand in
        save_label_png(seeds_dir / f"{image_id}.png", dataset.load_class_mask(image_id))
    return dataset, seeds_dir


def _epochs(samples, epochs: int = 2) -> list[list[np.ndarray]]:
    out = []
    for epoch in range(epochs):
        samples.epoch = epoch
        out.append([np.concatenate([t.numpy().ravel().astype(np.float64) for t in samples[i]])
                    for i in range(len(samples))])
    return out


def test_training_samples_are_the_same_with_and_without_the_cache(tiny_voc):
    dataset, seeds_dir = tiny_voc
    cache = DecodeCache(64)
    cached = _epochs(ImageLabelDataset(dataset, 64, (56, 96), 5, cache))
    plain = _epochs(ImageLabelDataset(dataset, 64, (56, 96), 5))
    assert all(np.array_equal(a, b) for ea, eb in zip(cached, plain) for a, b in zip(ea, eb))
    assert cache.misses == len(dataset.ids) and cache.hits == len(dataset.ids)  # epoch 2 decoded nothing
    cache = DecodeCache(64)
    cached = _epochs(SeedCropDataset(dataset, seeds_dir, 64, (56, 96), 4, 5, cache))
    plain = _epochs(SeedCropDataset(dataset, seeds_dir, 64, (56, 96), 4, 5))
    assert all(np.array_equal(a, b) for ea, eb in zip(cached, plain) for a, b in zip(ea, eb))
    assert len(cache) == 2 * len(dataset.ids)  # images and seed maps


def test_the_budget_is_runtime_only_a_checkpoint_stays_valid():
    assert "decode_cache_mb" in RUNTIME_ONLY_KEYS
    first = compose("train_classifier", ["decode_cache_mb=0"])
    second = compose("train_classifier", ["decode_cache_mb=4096"])
    assert checkpoint_fingerprint(first) == checkpoint_fingerprint(second)
