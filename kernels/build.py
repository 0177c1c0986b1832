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
#: Architectures of a cuda build made where no GPU is visible (override with TORCH_CUDA_ARCH_LIST).
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0+PTX"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so a build
    killed during the write leaves either the old stamp or none, never a partial one (DESIGN §6)."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.write_text(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    # The C++ standard is left to torch (it passes the one its headers need, C++20 for torch >= 2.10);
    # forcing an older one here would override it. ``-ffp-contract=fast`` lets GCC fuse multiply-adds,
    # which ISO mode (``-std=c++NN``) otherwise forbids.
    return {
        "extra_cflags": ["-O3", "-fopenmp", "-ffp-contract=fast"],
        "extra_ldflags": ["-fopenmp"],
        "extra_cuda_cflags": ["-O3", "--use_fast_math"],
    }


# Run in a fresh interpreter by :func:`build`: torch's JIT loader renames a second build of the same
# name in one process (``wsss_kernels_v1.so``) and loads every library it builds, so building the cpu
# and the cuda variant in one process would register the ops twice. A child process builds (and, as a
# check that the library links, loads) exactly one variant.
_BUILD_SCRIPT = """
import json, sys
from torch.utils import cpp_extension
spec = json.loads(sys.argv[1])
cpp_extension.load(is_python_module=False, **spec)
"""


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
        import torch

        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            # torch derives the architectures from the visible GPUs; with none (a login node building
            # for compute nodes) it would fail, so build for the common ones (CUDA 13 starts at sm_75).
            os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCHS
    build_dir = BUILD_ROOT / variant
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "sources.sha256"
    target = library_path(variant)
    with FileLock(str(build_dir / ".lock")):
        digest = sources_digest(cuda)
        if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            return target
        import json

        start = time.monotonic()
        spec = dict(name=LIB_NAME, sources=[str(p) for p in sources(cuda)], build_directory=str(build_dir),
                    with_cuda=cuda, verbose=verbose, **_common_flags())
        stamp.unlink(missing_ok=True)
        result = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, json.dumps(spec)],
                                capture_output=not verbose, text=True)
        if result.returncode != 0 or not target.exists():
            output = "" if verbose else (result.stdout + result.stderr)[-20000:]
            raise RuntimeError(f"kernels: building the {variant} library failed:\n{output}")
        write_atomic(stamp, digest + "\n")
        print(f"kernels: built {target} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return target


def _nvcc_check_command(nvcc: str, source: Path, obj: Path) -> list[str]:
    import sysconfig

    import torch
    from torch.utils import cpp_extension

    includes = [f"-I{p}" for p in cpp_extension.include_paths()] + [f"-I{CSRC}", f"-I{sysconfig.get_paths()['include']}"]
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    return [
        nvcc, "-c", str(source), "-o", str(obj), "-std=c++20", "-O3", "--use_fast_math",
        "-Xcompiler", "-fPIC", "-DTORCH_EXTENSION_NAME=" + LIB_NAME, f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        "--expt-relaxed-constexpr", "-gencode=arch=compute_90,code=sm_90", *includes,
    ]


def _local_includes(source: Path) -> list[Path]:
    """The ``#include "x"`` files of ``source`` found in csrc, transitively, sorted."""
    import re

    found: set[Path] = set()
    pending = [source]
    while pending:
        text = pending.pop().read_text(errors="replace")
        for name in re.findall(r'^\s*#\s*include\s*"([^"]+)"', text, flags=re.MULTILINE):
            path = CSRC / name
            if path.exists() and path not in found:
                found.add(path)
                pending.append(path)
    return sorted(found)


def check_cuda_sources(out_dir: Path | None = None, verbose: bool = False, jobs: int | None = None,
                       force: bool = False) -> list[Path]:
    """Compile each ``csrc/*.cu`` to an object file with nvcc and torch's headers; return the objects.

    Needs a CUDA toolkit, not a GPU. Files compile in parallel (``jobs``, default: all cores). An
    object is reused when it was compiled from exactly the same source, local headers
    (``#include "..."``, transitively), command, nvcc and torch (a digest stamp beside it), unless
    ``force``. A file lock serialises concurrent checks. Raises ``RuntimeError`` with nvcc's output
    on failure.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    home = find_cuda_home()
    if home is None:
        raise RuntimeError("no CUDA toolkit found (set CUDA_HOME to the folder holding bin/nvcc)")
    nvcc = str(Path(home) / "bin" / "nvcc")
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    out_dir = out_dir or (BUILD_ROOT / "cuda_check")
    out_dir.mkdir(parents=True, exist_ok=True)

    def compile_one(source: Path) -> Path:
        obj = out_dir / (source.stem + ".o")
        stamp = out_dir / (source.stem + ".o.sha256")
        cmd = _nvcc_check_command(nvcc, source, obj)
        local = b"".join(p.name.encode() + p.read_bytes() for p in _local_includes(source))
        key = hashlib.sha256(source.read_bytes() + local + " ".join(cmd).encode() + version.encode()
                             + torch.__version__.encode()).hexdigest()
        if not force and obj.exists() and stamp.exists() and stamp.read_text().strip() == key:
            return obj
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        stamp.unlink(missing_ok=True)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nvcc failed on {source.name}:\n{result.stdout}\n{result.stderr}")
        write_atomic(stamp, key + "\n")
        return obj

    from filelock import FileLock

    files = sorted(CSRC.glob("*.cu"))
    with FileLock(str(out_dir / ".lock")), ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        return list(pool.map(compile_one, files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: cpu always, plus cuda where a GPU and toolkit are present")
    parser.add_argument("--check-cuda", action="store_true", help="only compile the .cu sources with nvcc")
    parser.add_argument("--force", action="store_true", help="with --check-cuda: recompile unchanged sources too")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="with --check-cuda: parallel nvcc runs (default: all cores)")
    parser.add_argument("--stamp", type=Path, help="write a file listing the built libraries (for Snakemake)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.check_cuda:
        objects = check_cuda_sources(verbose=args.verbose, jobs=args.jobs, force=args.force)
        print(f"kernels: {len(objects)} CUDA sources compiled: {', '.join(o.name for o in objects)}")
        return 0
    variants = ["cpu"]
    if args.variant == "cuda" or (args.variant == "auto" and cuda_build_possible()):
        variants.append("cuda")
    built = [build(v, verbose=args.verbose) for v in variants]
    for path in built:
        print(f"kernels: {path}")
    if args.stamp:
        write_atomic(args.stamp, "".join(f"{p}\n" for p in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
