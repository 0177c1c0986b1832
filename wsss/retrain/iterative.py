"""Iteration-based training shared by the retraining stages (DeepLab, Mask R-CNN).

* Deterministic batches: :class:`BatchSchedule` fixes which samples form global
  batch ``i`` from ``(seed, i)`` alone (a fresh permutation per pass over the
  data); each sample's augmentation is seeded by ``(seed, epoch, index)``. So a
  run resumed from a checkpoint at iteration ``i`` sees exactly the batches an
  uninterrupted run would, and the result is identical on CPU.
* Resumable: :func:`run_training` saves model, optimizer, RNG state and history
  through a :class:`wsss.training.Checkpointer` every ``checkpoint_every``
  iterations (in the undeclared work folder) and starts from the last one.
* Several GPUs: launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment)
  the model is wrapped in ``DistributedDataParallel``; each rank takes its share
  of every global batch (``batch[rank::world_size]``), rank 0 writes checkpoints.
  One process (no ``WORLD_SIZE``) needs none of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from wsss.errors import WsssError
from wsss.progress import Progress
from wsss.training import Checkpointer, PolySGD


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU).

    Returns the context and this rank's device (``cuda:LOCAL_RANK`` on CUDA).
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext(), device
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, local), device


def teardown_distributed(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class BatchSchedule:
    """Global batches of sample indices for iterations ``start .. iterations-1`` (see the module docstring).

    A pass (epoch) has ``max(1, n // batch_size)`` batches of a fresh
    permutation seeded by ``(seed, epoch)`` (the last partial batch is dropped;
    with fewer samples than ``batch_size`` a batch is the permutation repeated
    to ``batch_size``), so every batch is full.
    Iterating yields, per iteration, this rank's keys ``[(epoch, index), ...]``.
    """

    def __init__(self, n: int, batch_size: int, iterations: int, seed: int, start: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if n <= 0:
            raise WsssError("training set is empty")
        if batch_size < world_size:
            raise WsssError(f"train.batch_size: {batch_size} is smaller than the number of processes ({world_size})")
        self.n, self.batch_size, self.iterations, self.seed = n, batch_size, iterations, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self.per_epoch = max(1, n // batch_size)
        self._perm: tuple[int, np.ndarray] | None = None

    def epoch_of(self, iteration: int) -> int:
        return iteration // self.per_epoch

    def global_batch(self, iteration: int) -> list[tuple[int, int]]:
        """Keys ``(epoch, index)`` of the whole batch of ``iteration``."""
        epoch, b = divmod(iteration, self.per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
        perm = self._perm[1]
        chosen = np.resize(perm, self.batch_size) if self.n < self.batch_size \
            else perm[b * self.batch_size:(b + 1) * self.batch_size]
        return [(epoch, int(i)) for i in chosen]

    def __len__(self) -> int:
        return max(0, self.iterations - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for iteration in range(self.start, self.iterations):
            yield self.global_batch(iteration)[self.rank::self.world_size]


def sample_rng(seed: int, key: tuple[int, int]) -> np.random.Generator:
    """The augmentation RNG of sample ``key = (epoch, index)``."""
    return np.random.default_rng([seed, key[0], key[1]])


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def run_training(
    model: nn.Module,
    optimizer: PolySGD,
    make_batches: Callable[[int], Iterable[Any]],
    step: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
    *,
    iterations: int,
    device: torch.device,
    ctx: DistContext = DistContext(),
    checkpointer: Checkpointer | None = None,
    checkpoint_every: int = 0,
    log_every: int = 10,
    grad_clip: float = 0.0,
    sync_bn: bool = False,
    desc: str = "train",
    on_step: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` (already on ``device``) for ``iterations`` steps, resuming from ``checkpointer``.

    Args:
        make_batches: ``start -> iterable`` of this rank's batches for iterations ``start..iterations-1``.
        step: ``(model, batch) -> {name: scalar loss}``; their sum is minimised.
        checkpoint_every: iterations between checkpoints (0: only at the end).
        log_every: iterations averaged into one ``history`` record.
        grad_clip: max gradient norm (0: no clipping).
        sync_bn: convert BatchNorm to SyncBatchNorm under DDP on CUDA.
        on_step: called with the number of finished iterations after each step (tests use it to interrupt).
    Returns ``history``: ``[{"iteration", "loss", <each loss>, "lr"}]``, one per ``log_every`` iterations.
    The model is left in train mode, unwrapped, on ``device``.
    """
    history: list[dict[str, float]] = []
    start = 0
    sums: dict[str, float] = {}  # the losses of the history record being summed, and how many steps it holds
    count = 0
    state = checkpointer.load(model) if checkpointer is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], device)
        history, start = state["history"], int(state["iteration"])
        window = state.get("window", {"sums": {}, "count": 0})  # checkpoints written before it was kept
        sums, count = dict(window["sums"]), int(window["count"])
        if ctx.is_main:
            print(f"[{desc}] resuming from iteration {start}/{iterations} ({checkpointer.path})", flush=True)
    if ctx.enabled:  # ranks draw different random numbers (dropout, proposal sampling), after a resume too
        torch.manual_seed(int(torch.initial_seed()) + 1000 * start + ctx.rank)
    trained = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        if sync_bn and device.type == "cuda":
            trained = nn.SyncBatchNorm.convert_sync_batchnorm(trained)
        trained = DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None)
    trained.train()

    def save(iteration: int) -> None:
        if checkpointer is not None and ctx.is_main:
            checkpointer.save({"model": _unwrap(trained).state_dict(), "optimizer": optimizer.state_dict(),
                               "rng": _rng_state(device), "history": history, "iteration": iteration,
                               "window": {"sums": dict(sums), "count": count}})

    progress = Progress(total=iterations, desc=desc, unit="iters") if ctx.is_main else None
    if progress is not None:
        progress.count = start
    iteration = start
    for batch in make_batches(start):
        losses = step(trained, batch)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise WsssError(f"{desc}: loss became {float(total)} at iteration {iteration + 1} "
                            f"(lower train.lr or set train.grad_clip)")
        optimizer.zero_grad()
        total.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trained.parameters(), grad_clip)
        optimizer.step()
        lr = optimizer.optimizer.param_groups[0]["lr"]
        iteration += 1
        count += 1
        for name, value in {"loss": total, **losses}.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        if count == log_every or iteration == iterations:
            history.append({"iteration": iteration, **{k: v / count for k, v in sums.items()}, "lr": lr})
            sums, count = {}, 0
        if progress is not None:
            progress.update(postfix=f"loss {float(total.detach()):.4f}")
        if checkpoint_every and iteration % checkpoint_every == 0 and iteration < iterations:
            save(iteration)
        if on_step is not None:
            on_step(iteration)
    if progress is not None:
        progress.close()
    save(iteration)
    return history


class WarmupPolySGD(PolySGD):
    """:class:`PolySGD` whose learning rate ramps linearly from ``warmup_factor·lr`` to the poly value over
    the first ``warmup_steps`` steps (detection training from scratch diverges without it)."""

    def __init__(self, groups, lr: float, total_steps: int, momentum: float = 0.9, weight_decay: float = 1e-4,
                 power: float = 0.9, warmup_steps: int = 0, warmup_factor: float = 0.001) -> None:
        super().__init__(groups, lr, total_steps, momentum, weight_decay, power)
        self.warmup_steps = warmup_steps
        self.warmup_factor = warmup_factor

    def step(self) -> None:
        scale = (1.0 - min(self.step_count, self.total_steps - 1) / self.total_steps) ** self.power
        if self.step_count < self.warmup_steps:
            alpha = self.step_count / self.warmup_steps
            scale *= self.warmup_factor * (1.0 - alpha) + alpha
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * group["lr_mult"] * scale
        self.optimizer.step()
        self.step_count += 1
