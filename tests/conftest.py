"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def kernels_built() -> str:
    """Build (if stale) and load the CPU kernel library once per test session; returns the variant."""
    from kernels.build import build
    from kernels._loader import load_library

    build("cpu")
    return load_library()
