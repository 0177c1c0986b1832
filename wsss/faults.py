"""Fault injection for the crash-and-resume harness (``benchmarks/crash_resume.py``, ``tests/test_crash_resume.py``).

A stage process kills itself with SIGKILL (what ``kill -9``, the OOM killer and a pre-empted cluster job do) at
a chosen moment, so the harness can show that a rerun gives the bytes of a run that was never interrupted.
Nothing here runs unless one of two environment variables is set:

``WSSS_CRASH_AT=<where>:<pattern>:<n>``
    one process: die at the n-th atomic write (:func:`wsss.io.atomic_path`) of a file whose name (or, for a
    pattern holding ``/``, whose path) matches the glob ``pattern``; ``where`` is ``before_rename`` (the
    temporary complete, not yet renamed) or ``after_rename`` (just after the rename).

``WSSS_CRASH_PLAN=<plan.json>``
    a list of kills for a whole Snakemake run, each ``{"stage": name, "job": substring of out_dir,
    "at": "<where>:<pattern>:<n>"}`` or ``{..., "after_s": seconds}`` (a moment in time after the stage
    started; a stage that ends its work before that moment, on a machine faster than the one the moment was
    placed on, is killed at its end instead, after its last write and before it exits: :func:`finish`). Every
    start of a stage process takes the first kill of its stage and job that has not fired yet; a kill records
    that it fired (``<plan>.fired/<index>``) just before it strikes, so Snakemake's retry of the job
    (``--retries``) or a later rerun meets the next kill, and a job whose kills are spent runs to the end.

``WSSS_WRITE_LOG=<file>``
    every stage appends ``<stage>\t<out_dir>\t<seconds since start>\t<path>`` for each atomic write it
    completes: the harness reads an uninterrupted run's writes to place its kills (the n-th write of a job,
    its last one, its checkpoints).
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

WHERE = ("before_rename", "after_rename")


@dataclass(frozen=True)
class WritePoint:
    """The n-th atomic write of a file matching ``pattern``, ``where`` in :data:`WHERE`."""

    where: str
    pattern: str
    count: int

    @classmethod
    def parse(cls, text: str) -> "WritePoint":
        where, pattern, count = text.rsplit(":", 2) if text.count(":") >= 2 else (text, "", "0")
        if where not in WHERE or not pattern or not count.isdigit() or int(count) < 1:
            raise ValueError(f"crash point {text!r}: expected <before_rename|after_rename>:<glob>:<n ≥ 1>")
        return cls(where, pattern, int(count))

    def matches(self, where: str, path: Path) -> bool:
        subject = str(path) if "/" in self.pattern else path.name
        return where == self.where and fnmatch.fnmatch(subject, self.pattern)


_armed: WritePoint | None = None
_armed_marker: Path | None = None
_timer: threading.Timer | None = None  # a pending kill at a moment in time, and its marker
_timer_marker: Path | None = None
_seen = 0
_job = ("", "")  # (stage, out_dir) of this process, once :func:`start` has run
_started = time.monotonic()


def _strike(marker: Path | None) -> None:
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("fired\n")
    os.kill(os.getpid(), signal.SIGKILL)


def _arm_from_env() -> None:
    global _armed
    text = os.environ.get("WSSS_CRASH_AT", "")
    if text:
        _armed = WritePoint.parse(text)


_arm_from_env()


def job() -> tuple[str, str, float]:
    """This process's job for :func:`adopt`: ``(stage, out_dir, start time)``."""
    return (*_job, _started)


def adopt(parent_job: tuple[str, str, float]) -> None:
    """In a worker process of a stage (:mod:`wsss.parallel`): log writes as the stage's (same job, same clock),
    and arm the write kill the stage's process armed (the first unfired kill of the job, when it is placed on a
    write): a file the stage writes from its workers (``make_cam``'s CAMs) dies there, the worker's death fails the
    stage. Moments in time stay the stage process's own."""
    global _job, _started, _armed, _armed_marker, _seen
    _job, _started = (parent_job[0], parent_job[1]), parent_job[2]
    selected = _first_unfired_kill(*_job)
    if selected is not None and "at" in selected[0]:
        _armed, _armed_marker, _seen = WritePoint.parse(selected[0]["at"]), selected[1], 0


def _first_unfired_kill(stage: str, out_dir: str) -> tuple[dict, Path] | None:
    """The first kill of ``WSSS_CRASH_PLAN`` for this stage and job that has not fired, and its marker."""
    plan_file = os.environ.get("WSSS_CRASH_PLAN", "")
    if not plan_file:
        return None
    plan = json.loads(Path(plan_file).read_text())
    fired = Path(f"{plan_file}.fired")
    for index, kill in enumerate(plan):
        if kill["stage"] != stage or kill.get("job", "") not in out_dir:
            continue
        marker = fired / str(index)
        if not marker.exists():
            return kill, marker
    return None


def start(stage: str, out_dir: str | os.PathLike | None) -> None:
    """At a stage's start: arm the first unfired kill of ``WSSS_CRASH_PLAN`` for this stage and job (if any)."""
    global _armed, _armed_marker, _seen, _job, _started, _timer, _timer_marker
    _job, _started = (stage, str(out_dir or "")), time.monotonic()
    selected = _first_unfired_kill(*_job)
    if selected is None:
        return
    kill, marker = selected
    if "after_s" in kill:
        _timer, _timer_marker = threading.Timer(float(kill["after_s"]), _strike, args=(marker,)), marker
        _timer.daemon = True
        _timer.start()
    else:
        _armed, _armed_marker, _seen = WritePoint.parse(kill["at"]), marker, 0


def finish() -> None:
    """At a stage's successful end: a kill planned for a moment the stage did not live to see strikes now, so
    every kill of a plan fires however fast the machine runs the stage."""
    if _timer is not None and _timer.is_alive():
        _timer.cancel()
        _strike(_timer_marker)


def crash_point(where: str, path: Path) -> None:
    """Called by :func:`wsss.io.atomic_path` before and after each rename: strike when the armed point is met."""
    global _seen
    log = os.environ.get("WSSS_WRITE_LOG", "")
    if log and where == "after_rename":
        with open(log, "a", encoding="utf-8") as handle:  # one short O_APPEND write per line
            handle.write(f"{_job[0]}\t{_job[1]}\t{time.monotonic() - _started:.3f}\t{path}\n")
    if _armed is None or not _armed.matches(where, path):
        return
    _seen += 1
    if _seen == _armed.count:
        _strike(_armed_marker)
