"""Progress reporting with rate and ETA for per-image and training loops.

On a terminal this is a tqdm bar. In a log file (stderr not a TTY, as under
Snakemake, which sends each job's output to ``logs/…``) it prints a plain line
at most every ``interval`` seconds (``WSSS_PROGRESS_INTERVAL``, default 5),
always when the last unit is done, and on :meth:`Progress.close` if anything
was left unreported, e.g.::

    [make_cam] 120/500 images (24.0%) 3.21 images/s, elapsed 37s, ETA 1m58s
    [train_classifier] 40/300 batches (13.3%) 1.90 batches/s, elapsed 21s, ETA 2m17s, epoch 1/5 loss 0.6412

so logs stay readable (no carriage-return lines). ``WSSS_PROGRESS=plain``
forces the plain lines on a terminal too. A resumed loop passes ``initial``
(units already done): they count towards the position but not the rate.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts work units and reports rate and ETA.

    Use as ``for item in Progress(items, total=n, desc="make_cam", unit="images")``
    or manually with :meth:`update` and :meth:`close`.
    """

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        interval: float | None = None,
        stream=None,
        initial: int = 0,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if interval is not None else float(os.environ.get("WSSS_PROGRESS_INTERVAL", "5"))
        self.initial = int(initial)
        self.count = self.initial
        self.start = time.monotonic()
        self._last_print = self.start
        self._printed_count = self.initial
        self._postfix: str | None = None
        self._bar = None
        use_bar = getattr(self.stream, "isatty", lambda: False)() and os.environ.get("WSSS_PROGRESS", "") != "plain"
        if use_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.stream, dynamic_ncols=True,
                             initial=self.initial)

    def line(self) -> str:
        """The plain progress line for the current state."""
        elapsed = time.monotonic() - self.start
        rate = (self.count - self.initial) / elapsed if elapsed > 0 else 0.0
        head = f"[{self.desc}] " if self.desc else ""
        if self.total:
            pct = 100.0 * self.count / self.total
            eta = (self.total - self.count) / rate if rate > 0 else float("nan")
            eta_text = _format_seconds(eta) if eta == eta else "?"
            return (
                f"{head}{self.count}/{self.total} {self.unit} ({pct:.1f}%) {rate:.2f} {self.unit}/s, "
                f"elapsed {_format_seconds(elapsed)}, ETA {eta_text}"
            )
        return f"{head}{self.count} {self.unit} {rate:.2f} {self.unit}/s, elapsed {_format_seconds(elapsed)}"

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """Advance by ``n`` units; ``postfix`` (e.g. ``"loss 0.31"``) is appended to the line."""
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            return
        self._postfix = postfix
        now = time.monotonic()
        if now - self._last_print >= self.interval or (self.total is not None and self.count >= self.total):
            self._last_print = now
            self._print()

    def _print(self) -> None:
        self._printed_count = self.count
        text = self.line() + (f", {self._postfix}" if self._postfix else "")
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar; in plain mode, print the final state unless it was the last line printed."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.count != self._printed_count:
            self._print()

    def __iter__(self) -> Iterator[T]:
        assert self.iterable is not None, "Progress(iterable=None) is not iterable"
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
