"""Per-image work spread over worker processes, with results in input order (:func:`ordered_map`).

For per-image stages whose work holds the GIL (pydensecrf2's dense CRF, PIL, numpy on small arrays), so
threads would not help. One implementation: ``workers=1`` is the plain loop in this process, ``workers>1``
the same function in a :class:`concurrent.futures.ProcessPoolExecutor`, and the caller sees the same thing
either way: the results one by one in the order of the items, and, when an item fails, the exception the
loop would have raised for the first failing item, at that item's turn (a :class:`~wsss.errors.WsssError`
stays a one-line error; the worker's traceback is only its ``__cause__``).

Processes are started with ``spawn``: a fresh interpreter, never a ``fork`` of a parent that has already
started torch's OpenMP pool or other threads (a forked child can deadlock on a lock some thread held at the
fork) and safe with CUDA. The price is a start-up per worker: it imports the parent's main module (the
stage's), so keep heavy imports out of a stage module's top level (:func:`wsss.pipeline.prepare` imports
torch when called: a refine_crf worker starts in ~0.3 s, not the ~2 s of torch). Each worker runs one thread:
torch's count is set to 1, and ``OMP/MKL/OPENBLAS_NUM_THREADS`` to 1 for what it loads later, so
``workers`` processes use ``workers`` cores.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator, TypeVar

from wsss import faults
from wsss.errors import WsssError

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")

#: start method of the worker processes (see the module docstring for why not ``fork``)
START_METHOD = "spawn"
#: tasks in flight per worker: enough to keep each busy while the parent consumes results in order
_IN_FLIGHT_PER_WORKER = 2
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_context: Any = None  # the worker's copy of ordered_map's ``context``


def thread_count(num_threads: int) -> int:
    """The CPU threads a job may use: ``num_threads``, or every core this process may run on when it is 0."""
    return max(1, int(num_threads) or len(os.sched_getaffinity(0)))


def resolve_workers(workers: int | None, num_threads: int, n_items: int | None = None, key: str = "workers") -> int:
    """Worker processes for a job: ``workers``, or one per thread of the job (:func:`thread_count` of
    ``num_threads``) when it is None; never more than ``n_items``. ``workers`` < 1 is a one-line
    :class:`WsssError` naming ``key``."""
    if workers is None:
        count = thread_count(num_threads)
    else:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise WsssError(f"{key}: must be a positive number of processes (1: no pool, in this process) or null "
                            f"(one per thread of the job, num_threads), got {workers!r}")
        count = workers
    return max(1, min(count, n_items)) if n_items is not None else count


def _exit_with_parent() -> None:
    """End this worker when its parent dies. A pool's workers wait on a queue whose write end they hold
    themselves, so a parent killed with SIGKILL (Snakemake, a user, the OOM killer) would leave them
    waiting forever, holding the job's log open; the parent's sentinel (a pipe only it writes to) tells."""
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)  # as if killed with the parent: an unfinished write leaves only its temporary

    threading.Thread(target=watch, name="wsss-exit-with-parent", daemon=True).start()


def _start_worker(context: Any, job: tuple[str, str, float]) -> None:
    """Worker initializer: exit with the parent, one thread for every library that reads the usual
    variables or has a setter, the job's shared ``context``, its writes logged as the stage's (``job``,
    :func:`wsss.faults.adopt`)."""
    global _context
    _exit_with_parent()
    faults.adopt(job)
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    import sys

    if "torch" in sys.modules:  # imported with the parent's main module; its pool is not started yet
        sys.modules["torch"].set_num_threads(1)
    _context = context


def _run(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_context, item)


def ordered_map(fn: Callable[[C, T], R], items: Iterable[T], *, workers: int, context: C = None,
                desc: str = "", pool: bool | None = None) -> Iterator[R]:
    """Yield ``fn(context, item)`` for every item of ``items``, in the order of ``items``.

    ``workers=1``: in this process, one item after the other. ``workers>1``: in that many ``spawn``
    processes (:data:`START_METHOD`); ``fn`` must be a module-level function, ``context`` (sent once to
    each worker) and the items and results picklable. ``items`` is drawn lazily, in this process, a few
    items ahead of the results (``workers`` × 2 in flight), so it may load what cannot or should not be
    sent whole (an image from a dataset reader); an exception it raises is held and raised at that
    item's turn, like one of ``fn``. After an exception, the items not yet started are dropped and the
    ones running finish (``fn`` must write its files atomically, :mod:`wsss.io`). A worker process that
    dies (killed, out of memory) is a one-line :class:`WsssError` (``desc`` names the job). ``pool=True``:
    a pool even of one worker (to measure what the pool costs).
    """
    if workers < 1:
        raise ValueError(f"ordered_map: workers must be >= 1, got {workers}")
    if not (workers > 1 if pool is None else pool):
        for item in items:
            yield fn(context, item)
        return

    source = iter(items)
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(START_METHOD),
                                   initializer=_start_worker, initargs=(context, faults.job()))
    # per item in order: its Future, or the exception raised drawing it from ``items``
    pending: collections.deque[Future | BaseException] = collections.deque()
    exhausted = False
    position = 0

    def submit_next() -> None:
        nonlocal exhausted
        if exhausted:
            return
        try:
            item = next(source)
        except StopIteration:
            exhausted = True
            return
        except Exception as exc:
            exhausted = True  # as the loop would: nothing after the item that could not be drawn
            pending.append(exc)
            return
        pending.append(executor.submit(_run, fn, item))

    try:
        try:
            for _ in range(workers * _IN_FLIGHT_PER_WORKER):
                submit_next()
            while pending:
                head = pending.popleft()
                if isinstance(head, BaseException):
                    raise head
                result = head.result()
                submit_next()
                position += 1
                yield result
        except BrokenProcessPool:
            raise WsssError(f"{desc or 'ordered_map'}: a worker process died (killed, or out of memory?) at item "
                            f"{position + 1}; rerun, with fewer workers if memory is short") from None
    finally:
        # on an error (or a consumer that stops early): drop what has not started, wait for what runs
        executor.shutdown(wait=True, cancel_futures=True)
