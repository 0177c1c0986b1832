"""Loads the prebuilt kernel library into ``torch.ops.wsss`` (never compiles)."""

from __future__ import annotations

import functools

import torch

from wsss.errors import WsssError


@functools.cache
def load_library() -> str:
    """Load the CUDA variant when built and a GPU is present, else the CPU variant; return the variant.

    Raises :class:`WsssError` if the library is missing or older than its sources.
    """
    # Imported here, not at module level: ``kernels/__init__`` imports this module, and a module-level
    # import would load ``kernels.build`` before ``python -m kernels.build`` runs it as ``__main__``.
    from kernels.build import library_path, sources_digest

    candidates = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    for variant in candidates:
        path = library_path(variant)
        if not path.exists():
            continue
        stamp = path.parent / "sources.sha256"
        if not stamp.exists() or stamp.read_text().strip() != sources_digest(variant == "cuda"):
            raise WsssError(f"{path}: compiled kernels are older than kernels/csrc: run `python -m kernels.build`")
        torch.ops.load_library(str(path))
        return variant
    raise WsssError(f"{library_path('cpu')}: compiled kernels not built: run `python -m kernels.build`")
