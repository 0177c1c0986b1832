"""The instances of one image (masks, class labels, scores), as the cues make them and the COCO export reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class InstanceSet:
    """Instances of one image: ``masks (R, H, W)`` bool, ``labels (R,)`` int64 class ids (1..20), ``scores (R,)`` float32."""

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty(size: tuple[int, int]) -> "InstanceSet":
        return InstanceSet(np.zeros((0, *size), bool), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @staticmethod
    def stack(masks: Sequence[np.ndarray], labels: Sequence[int], scores: Sequence[float],
              size: tuple[int, int]) -> "InstanceSet":
        if not masks:
            return InstanceSet.empty(size)
        return InstanceSet(np.stack(masks).astype(bool), np.asarray(labels, np.int64), np.asarray(scores, np.float32))

    def __len__(self) -> int:
        return len(self.labels)
