"""Decoded images and label maps kept in memory across training epochs (:class:`DecodeCache`).

A training stage reads every image of its split once per epoch; decoding the JPEG (and the seed PNG) again
each time is ~60 % of the classifier's data CPU time on minivoc. The cache keeps what was decoded, up to a
byte budget: within it, every epoch after the first decodes nothing. Past the budget the first items stay and
the rest are decoded each time (no eviction: with a shuffled order, evicting would turn into misses only).
Cached arrays are read-only, so an augmentation that wrote into its input would fail loudly instead of
corrupting the next epoch's sample; the values are those of the loader, so results do not change.
"""

from __future__ import annotations

from typing import Callable, Hashable

import numpy as np


class DecodeCache:
    """Arrays by key, loaded once, up to ``budget_mb`` MiB in all (0: nothing kept)."""

    def __init__(self, budget_mb: float) -> None:
        if budget_mb < 0:
            raise ValueError(f"decode cache budget must be >= 0 MiB, got {budget_mb}")
        self.budget_bytes = int(budget_mb * 2**20)
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self._arrays: dict[Hashable, np.ndarray] = {}

    def get(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The array of ``key``: the kept one, or ``load()`` (kept, read-only, while the budget allows)."""
        array = self._arrays.get(key)
        if array is not None:
            self.hits += 1
            return array
        self.misses += 1
        array = load()
        if self.used_bytes + array.nbytes <= self.budget_bytes:
            if not array.flags.owndata:  # a view (of a decoder's buffer): keep a copy of its own
                array = array.copy()
            array.flags.writeable = False
            self._arrays[key] = array
            self.used_bytes += array.nbytes
        return array

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return (f"DecodeCache({len(self)} arrays, {self.used_bytes / 2**20:.1f}/{self.budget_bytes / 2**20:.0f} MiB, "
                f"{self.hits} hits, {self.misses} misses)")
