"""Compiled propagation kernels (C++ CPU + CUDA) shared by every propagation stage.

Build once with ``python -m kernels.build`` (Snakemake rule ``build_kernels``);
the functions below load the library on first use. Each op has a float64
PyTorch reference in :mod:`kernels.reference` used by the tests, and
``python -m kernels.bench`` compares them with the papers' algorithms.
"""

from kernels._loader import load_library as load
from kernels.local_propagation import local_propagation
from kernels.random_walk import direction_offsets, pair_affinity_from_features, random_walk
from kernels.superpixel import superpixel_pool, superpixel_upsample
from kernels.tree import grid_mst, minimax_propagation, minimax_propagation_apro_reference, tree_filter
from kernels.window import window_aggregate, window_dot, window_self_dot, window_transpose
