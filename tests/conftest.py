"""Shared fixtures, and the order in which the test files start.

CI runs the suite on two pytest-xdist workers, one test file at a time each (``-n 2 --dist loadfile
--no-loadscope-reorder``, see ``.ci/run``). The files that take longest start first, so that neither
worker is left with one of them at the end while the other idles.
"""

from __future__ import annotations

import os

import pytest

#: two workers share two cores: a waiting OpenMP thread sleeps instead of spinning on the other's core
#: (inherited by every stage and Snakemake job a test starts; results do not depend on it)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: the longest test files (minutes each on two cores), started first in this order
LONGEST_FIRST = ("test_crash_resume.py", "test_pipeline_dag.py", "test_slurm.py", "test_pipeline_coco.py",
                 "test_kernels_cuda_build.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests of the ``LONGEST_FIRST`` files to the front, keeping every other order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the other files is kept


@pytest.fixture(scope="session")
def kernels_built() -> str:
    """Build (if stale) and load the CPU kernel library once per test session; returns the variant."""
    from kernels.build import build
    from kernels._loader import load_library

    build("cpu")
    return load_library()
