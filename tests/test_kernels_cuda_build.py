"""The kernel build system: CUDA sources compile with nvcc, the loader refuses missing or stale builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernels import build as kbuild
from kernels import _loader
from wsss.errors import WsssError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_cuda_sources_compile_with_nvcc():
    """``python -m kernels.build --check-cuda`` compiles every csrc/*.cu (needs nvcc, not a GPU)."""
    if kbuild.find_cuda_home() is None:
        pytest.skip("no CUDA toolkit (nvcc) on this machine")
    cu_files = sorted(p.name for p in kbuild.CSRC.glob("*.cu"))
    if not cu_files:
        pytest.skip("no .cu sources")
    result = subprocess.run([sys.executable, "-m", "kernels.build", "--check-cuda"], cwd=REPO, capture_output=True,
                            text=True, timeout=590)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(cu_files)} CUDA sources compiled (one translation unit): {', '.join(cu_files)}" in result.stdout
    unity = (kbuild.BUILD_ROOT / "cuda_check" / "unity_cuda.cu").read_text()
    assert all(f'#include "{kbuild.CSRC / name}"' in unity for name in cu_files)  # what the CUDA build compiles
    assert (kbuild.BUILD_ROOT / "cuda_check" / "unity_cuda.o").stat().st_size > 0


def test_check_cuda_without_toolkit_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kbuild, "find_cuda_home", lambda: None)
    with pytest.raises(RuntimeError, match="no CUDA toolkit found"):
        kbuild.check_cuda_sources()
    with pytest.raises(RuntimeError, match="no CUDA toolkit found"):
        kbuild.build("cuda")
    assert not kbuild.cuda_build_possible()


def test_build_is_a_no_op_when_up_to_date(kernels_built):
    target = kbuild.library_path("cpu")
    before = target.stat().st_mtime_ns
    assert kbuild.build("cpu") == target
    assert target.stat().st_mtime_ns == before


def test_loader_refuses_missing_and_stale_libraries(monkeypatch, tmp_path):
    load = _loader.load_library.__wrapped__  # bypass the per-process cache
    monkeypatch.setattr(_loader.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(kbuild, "library_path", lambda variant: tmp_path / variant / "wsss_kernels.so")
    with pytest.raises(WsssError, match=r"not built: run `python -m kernels.build`"):
        load()
    library = tmp_path / "cpu" / "wsss_kernels.so"
    library.parent.mkdir()
    library.write_bytes(b"")
    (library.parent / "sources.sha256").write_text("0123456789abcdef\n")
    with pytest.raises(WsssError, match="older than kernels/csrc"):
        load()
