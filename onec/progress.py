"""Progress of a sync per entity: records done of those 1C said it holds, rate and time left.

On a terminal it is a live display (rich) with log lines printed above it; in a log (CI, cron, Dagster) it prints
one line every few seconds, so a night's log stays readable. The core reports through `EntityProgress`: a landing
advances it, and the paginator tells it how many records 1C announced (`expect`), through a context variable so that
neither has to know about the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Protocol, TextIO

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class EntityProgress(Protocol):
    def advance(self, records: int) -> None: ...

    def expect(self, total: int) -> None: ...


_current: ContextVar[EntityProgress | None] = ContextVar("onec_entity_progress", default=None)


@contextmanager
def reporting_to(progress: EntityProgress | None) -> Iterator[None]:
    """Make `progress` the one `expect_records` informs while this query runs (threads it starts included)."""
    token = _current.set(progress)
    try:
        yield
    finally:
        _current.reset(token)


def expect_records(total: int) -> None:
    """What 1C announced for the query running in this context (the first page's `total`); no-op without one."""
    progress = _current.get()
    if progress is not None:
        progress.expect(total)


class _Task:
    def __init__(self, display: Progress, name: str) -> None:
        self._display = display
        self.name = name
        self.done = 0
        self.total: int | None = None
        self.started = time.perf_counter()

    def advance(self, records: int) -> None:
        self._display.changed(self, records)

    def expect(self, total: int) -> None:
        self._display.expected(self, total)

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        if self.total is None:
            return f"{self.name} {self.done:,} records {rate:,.0f}/s"
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:,.0f} s left" if rate > 0 else "time left unknown"
        return f"{self.name} {self.done:,}/{self.total:,} {rate:,.0f}/s {eta}"


class Progress:
    """The display for one command; use `entity(name)` for each entity it lands."""

    def __init__(self, stream: TextIO, *, log_every_s: float = 5.0) -> None:
        self._stream = stream
        self._interactive = stream.isatty()
        self._every = log_every_s
        self._lock = threading.Lock()
        self._tasks: list[_Task] = []
        self._shown_at = time.perf_counter()
        self._console = Console(file=stream)
        self._live = RichProgress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>10}/s"),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._ids: dict[str, TaskID] = {}
        self._saved_handlers: list[logging.Handler] = []

    def entity(self, name: str) -> EntityProgress:
        task = _Task(self, name)
        with self._lock:
            self._tasks.append(task)
            if self._interactive:
                self._ids[name] = self._live.add_task(name, total=None, rate="0")
        return task

    def changed(self, task: _Task, records: int) -> None:
        with self._lock:
            task.done += records
            if self._interactive:
                rate = task.done / max(time.perf_counter() - task.started, 1e-9)
                self._live.update(self._ids[task.name], completed=task.done, rate=f"{rate:,.0f}")
                return
            now = time.perf_counter()
            if now - self._shown_at >= self._every:
                self._shown_at = now
                self._stream.write("; ".join(t.line(now) for t in self._tasks) + "\n")
                self._stream.flush()

    def expected(self, task: _Task, total: int) -> None:
        with self._lock:
            task.total = total
            if self._interactive:
                self._live.update(self._ids[task.name], total=max(total, task.done))

    def __enter__(self) -> Progress:
        if self._interactive:
            self._live.start()
            root = logging.getLogger()
            self._saved_handlers = root.handlers[:]
            root.handlers = [RichHandler(console=self._console, show_time=False, show_path=False)]
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._interactive:
            self._live.stop()
            logging.getLogger().handlers = self._saved_handlers
        elif self._tasks:
            now = time.perf_counter()
            self._stream.write("; ".join(t.line(now) for t in self._tasks) + "\n")
            self._stream.flush()
