"""Training utilities shared by every training stage: seeding, device, SGD with a poly schedule."""

from __future__ import annotations

import os
import random
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from wsss.errors import WsssError


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
    count = num_threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, count))


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


class Checkpointer:
    """Resumable training state in an undeclared work folder (Snakemake wipes declared outputs).

    ``fingerprint`` identifies the run's config; a checkpoint with another
    fingerprint is ignored, so a changed config starts afresh.
    """

    def __init__(self, work_dir: str | os.PathLike | None, fingerprint: str) -> None:
        from pathlib import Path

        self.path = Path(work_dir) / "checkpoint.pt" if work_dir else None
        self.fingerprint = fingerprint

    def load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception:
            return None
        return state if state.get("fingerprint") == self.fingerprint else None

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        from wsss.io import save_torch

        save_torch(self.path, {**state, "fingerprint": self.fingerprint})

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
