"""Input checks and dispatch shared by the kernel wrappers: one-line ``ValueError`` on bad input."""

from __future__ import annotations

import operator

import torch

from wsss.errors import WsssError

FLOAT_DTYPES = (torch.float32, torch.float64)


def check_tensor(op: str, name: str, tensor: object, ndim: int, dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES) -> None:
    """Raise ``ValueError`` unless ``tensor`` is a ``ndim``-D tensor of one of ``dtypes``."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {tuple(tensor.shape)}")
    if tensor.dtype not in dtypes:
        names = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise ValueError(f"{op}: {name} must be {names}, got {str(tensor.dtype).replace('torch.', '')}")


def check_finite(op: str, name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` when a float ``tensor`` holds NaN or inf (the ops would spread them silently)."""
    if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{op}: {name} holds NaN or inf values")


def check_same(op: str, reference_name: str, reference: torch.Tensor, name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``tensor`` has the dtype and device of ``reference``."""
    if tensor.dtype != reference.dtype:
        raise ValueError(f"{op}: {name} is {tensor.dtype} but {reference_name} is {reference.dtype}")
    if tensor.device != reference.device:
        raise ValueError(f"{op}: {name} is on {tensor.device} but {reference_name} is on {reference.device}")


def check_int(op: str, name: str, value: object, minimum: int) -> int:
    """``value`` as an ``int`` (bools and floats rejected), at least ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"{op}: {name} must be an integer, got {value!r}")
    try:
        result = operator.index(value)
    except TypeError:
        raise ValueError(f"{op}: {name} must be an integer, got {value!r}") from None
    if result < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {result}")
    return result


def check_positive_float(op: str, name: str, value: object) -> float:
    """``value`` as a finite ``float`` > 0."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {name} must be a number, got {value!r}") from None
    if not (result > 0 and result < float("inf")):
        raise ValueError(f"{op}: {name} must be finite and > 0, got {value!r}")
    return result


def compiled_ops(op: str, *tensors: torch.Tensor):
    """``torch.ops.wsss`` after loading the prebuilt library; checks it can serve the tensors' device."""
    from kernels._loader import load_library

    variant = load_library()
    for tensor in tensors:
        if tensor.device.type == "cuda":
            if variant != "cuda":
                raise WsssError(f"{op}: CUDA tensors need the cuda kernel build: run `python -m kernels.build --variant cuda`")
        elif tensor.device.type != "cpu":
            raise ValueError(f"{op}: tensors on {tensor.device} are not supported (cpu or cuda only)")
    return torch.ops.wsss
