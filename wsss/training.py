"""Training utilities shared by every training stage: seeding, device, SGD with a poly schedule, checkpoints,
the resumable epoch loop."""

from __future__ import annotations

import os
import random
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from wsss.errors import WsssError
from wsss.parallel import thread_count
from wsss.progress import Progress


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch Generator for data order."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def configure_threads(num_threads: int) -> None:
    """``num_threads`` CPU threads for torch (0 = all cores the process may use)."""
    torch.set_num_threads(thread_count(num_threads))


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available else CPU; ``cpu``; ``cuda``/``cuda:N`` (error if absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise WsssError(f"device: '{name}' requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise WsssError(f"device: unknown device '{name}'") from None


PRECISIONS = ("auto", "fp32", "bf16")
_NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 in hardware (an ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``,
    or ``cpuinfo`` when given). Elsewhere oneDNN emulates bf16, slower than fp32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return any(flag in flags for flag in _NATIVE_BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: torch.device, key: str = "train.precision") -> torch.dtype | None:
    """The autocast dtype of a training forward pass (None: fp32, no autocast).

    ``fp32`` → None; ``bf16`` → bfloat16; ``auto`` → bfloat16 where the device computes it natively (a CUDA
    GPU that supports it, a CPU with :func:`cpu_has_native_bf16`), else None. Weights, gradients and the
    optimizer stay fp32 (mixed precision); on this repo's 2-core avx512_bf16 CPU a classifier step takes
    ~0.6x the time of fp32. Anything else is a one-line :class:`WsssError` naming ``key``."""
    if precision not in PRECISIONS:
        raise WsssError(f"{key}: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


class PolySGD:
    """SGD with real momentum and a poly learning-rate decay ``lr·(1 − step/total)^power``.

    Param groups carry an ``lr_mult`` (e.g. 1 for the pretrained trunk, 10 for new
    heads). Unlike the seeds' ``PolyOptimizer`` (which passes weight decay in the
    momentum slot), momentum here is really ``momentum``.
    """

    def __init__(
        self,
        groups: Sequence[tuple[Iterable[nn.Parameter], float]],
        lr: float,
        total_steps: int,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        power: float = 0.9,
    ) -> None:
        param_groups = [
            {"params": [p for p in params if p.requires_grad], "lr": lr * mult, "lr_mult": mult}
            for params, mult in groups
        ]
        self.optimizer = torch.optim.SGD(param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.base_lr = lr
        self.total_steps = max(1, total_steps)
        self.power = power
        self.step_count = 0

    def step(self) -> None:
        scale = (1.0 - min(self.step_count, self.total_steps - 1) / self.total_steps) ** self.power
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * group["lr_mult"] * scale
        self.optimizer.step()
        self.step_count += 1

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = state["step_count"]


class PolyAdam(PolySGD):
    """:class:`PolySGD`'s param groups and poly decay driving Adam; ``momentum`` is Adam's β₁ (β₂ = 0.999) and
    ``weight_decay`` its L2 term (MSA's superpixel network, SpixelFCN: Adam)."""

    def __init__(self, groups, lr: float, total_steps: int, momentum: float = 0.9, weight_decay: float = 0.0,
                 power: float = 0.9) -> None:
        super().__init__(groups, lr, total_steps, 0.0, weight_decay, power)
        self.optimizer = torch.optim.Adam(self.optimizer.param_groups, lr=lr, betas=(momentum, 0.999),
                                          weight_decay=weight_decay)


class Checkpointer:
    """Resumable training state in an undeclared work folder (Snakemake wipes declared outputs).

    ``fingerprint`` identifies the run's config (:func:`wsss.config.checkpoint_fingerprint`: the config
    hash without ``num_threads``). A checkpoint that cannot be used (unreadable, truncated, written by
    another config, not fitting the model) is reported in one line naming the file and why, and training
    restarts from scratch. :meth:`save` writes through a temporary name and a rename, so a run killed
    during the write keeps the previous checkpoint.
    """

    def __init__(self, work_dir: str | os.PathLike | None, fingerprint: str, stream: Any = None) -> None:
        from pathlib import Path

        self.path = Path(work_dir) / "checkpoint.pt" if work_dir else None
        self.fingerprint = fingerprint
        self.stream = stream
        #: why the last :meth:`load` ignored the checkpoint (None: it was used, or there was none)
        self.rejected: str | None = None

    def _problem_reading(self, exc: BaseException) -> str:
        import zipfile

        size = self.path.stat().st_size
        if size == 0:
            return "truncated (empty file)"
        if not zipfile.is_zipfile(self.path):
            # torch.save writes a zip archive whose directory is at the end: without it the write was cut short
            with open(self.path, "rb") as handle:
                starts_as_zip = handle.read(4) == b"PK\x03\x04"
            if starts_as_zip:
                return f"truncated ({size} bytes, no zip directory at the end)"
            return f"corrupt (not a torch checkpoint: {_first_line(exc)})"
        return f"corrupt ({_first_line(exc)})"

    def _check(self, state: Any, model: nn.Module | None) -> str | None:
        if not isinstance(state, dict) or "fingerprint" not in state:
            return "corrupt (not a training checkpoint: no config fingerprint)"
        if state["fingerprint"] != self.fingerprint:
            return (f"config mismatch (written by config {state['fingerprint']}, this run is {self.fingerprint})")
        if model is not None:
            saved = state.get("model")
            if not isinstance(saved, dict):
                return "corrupt (no model weights)"
            expected = model.state_dict()
            missing = sorted(set(expected) - set(saved))
            extra = sorted(set(saved) - set(expected))
            if missing or extra:
                name = (missing or extra)[0]
                return f"does not fit the model ({'missing' if missing else 'unexpected'} weight '{name}')"
            for name, tensor in expected.items():
                if tuple(saved[name].shape) != tuple(tensor.shape):
                    return (f"does not fit the model (weight '{name}' has shape {tuple(saved[name].shape)}, "
                            f"the model {tuple(tensor.shape)})")
        return None

    def load(self, model: nn.Module | None = None) -> dict | None:
        """The saved state, or None (no checkpoint, or one that cannot be used: reported in one line).

        ``model``: check that the saved weights have its names and shapes before they are loaded.
        """
        self.rejected = None
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a bad file
            problem = self._problem_reading(exc)
        else:
            problem = self._check(state, model)
        if problem is None:
            return state
        self.rejected = problem
        print(f"checkpoint {self.path}: {problem}; ignored, training restarts from scratch",
              file=self.stream or sys.stderr, flush=True)
        return None

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        from wsss.io import save_torch

        save_torch(self.path, {**state, "fingerprint": self.fingerprint})

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""  # torch appends paragraphs of advice
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclass
class EpochSchedule:
    """The fields of a training config that :func:`train_epochs` reads (the classifier's and AffinityNet's extend it)."""

    epochs: int
    batch_size: int
    lr: float
    head_lr_mult: float
    momentum: float
    weight_decay: float
    #: ``auto`` | ``fp32`` | ``bf16`` (:func:`resolve_precision`); keyword-only, so subclasses add required fields
    precision: str = field(kw_only=True)


def train_epochs(
    model: nn.Module,
    samples: Dataset,
    step: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    summarize: Callable[[dict[str, float]], dict[str, float]],
    settings: EpochSchedule,
    seed: int,
    checkpointer: Checkpointer | None,
    desc: str,
    validate: Callable[[], dict[str, float]] | None = None,
    optimizer_class: type[PolySGD] = PolySGD,
) -> list[dict]:
    """Epoch-based training, resumable from ``checkpointer`` (the classifier's and AffinityNet's loop).

    Batches of ``samples`` (a dataset whose ``epoch`` attribute seeds its augmentation) come
    shuffled by a generator seeded with ``seed`` and saved in the checkpoint; ``optimizer_class`` (:class:`PolySGD`,
    or :class:`PolyAdam`) over ``model.param_groups()`` (trunk ×1, head ×``head_lr_mult``). ``step(batch)`` returns
    the loss to minimise and numbers to sum over the epoch, and runs under autocast at ``settings.precision``
    (:func:`resolve_precision`; ``step`` casts what the model returns to float32 before its loss, and the
    backward pass runs outside autocast); ``summarize(sums)`` turns those
    sums into the epoch's ``history`` record (after ``"epoch"``, before ``"lr"``: the learning rate of the
    epoch's last step, the trunk group's). ``validate()`` (optional) scores the model after every epoch (in
    eval mode, under the same autocast; train mode is restored); its numbers go under the record's ``"val"`` key. A checkpoint
    ``{model, optimizer, generator, history, epoch}`` is saved after every epoch.
    Returns ``history``; the model is left in train mode.
    """
    device = next(model.parameters()).device
    autocast_dtype = resolve_precision(settings.precision, device)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(samples, batch_size=settings.batch_size, shuffle=True,
                        drop_last=len(samples) > settings.batch_size, generator=generator, num_workers=0)
    total_steps = settings.epochs * len(loader)
    trunk, head = model.param_groups()
    optimizer = optimizer_class([(trunk, 1.0), (head, settings.head_lr_mult)], settings.lr, total_steps,
                                settings.momentum, settings.weight_decay)
    history: list[dict] = []
    start_epoch = 0
    state = checkpointer.load(model) if checkpointer else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
        print(f"[{desc}] resuming from epoch {start_epoch}/{settings.epochs} ({checkpointer.path})", flush=True)
    progress = Progress(total=total_steps, desc=desc, unit="batches", initial=start_epoch * len(loader))
    for epoch in range(start_epoch, settings.epochs):
        samples.epoch = epoch
        model.train()
        sums: dict[str, float] = {}
        for batch in loader:
            with torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext():
                loss, numbers = step(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for name, value in numbers.items():
                sums[name] = sums.get(name, 0) + value
            progress.update(postfix=f"epoch {epoch + 1}/{settings.epochs} loss {loss.item():.4f}")
        # the learning rate of the epoch's last step (the trunk group's; the head's is head_lr_mult times it)
        record = {"epoch": epoch + 1, **summarize(sums), "lr": optimizer.optimizer.param_groups[0]["lr"]}
        if validate is not None:
            model.eval()
            with torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext():
                record["val"] = validate()
            model.train()
        history.append(record)
        if checkpointer:
            checkpointer.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "generator": generator.get_state(), "history": history, "epoch": epoch + 1})
    progress.close()
    return history
