"""Read the next batch of a file while the current one is checked and staged.

Why: reading an exchange file (lxml building elements, Python transcoding windows-1251, Polars splitting fields)
and checking a batch (Polars expressions, which release the GIL) are separate CPU work; in one thread each waits
for the other. A producer thread one batch ahead keeps both cores busy, and the bounded queue keeps memory at a
fixed number of batches, whatever the file's size.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from contextvars import copy_context
from queue import Full, Queue
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _End:
    """The producer is done; `error` is what stopped it, if anything."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetched(items: Iterable[T], *, ahead: int = 1) -> Generator[T, None, None]:
    """`items` in order, produced by a background thread up to `ahead` items before they are asked for.

    An exception in the producer is raised here, at the position it happened. When the consumer stops early
    (closes this generator, or raises), the producer stops after the item it is producing and the source
    iterator is closed in its own thread, so a file it reads can be closed safely once this returns.
    """
    queue: Queue[T | _End] = Queue(maxsize=ahead)
    stop = threading.Event()

    def put(entry: T | _End) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    return
            put(_End())
        except BaseException as exc:  # handed to the consumer, raised there
            put(_End(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=copy_context().run, args=(produce,), name="onec-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            entry = queue.get()  # the producer always ends with an _End, error or not
            if isinstance(entry, _End):
                if entry.error is not None:
                    raise entry.error
                return
            yield entry
    finally:
        stop.set()
        producer.join()
