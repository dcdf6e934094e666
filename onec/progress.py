"""A one-line progress display for long syncs: records so far, rate, elapsed.

On a terminal the line redraws in place; in a log (CI, cron, Dagster) it prints at most one line every few seconds,
so a night's log stays readable.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO, *, log_every_s: float = 5.0, redraw_every_s: float = 0.2) -> None:
        self._stream = stream
        self._interactive = stream.isatty()
        self._every = redraw_every_s if self._interactive else log_every_s
        self._lock = threading.Lock()
        self._records = 0
        self._started = time.perf_counter()
        self._shown_at = 0.0

    def advance(self, records: int) -> None:
        with self._lock:
            self._records += records
            now = time.perf_counter()
            if now - self._shown_at >= self._every:
                self._shown_at = now
                self._show(now)

    def _show(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        line = f"{self._records:>10,} records  {self._records / elapsed:>9,.0f}/s  {elapsed:6.1f} s"
        self._stream.write(f"\r{line}" if self._interactive else f"{line}\n")
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._show(time.perf_counter())
        if self._interactive:
            self._stream.write("\n")
