"""The prefetch thread: same items in the same order, errors where they happened, no thread left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from onec.prefetch import prefetched


def test_items_arrive_in_order_and_the_producer_runs_ahead_but_boundedly() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(50):
            produced.append(n)
            yield n

    stream = prefetched(numbers(), ahead=2)
    assert next(stream) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)  # give it room to overrun, if it would
    # one handed over, two queued, at most one more made and waiting for room: never the whole source
    assert 3 <= len(produced) <= 4
    assert [0, *stream] == list(range(50))


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is broken")

    received = []
    with pytest.raises(ValueError, match="line 3 is broken"):
        for n in prefetched(failing()):
            received.append(n)
    assert received == [1, 2]


def test_stopping_early_closes_the_source_in_its_thread_and_ends_the_thread() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    before = threading.active_count()
    stream = prefetched(endless())
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()
    assert threading.active_count() == before


def test_a_consumer_error_stops_the_producer() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="consumer failed"):
        for n in prefetched(source()):
            if n == 3:
                raise RuntimeError("consumer failed")
    assert closed.is_set()
