"""Build the compiled propagation kernels once: ``python -m kernels.build``.

All ``kernels/csrc/*.cpp`` files (and, for a CUDA build, ``*.cu``) are compiled
into one shared library ``kernels/_build/<variant>/wsss_kernels.so`` that
registers its ops in the ``torch.ops.wsss`` namespace (each source file uses
``TORCH_LIBRARY_FRAGMENT(wsss, m)`` / ``TORCH_LIBRARY_IMPL(wsss, CPU|CUDA, m)``).

Variants: ``cpu`` (always) and ``cuda`` (when torch has CUDA, a device is present
and a CUDA toolkit is found through ``CUDA_HOME``). The Snakemake rule
``build_kernels`` runs this before any stage that propagates labels; stages only
load the library (:func:`kernels.load`) and never compile just-in-time.

``python -m kernels.build --check-cuda`` compiles every ``.cu`` file to an object
file with nvcc (no GPU needed) to prove the CUDA sources build with this torch.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

KERNELS_DIR = Path(__file__).resolve().parent
CSRC = KERNELS_DIR / "csrc"
BUILD_ROOT = KERNELS_DIR / "_build"
LIB_NAME = "wsss_kernels"


def sources(cuda: bool) -> list[Path]:
    """The C++ (and with ``cuda`` also the CUDA) source files of the library."""
    files = sorted(CSRC.glob("*.cpp"))
    if cuda:
        files += sorted(CSRC.glob("*.cu"))
    return files


def sources_digest(cuda: bool) -> str:
    """Hash of every source and header: a built library records it to detect staleness."""
    digest = hashlib.sha256()
    for path in sorted(sources(cuda) + sorted(CSRC.glob("*.h")) + sorted(CSRC.glob("*.cuh"))):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def library_path(variant: str) -> Path:
    return BUILD_ROOT / variant / f"{LIB_NAME}.so"


def find_cuda_home() -> str | None:
    """The CUDA toolkit root holding ``bin/nvcc`` (``CUDA_HOME``/``CUDA_PATH`` or the ``nvcc`` on PATH)."""
    for key in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(key)
        if home and (Path(home) / "bin" / "nvcc").exists():
            return home
    for candidate in ("/usr/local/cuda",):
        if (Path(candidate) / "bin" / "nvcc").exists():
            return candidate
    nvcc = shutil.which("nvcc")
    if nvcc:
        return str(Path(nvcc).resolve().parent.parent)
    return None


def cuda_build_possible() -> bool:
    import torch

    return torch.version.cuda is not None and torch.cuda.is_available() and find_cuda_home() is not None


def _common_flags() -> dict:
    return {
        "extra_cflags": ["-O3", "-fopenmp", "-std=c++17"],
        "extra_ldflags": ["-fopenmp"],
        "extra_cuda_cflags": ["-O3", "--use_fast_math", "-std=c++17"],
    }


def build(variant: str = "cpu", verbose: bool = False) -> Path:
    """Compile the library for ``variant`` (``cpu`` or ``cuda``) if stale; return its path.

    A file lock serialises concurrent builds of the same variant.
    """
    from filelock import FileLock

    cuda = variant == "cuda"
    if cuda:
        home = find_cuda_home()
        if home is None:
            raise RuntimeError("cuda build requested but no CUDA toolkit found (set CUDA_HOME)")
        os.environ["CUDA_HOME"] = home
    build_dir = BUILD_ROOT / variant
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "sources.sha256"
    target = library_path(variant)
    digest = sources_digest(cuda)
    with FileLock(str(build_dir / ".lock")):
        if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            return target
        from torch.utils import cpp_extension

        start = time.monotonic()
        cpp_extension.load(
            name=LIB_NAME,
            sources=[str(p) for p in sources(cuda)],
            build_directory=str(build_dir),
            is_python_module=False,
            with_cuda=cuda,
            verbose=verbose,
            **_common_flags(),
        )
        stamp.write_text(digest + "\n")
        print(f"kernels: built {target} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return target


def check_cuda_sources(out_dir: Path | None = None, verbose: bool = False) -> list[Path]:
    """Compile each ``csrc/*.cu`` to an object file with nvcc and torch's headers; return the objects.

    Needs a CUDA toolkit, not a GPU. Raises ``RuntimeError`` with nvcc's output on failure.
    """
    from torch.utils import cpp_extension

    home = find_cuda_home()
    if home is None:
        raise RuntimeError("no CUDA toolkit found (set CUDA_HOME to the folder holding bin/nvcc)")
    nvcc = str(Path(home) / "bin" / "nvcc")
    out_dir = out_dir or (BUILD_ROOT / "cuda_check")
    out_dir.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{p}" for p in cpp_extension.include_paths()] + [f"-I{CSRC}"]
    import sysconfig

    includes.append(f"-I{sysconfig.get_paths()['include']}")
    objects = []
    for source in sorted(CSRC.glob("*.cu")):
        obj = out_dir / (source.stem + ".o")
        cmd = [
            nvcc, "-c", str(source), "-o", str(obj), "-std=c++17", "-O3", "--use_fast_math",
            "-Xcompiler", "-fPIC", "-DTORCH_EXTENSION_NAME=" + LIB_NAME,
            "-D_GLIBCXX_USE_CXX11_ABI=1", "--expt-relaxed-constexpr",
            "-gencode=arch=compute_90,code=sm_90", *includes,
        ]
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nvcc failed on {source.name}:\n{result.stdout}\n{result.stderr}")
        objects.append(obj)
    return objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: cpu always, plus cuda where a GPU and toolkit are present")
    parser.add_argument("--check-cuda", action="store_true", help="only compile the .cu sources with nvcc")
    parser.add_argument("--stamp", type=Path, help="write a file listing the built libraries (for Snakemake)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.check_cuda:
        objects = check_cuda_sources(verbose=args.verbose)
        print(f"kernels: {len(objects)} CUDA sources compiled: {', '.join(o.name for o in objects)}")
        return 0
    variants = ["cpu"]
    if args.variant == "cuda" or (args.variant == "auto" and cuda_build_possible()):
        variants.append("cuda")
    built = [build(v, verbose=args.verbose) for v in variants]
    for path in built:
        print(f"kernels: {path}")
    if args.stamp:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text("".join(f"{p}\n" for p in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
