"""Training checkpoints: an unusable one is reported in one line naming the file and why, then training restarts;
the fingerprint ignores ``num_threads``; writes are atomic."""

from __future__ import annotations

import io
import os
import struct

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from wsss.config import checkpoint_fingerprint, compose, config_hash
from wsss.training import Checkpointer, EpochSchedule, train_epochs


class _Tiny(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.trunk = nn.Linear(4, width)
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        return self.head(torch.relu(self.trunk(x)))

    def param_groups(self):
        return list(self.trunk.parameters()), list(self.head.parameters())


class _Samples(Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(12, 4, generator=generator)
        self.y = self.x.sum(1, keepdim=True)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


_SCHEDULE = EpochSchedule(epochs=3, batch_size=4, lr=0.05, head_lr_mult=1.0, momentum=0.9, weight_decay=0.0,
                          precision="fp32")


def _train(checkpointer: Checkpointer | None, width: int = 3, epochs: int = 3, stop_at: int | None = None):
    """Train the tiny model; ``stop_at``: interrupt before that batch (0-based, 3 batches an epoch)."""
    torch.manual_seed(0)
    model = _Tiny(width)
    calls = []

    def step(batch):
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        calls.append(1)
        x, y = batch
        loss = ((model(x) - y) ** 2).mean()
        return loss, {"loss": loss.item()}

    schedule = EpochSchedule(**{**_SCHEDULE.__dict__, "epochs": epochs})
    history = train_epochs(model, _Samples(), step, lambda sums: sums, schedule, 0, checkpointer, "tiny")
    return model, history


def _valid_checkpoint(tmp_path, fingerprint: str = "abc") -> Checkpointer:
    checkpointer = Checkpointer(tmp_path, fingerprint)
    with pytest.raises(KeyboardInterrupt):
        _train(checkpointer, stop_at=4)  # killed in epoch 2: the checkpoint of epoch 1 stays
    assert checkpointer.path.stat().st_size > 0
    return checkpointer


def _one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_valid_checkpoint_is_used_silently(tmp_path, capsys):
    checkpointer = _valid_checkpoint(tmp_path)
    capsys.readouterr()
    assert checkpointer.load(_Tiny())["epoch"] == 1
    assert capsys.readouterr().err == "" and checkpointer.rejected is None


@pytest.mark.parametrize("damage, why", [
    ("empty", "truncated (empty file)"),
    ("truncate", "truncated"),
    ("garbage", "corrupt (not a torch checkpoint"),
    ("flip", "corrupt"),
])
def test_damaged_checkpoint_is_reported_in_one_line(tmp_path, capsys, damage, why):
    checkpointer = _valid_checkpoint(tmp_path)
    data = checkpointer.path.read_bytes()
    if damage == "empty":
        data = b""
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = b"this is not a checkpoint\n" * 10
    else:  # a byte of the pickled state changed: the zip's CRC check fails
        header = data.index(b"PK\x03\x04")  # the first entry, data.pkl: its payload follows the local header
        name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
        position = header + 30 + name_length + extra_length + 10
        data = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]
    checkpointer.path.write_bytes(data)
    capsys.readouterr()
    assert checkpointer.load(_Tiny()) is None
    line = _one_line(capsys)
    assert line.startswith(f"checkpoint {checkpointer.path}: {why}") and "restarts from scratch" in line


def test_checkpoint_of_another_config_is_reported(tmp_path, capsys):
    _valid_checkpoint(tmp_path, "config-a")
    capsys.readouterr()
    other = Checkpointer(tmp_path, "config-b")
    assert other.load() is None
    line = _one_line(capsys)
    assert "checkpoint.pt: config mismatch (written by config config-a, this run is config-b)" in line


def test_checkpoint_not_fitting_the_model_is_reported(tmp_path, capsys):
    checkpointer = _valid_checkpoint(tmp_path)
    capsys.readouterr()
    assert checkpointer.load(_Tiny(width=5)) is None
    assert "does not fit the model (weight 'trunk.weight' has shape (3, 4), the model (5, 4))" in _one_line(capsys)


def test_training_restarts_from_scratch_after_a_corrupt_checkpoint(tmp_path, capsys):
    straight, history = _train(None)
    checkpointer = Checkpointer(tmp_path, "abc")
    checkpointer.path.parent.mkdir(parents=True, exist_ok=True)
    checkpointer.path.write_bytes(b"PK\x03\x04 cut short")
    capsys.readouterr()
    restarted, history2 = _train(checkpointer)
    captured = capsys.readouterr()
    assert "truncated" in captured.err and "resuming" not in captured.out
    assert history2 == history
    for (name, a), b in zip(straight.state_dict().items(), restarted.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_training_resumes_and_says_from_which_epoch(tmp_path, capsys):
    straight, history = _train(None)
    checkpointer = Checkpointer(tmp_path, "abc")
    with pytest.raises(KeyboardInterrupt):
        _train(checkpointer, stop_at=4)  # killed in epoch 2: the checkpoint of epoch 1 stays
    capsys.readouterr()
    resumed, history2 = _train(checkpointer)
    assert f"[tiny] resuming from epoch 1/3 ({checkpointer.path})" in capsys.readouterr().out
    assert history2 == history
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_fingerprint_ignores_num_threads_but_not_the_rest():
    base = compose("train_classifier", ["num_threads=1"])
    assert checkpoint_fingerprint(base) == checkpoint_fingerprint(compose("train_classifier", ["num_threads=2"]))
    assert checkpoint_fingerprint(base) != checkpoint_fingerprint(compose("train_classifier", ["num_threads=1", "seed=1"]))
    # the Snakemake fingerprint (what reruns a job) is unchanged by this: it still hashes the whole config
    assert config_hash(base) != checkpoint_fingerprint(base)


def test_a_write_killed_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpointer = _valid_checkpoint(tmp_path)
    before = checkpointer.path.read_bytes()
    real_save = torch.save

    def dies_halfway(obj, target, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        target.write(buffer.getvalue()[:100])  # save_torch hands torch an open file
        raise KeyboardInterrupt  # the process is stopped in the middle of the write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save({"epoch": 2})
    assert checkpointer.path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]  # no temporary left behind


# ------------------------------------------------------------------ mixed precision (train.precision)
def test_precision_auto_follows_the_cpus_native_bf16_and_bad_values_are_one_line():
    from wsss.errors import WsssError
    from wsss.training import cpu_has_native_bf16, resolve_precision

    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw\n")  # bf16 emulated there: slower than fp32
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(WsssError, match=r"^train\.precision: must be one of auto, fp32, bf16, got 'fp16'$"):
        resolve_precision("fp16", cpu)


def test_bf16_training_runs_its_forward_in_bf16_and_keeps_fp32_weights():
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            out = self.conv(x)
            seen.append(out.dtype)
            return out

        def param_groups(self):
            return list(self.conv.parameters()), []

    from torch.utils.data import TensorDataset

    from wsss.training import train_epochs

    samples = TensorDataset(torch.randn(8, 3, 6, 6))
    samples.epoch = 0
    model = Probe()
    schedule = EpochSchedule(**{**_SCHEDULE.__dict__, "epochs": 1, "precision": "bf16"})

    def step(batch):
        loss = model(batch[0]).float().square().mean()
        return loss, {"loss": loss.item()}

    history = train_epochs(model, samples, step, lambda sums: sums, schedule, 0, None, "probe")
    assert seen and set(seen) == {torch.bfloat16} and len(history) == 1
    assert all(p.dtype == torch.float32 for p in model.parameters())
