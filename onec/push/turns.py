"""Whose turn it is at 1C among an import's requests: the verification's reads first, then the batches.

Why: the session paces every request to 1C's rate, and a thread that asks for a request waits in line behind
every request already waiting. The import keeps a batch ready for every pacing slot, so a verification read that
queues behind them starts about a connection cap's worth of slots later (0.4 s at 8 connections and 20/s), and
the reads of the last windows then finish well after the last batch. Here the import's threads take turns at
the same rate *before* they reach the session: a batch enters the session only when its slot is due (so the
session's own pacing, which still applies, has nobody waiting), and a read waiting for a turn gets the next one.
The request count and the pace are unchanged; only the order is.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Turns:
    """One turn every 1/rate seconds, to the waiting caller that asked `first`, else to the longest waiting."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._changed = threading.Condition()
        self._waiting: list[tuple[int, int]] = []
        self._tickets = itertools.count()
        self._next = float("-inf")

    def take(self, *, first: bool = False) -> None:
        """Block until it is this caller's turn."""
        with self._changed:
            ticket = (0 if first else 1, next(self._tickets))
            heapq.heappush(self._waiting, ticket)
            self._changed.notify_all()  # a read may have become the head: the head re-checks
            while True:
                now = self._clock()
                if self._waiting[0] == ticket and now >= self._next:
                    heapq.heappop(self._waiting)
                    # the slot it was due in, unless the line was idle: late wake-ups do not add up
                    slot = self._next if now - self._next < self._interval else now
                    self._next = slot + self._interval
                    self._changed.notify_all()
                    return
                self._changed.wait(self._next - now if self._waiting[0] == ticket else None)
