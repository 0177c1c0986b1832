"""Superpixel quality against a ground-truth label map (255 = void), as the superpixel literature measures it, and
the superpixel maps that are compared: the learned net's (:func:`hard_labels`), the regular grid's
(:func:`grid_labels`) and SLIC's (:func:`slic_labels`).

Definitions (``S``: a superpixel, ``G``: a ground-truth segment, ``N``: the image's non-void pixels; every count is
over non-void pixels only):

* **boundary recall** (BR) with tolerance ``r`` (2 px): the fraction of ground-truth boundary pixels with a
  superpixel boundary pixel within Chebyshev distance ``r`` (a ``(2r+1)²`` window). A boundary pixel of a label map
  is one whose right or bottom neighbour has another label (Stutz et al.'s 4-connected definition). The ground
  truth's void pixels first take the label of the nearest labelled pixel, so the boundary runs through the middle
  of VOC's void band and not along both of its edges.
* **undersegmentation error** (UE), Neubert & Protzel's corrected form:
  ``UE = (1/N) Σ_S Σ_{G: |S∩G|>0} min(|S∩G|, |S \\ G|)`` — each superpixel leaking into a segment is charged the
  smaller of the part inside and the part outside (no double penalty for a superpixel straddling two segments).
* **achievable segmentation accuracy** (ASA): ``(1/N) Σ_S max_G |S∩G|``, the pixel accuracy of the best labelling
  of the superpixels.

:class:`SuperpixelScorer` sums numerators and denominators over images (pixel-weighted UE and ASA, boundary-pixel
weighted BR) and reports percentages.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from kernels.superpixel import ASSOC_OFFSETS
from wsss.superpixel.model import out_of_grid

VOID = 255
#: boundary recall's tolerance (px) as the literature reports it
BOUNDARY_TOLERANCE = 2


# ------------------------------------------------------------------ superpixel maps
def hard_labels(assoc: torch.Tensor | np.ndarray, cell: int) -> np.ndarray:
    """``(H, W)`` int32 superpixel ids of an association ``(9, H, W)`` (``H``, ``W`` multiples of ``cell``): each pixel
    joins the neighbour cell of its largest association (out-of-grid neighbours never), id = ``row · (W/cell) + col``
    of that cell, as :func:`grid_labels` numbers the cells."""
    assoc = torch.as_tensor(np.asarray(assoc) if not isinstance(assoc, torch.Tensor) else assoc).float()
    if assoc.ndim != 3 or assoc.shape[0] != len(ASSOC_OFFSETS):
        raise ValueError(f"hard_labels: assoc must be (9, H, W), got {tuple(assoc.shape)}")
    height, width = assoc.shape[1:]
    if height % cell or width % cell:
        raise ValueError(f"hard_labels: size {height}x{width} is not a multiple of the cell {cell}")
    choice = assoc.masked_fill(out_of_grid(height, width, cell, assoc.device), -1.0).argmax(dim=0).cpu().numpy()
    offsets = np.asarray(ASSOC_OFFSETS, dtype=np.int64)  # (9, 2): (dy, dx)
    rows = np.arange(height)[:, None] // cell + offsets[choice, 0]
    cols = np.arange(width)[None, :] // cell + offsets[choice, 1]
    return (rows * (width // cell) + cols).astype(np.int32)


def grid_labels(height: int, width: int, cell: int) -> np.ndarray:
    """``(height, width)`` int32 ids of the regular grid of ``cell``-px cells laid from the top-left corner (the
    last row and column of cells cut by the image border): ``row · ceil(width/cell) + col``."""
    columns = -(-width // cell)
    return ((np.arange(height)[:, None] // cell) * columns + np.arange(width)[None, :] // cell).astype(np.int32)


def grid_cell_count(height: int, width: int, cell: int) -> int:
    """Cells of :func:`grid_labels` on an image of ``height × width``."""
    return -(-height // cell) * -(-width // cell)


def slic_labels(image: np.ndarray, count: int, compactness: float = 10.0) -> np.ndarray:
    """``(H, W)`` int32 SLIC superpixels (scikit-image, ``n_segments = count``, CIELAB, ``start_label = 0``) of an
    ``(H, W, 3)`` uint8 RGB image. SLIC returns about ``count`` superpixels, not exactly."""
    from skimage.segmentation import slic

    return slic(image, n_segments=int(count), compactness=float(compactness), start_label=0).astype(np.int32)


# ------------------------------------------------------------------ measures
def boundary_map(labels: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels whose right or bottom neighbour has another label."""
    labels = np.asarray(labels)
    boundary = np.zeros(labels.shape, dtype=bool)
    boundary[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    boundary[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return boundary


def fill_void(gt: np.ndarray) -> np.ndarray:
    """``gt`` with every void (255) pixel given the label of its nearest labelled pixel (all void: unchanged)."""
    void = np.asarray(gt) == VOID
    if not void.any() or void.all():
        return np.asarray(gt)
    _, (rows, cols) = ndimage.distance_transform_edt(void, return_indices=True)
    return np.asarray(gt)[rows, cols]


def boundary_recall_counts(superpixels: np.ndarray, gt: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE,
                           ) -> tuple[int, int]:
    """``(recalled, total)`` ground-truth boundary pixels (module docstring) of one image."""
    truth = boundary_map(fill_void(gt))
    size = 2 * int(tolerance) + 1
    near = ndimage.binary_dilation(boundary_map(superpixels), structure=np.ones((size, size), dtype=bool))
    return int((truth & near).sum()), int(truth.sum())


def overlaps(superpixels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(superpixels, segments)`` int64 table of ``|S∩G|`` over the non-void pixels (empty rows and columns dropped)."""
    valid = np.asarray(gt) != VOID
    _, sp = np.unique(np.asarray(superpixels)[valid], return_inverse=True)
    _, seg = np.unique(np.asarray(gt)[valid], return_inverse=True)
    if sp.size == 0:
        return np.zeros((0, 0), dtype=np.int64)
    columns = int(seg.max()) + 1
    table = np.bincount(sp.ravel() * columns + seg.ravel(), minlength=(int(sp.max()) + 1) * columns)
    return table.reshape(-1, columns).astype(np.int64)


def undersegmentation_sum(table: np.ndarray) -> int:
    """``Σ_S Σ_{G: |S∩G|>0} min(|S∩G|, |S \\ G|)`` of an :func:`overlaps` table (UE's numerator)."""
    outside = table.sum(axis=1, keepdims=True) - table
    return int(np.where(table > 0, np.minimum(table, outside), 0).sum())


def achievable_sum(table: np.ndarray) -> int:
    """``Σ_S max_G |S∩G|`` of an :func:`overlaps` table (ASA's numerator)."""
    return int(table.max(axis=1).sum()) if table.size else 0


class SuperpixelScorer:
    """Sums over images of BR, UE and ASA's numerators and denominators, and of the superpixel counts."""

    def __init__(self, tolerance: int = BOUNDARY_TOLERANCE) -> None:
        self.tolerance = tolerance
        self.recalled = self.boundary = self.leak = self.best = self.pixels = self.superpixels = self.images = 0
        self.edge_pixels = self.all_pixels = 0

    def add(self, superpixels: np.ndarray, gt: np.ndarray) -> None:
        """One image: ``superpixels`` ``(H, W)`` ids, ``gt`` ``(H, W)`` labels (255 void) of the same size."""
        if np.shape(superpixels) != np.shape(gt):
            raise ValueError(f"SuperpixelScorer: superpixels {np.shape(superpixels)} and ground truth {np.shape(gt)} differ")
        recalled, boundary = boundary_recall_counts(superpixels, gt, self.tolerance)
        table = overlaps(superpixels, gt)
        self.recalled += recalled
        self.boundary += boundary
        self.leak += undersegmentation_sum(table)
        self.best += achievable_sum(table)
        self.pixels += int(table.sum())
        self.superpixels += int(np.unique(superpixels).size)
        self.edge_pixels += int(boundary_map(superpixels).sum())
        self.all_pixels += int(np.size(superpixels))
        self.images += 1

    def record(self) -> dict:
        """``{boundary_recall, undersegmentation_error, asa}`` in percent (NaN without pixels), the mean
        ``superpixels_per_image``, ``boundary_pixels`` (percent of all pixels that are superpixel boundary pixels:
        ragged superpixels buy boundary recall with more of them), ``n_images``."""
        def percent(numerator: int, denominator: int) -> float:
            return 100.0 * numerator / denominator if denominator else float("nan")

        return {"boundary_recall": percent(self.recalled, self.boundary),
                "undersegmentation_error": percent(self.leak, self.pixels),
                "asa": percent(self.best, self.pixels),
                "superpixels_per_image": self.superpixels / self.images if self.images else float("nan"),
                "boundary_pixels": percent(self.edge_pixels, self.all_pixels),
                "n_images": self.images}
