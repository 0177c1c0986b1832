"""Progress in log files: one plain line every few seconds with the rate and ETA, never carriage returns."""

from __future__ import annotations

import io
import re

import pytest

import wsss.progress as progress_module
from wsss.progress import Progress

LINE = re.compile(r"^\[(?P<desc>\w+)\] (?P<count>\d+)/(?P<total>\d+) (?P<unit>\w+) \((?P<pct>\d+\.\d)%\) "
                  r"(?P<rate>\d+\.\d\d) (?P=unit)/s, elapsed (?P<elapsed>\w+), ETA (?P<eta>\w+|\?)(?:, (?P<post>.*))?$")


class Clock:
    """A fake ``time.monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    monkeypatch.delenv("WSSS_PROGRESS", raising=False)
    return fake


def test_plain_line_format(clock):
    stream = io.StringIO()
    bar = Progress(total=500, desc="make_cam", unit="images", interval=5, stream=stream)
    clock.now += 37.4
    bar.update(120)
    assert stream.getvalue() == "[make_cam] 120/500 images (24.0%) 3.21 images/s, elapsed 37s, ETA 1m58s\n"
    match = LINE.match(stream.getvalue().rstrip("\n"))
    assert match and match["eta"] == "1m58s"


def test_a_line_per_interval_and_at_the_end(clock):
    stream = io.StringIO()
    bar = Progress(total=20, desc="random_walk", unit="images", interval=5, stream=stream)
    for _ in range(20):
        clock.now += 1.0
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [int(LINE.match(line)["count"]) for line in lines] == [5, 10, 15, 20]
    assert "\r" not in stream.getvalue() and stream.getvalue().endswith("\n")
    assert lines[-1] == "[random_walk] 20/20 images (100.0%) 1.00 images/s, elapsed 20s, ETA 0s"


def test_quiet_between_intervals(clock):
    stream = io.StringIO()
    bar = Progress(total=1000, desc="x", unit="images", interval=5, stream=stream)
    for _ in range(40):
        clock.now += 0.1  # 40 images in 4 s: below the interval, nothing printed yet
        bar.update()
    assert stream.getvalue() == ""
    clock.now += 1.0
    bar.update()
    assert len(stream.getvalue().splitlines()) == 1


def test_iterating_and_unknown_total(clock):
    stream = io.StringIO()

    def items():
        yield from range(7)

    for _ in Progress(items(), desc="stream", unit="items", interval=5, stream=stream):
        clock.now += 2.0
    # no total: the line has count, rate and elapsed; close() reports the final state
    assert stream.getvalue().splitlines() == ["[stream] 3 items 0.50 items/s, elapsed 6s",
                                              "[stream] 6 items 0.50 items/s, elapsed 12s",
                                              "[stream] 7 items 0.50 items/s, elapsed 14s"]


def test_training_postfix_and_resume(clock):
    stream = io.StringIO()
    bar = Progress(total=300, desc="train_classifier", unit="batches", interval=5, stream=stream, initial=200)
    clock.now += 10.0
    bar.update(20, postfix="epoch 3/3 loss 0.4120")
    line = stream.getvalue().rstrip("\n")
    match = LINE.match(line)
    # resumed at 200: position counts them, the rate does not (20 batches in 10 s)
    assert match["count"] == "220" and match["rate"] == "2.00" and match["eta"] == "40s"
    assert match["post"] == "epoch 3/3 loss 0.4120"


def test_long_runs_format_hours(clock):
    stream = io.StringIO()
    bar = Progress(total=10_000, desc="make_cam", unit="images", interval=5, stream=stream)
    clock.now += 3725.0
    bar.update(1000)
    assert LINE.match(stream.getvalue().rstrip())["elapsed"] == "1h02m"
    assert LINE.match(stream.getvalue().rstrip())["eta"] == "9h18m"  # 33525 s


def test_terminal_gets_a_bar_unless_plain_is_forced(clock, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    bar = Progress(total=3, desc="t", unit="it", stream=Terminal())
    assert bar._bar is not None
    bar.close()
    monkeypatch.setenv("WSSS_PROGRESS", "plain")
    stream = Terminal()
    bar = Progress(total=3, desc="t", unit="it", stream=stream, interval=0)
    bar.update(3)
    assert bar._bar is None and LINE.match(stream.getvalue().rstrip())


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("WSSS_PROGRESS_INTERVAL", "0.25")
    assert Progress(total=1, stream=io.StringIO()).interval == 0.25
    monkeypatch.delenv("WSSS_PROGRESS_INTERVAL")
    assert Progress(total=1, stream=io.StringIO()).interval == 5.0
