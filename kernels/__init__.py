"""Compiled propagation kernels (C++ CPU + CUDA) shared by every propagation stage.

Build once with ``python -m kernels.build`` (Snakemake rule ``build_kernels``);
the functions below load the library on first use. Each op has a float64
PyTorch reference in :mod:`kernels.reference` used by the tests, and
``python -m kernels.bench`` compares them with the papers' algorithms.
"""
