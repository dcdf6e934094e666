"""Shared, thread-safe guards that keep one session polite to 1C: counters, pacing, a concurrency cap and a
circuit breaker.

They take `clock` and `sleep` as arguments so tests can drive time instead of waiting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields

import httpx


@dataclass
class RequestStats:
    """Counters for run metadata and for tests; every attempt is counted, retries included."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    connection_errors: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    circuit_opens: int = 0
    auth_refreshes: int = 0
    pages: int = 0
    passes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


_current_query: ContextVar[RequestStats | None] = ContextVar("onec_query_stats", default=None)


@contextmanager
def query_stats() -> Iterator[RequestStats]:
    """The counters of one query (one entity's pages, one export download), exact while other queries share the
    session: differences of the session's shared counters would charge each query with its neighbours' requests.
    Threads a query starts must run in a copy of its context (`contextvars.copy_context().run`) to be counted."""
    stats = RequestStats()
    token = _current_query.set(stats)
    try:
        yield stats
    finally:
        _current_query.reset(token)


def count(shared: RequestStats, name: str, amount: int = 1) -> None:
    """Add to the session's counters and to the counters of the query running in this context, if any."""
    shared.add(name, amount)
    query = _current_query.get()
    if query is not None:
        query.add(name, amount)


class RateLimiter:
    """Paces attempts to one every 1/rate seconds across all threads, with no burst.

    A server's token bucket at the same rate then never runs dry, so a well-configured run sees no 429 at all
    instead of learning the limit by hitting it.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = float("-inf")

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


class PacedTransport(httpx.BaseTransport):
    """Every request that goes on the wire takes a connection slot, waits its turn at the rate limiter and is
    counted: the data requests, their repeats after a token refresh and the token requests alike.

    Why at the transport and not around `client.request`: the bearer auth flow logs in from inside a request, and
    a slot held around the whole exchange would make that login wait for a slot of its own (with one connection,
    forever). The slot is held until the answer's body is read or closed, as the connection is.
    """

    def __init__(
        self, inner: httpx.BaseTransport, *, limiter: RateLimiter, max_connections: int, stats: RequestStats
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stats = stats

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._slots.acquire()
        try:
            self._limiter.acquire()
            count(self._stats, "requests")
            count(self._stats, "bytes_sent", int(request.headers.get("Content-Length", "0")))
            response = self._inner.handle_request(request)
        except BaseException:
            self._slots.release()
            raise
        if not isinstance(response.stream, httpx.SyncByteStream):
            response.close()
            self._slots.release()
            raise TypeError("a synchronous transport answered with an asynchronous body")
        body = _SlotHeldBody(response.stream, self._slots.release, lambda n: count(self._stats, "bytes_received", n))
        return httpx.Response(
            response.status_code, headers=response.headers, stream=body, extensions=response.extensions
        )

    def close(self) -> None:
        self._inner.close()


class _SlotHeldBody(httpx.SyncByteStream):
    """An answer's body that gives its connection slot back once, when it is closed."""

    def __init__(self, inner: httpx.SyncByteStream, release: Callable[[], None], received: Callable[[int], None]):
        self._inner = inner
        self._release = release
        self._received = received
        self._released = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._received(len(chunk))
            yield chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            with self._lock:
                release, self._released = not self._released, True
            if release:
                self._release()


class CircuitOpen(Exception):
    """Raised by the breaker when calls must fail fast; carries how long until the next probe."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"circuit open for {remaining_s:.0f} s")
        self.remaining_s = remaining_s


class CircuitBreaker:
    """Stops hammering a 1C that is down: after `threshold` consecutive failures, fail fast for `cooldown_s`,
    then let a single probe through and close again only if it succeeds."""

    def __init__(self, threshold: int, cooldown_s: float, *, clock: Callable[[], float]) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    def before_attempt(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            remaining = self._opened_at + self._cooldown_s - self._clock()
            if remaining > 0 or self._probing:
                raise CircuitOpen(max(remaining, self._cooldown_s if self._probing else 0.0))
            self._probing = True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> bool:
        """Returns True when this failure opened the circuit (for the counters and one warning)."""
        with self._lock:
            self._failures += 1
            if self._probing or (self._opened_at is None and self._failures >= self._threshold):
                self._opened_at = self._clock()
                self._probing = False
                return True
            return False

    def record_neutral(self) -> None:
        """A 429 proves 1C is alive but says nothing about health; only release a pending probe slot."""
        with self._lock:
            if self._probing:
                self._probing = False
