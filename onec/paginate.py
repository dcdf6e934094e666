"""Offset paging that loses no row and repeats none while 1C users keep posting documents.

A paginator is a small object around a `fetch(offset, limit) -> Page` function (in the spirit of dlt's
rest_api paginators), so the same logic serves goods, every document type and the tests' fake servers.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any

import orjson

from onec.http.errors import OneCIncompleteError
from onec.progress import expect_records

Record = dict[str, Any]
_INITIAL_SLOTS = 1024


@dataclass(frozen=True)
class Page:
    """One answer of the server: its rows and the `pagination` block that came with them."""

    records: list[Record]
    offset: int
    limit: int
    total: int


@dataclass
class _Window:
    """The rows of [offset, end): one page, plus the pages that filled it when the server sent a short one."""

    offset: int
    end: int
    records: list[Record] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    fetches: int = 0

    @property
    def covered(self) -> int:
        return len(self.records)


class _YieldedRecords:
    """What one query has yielded so far: a set of (hash of key, hash of content) pairs kept in two flat arrays
    (open addressing, linear probing), 24-48 bytes a record in two buffers however long the query.

    Why not a dict of key → content hash: that cost ~190 bytes a record in small Python objects (key strings,
    ints) living as long as the query among the pages' short-lived ones; they kept the interpreter's arenas from
    being returned, so the process's peak grew with the size of a query (+20 MB at 50k documents a query,
    bench/json_throughput.py). A record counts as yielded only when both hashes match one yielded before: a
    different record would need a 128-bit collision, a new version of a known key a 64-bit one on its content
    (the chance the dict had too). A content hash of 0 is stored as 1, since 0 marks an empty slot.
    """

    def __init__(self) -> None:
        self._keys = array("q", [0]) * _INITIAL_SLOTS
        self._contents = array("q", [0]) * _INITIAL_SLOTS
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def fresh(self, records: list[Record], key: Callable[[Record], Hashable]) -> list[Record]:
        """The records (in order) neither yielded before nor repeated earlier in `records`; from now on, yielded."""
        return [
            record
            for record in records
            if self._add(hash(key(record)), hash(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)) or 1)
        ]

    def _add(self, key: int, content: int) -> bool:
        """Insert the pair; False if it was there already."""
        keys, contents = self._keys, self._contents
        mask = len(keys) - 1
        slot = key & mask
        while stored := contents[slot]:
            if stored == content and keys[slot] == key:
                return False
            slot = (slot + 1) & mask
        keys[slot], contents[slot] = key, content
        self._count += 1
        if self._count * 3 > len(keys) * 2:
            self._grow()
        return True

    def _grow(self) -> None:
        old = zip(self._keys, self._contents, strict=True)
        self._keys = array("q", [0]) * (len(self._keys) * 2)
        self._contents = array("q", [0]) * len(self._keys)
        self._count = 0
        for key, content in old:
            if content:
                self._add(key, content)


@dataclass
class _Pass:
    total: int
    covered: int = 0
    stable: bool = True
    last_total: int = 0


class OffsetPaginator:
    """Yields batches of records in offset order; pages are fetched concurrently, `max_workers` at most.

    Offsets shift when rows are added or removed during a run, so one pass can miss or repeat rows. Repeats
    (same key, same content) are dropped, a new version of a known key is yielded; a pass during which any page
    saw a different `total` (or which did not cover `total` rows) is followed by another, up to `max_passes`.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Page],
        *,
        page_size: int,
        max_workers: int,
        key: Callable[[Record], Hashable],
        max_passes: int = 4,
    ) -> None:
        if max_passes < 1 or page_size < 1:
            raise ValueError("max_passes and page_size must be at least 1")
        self._fetch = fetch
        self._page_size = page_size
        self._max_workers = max(1, max_workers)
        self._key = key
        self._max_passes = max_passes
        self._yielded = _YieldedRecords()
        self.pages_fetched = 0
        self.passes = 0

    def __iter__(self) -> Iterator[list[Record]]:
        self._yielded = _YieldedRecords()
        self.pages_fetched = 0
        self.passes = 0
        for _ in range(self._max_passes):
            self.passes += 1
            state = yield from self._one_pass()
            if state.stable and state.covered >= state.total:
                return
        raise OneCIncompleteError(
            f"1C's data kept changing while it was read: after {self.passes} passes the last reported "
            f"{state.last_total} rows (its first page: {state.total}), {state.covered} read in that pass, "
            f"{len(self._yielded)} distinct records in all; narrow the window (modified_until) or retry later"
        )

    def _one_pass(self) -> Generator[list[Record], None, _Pass]:
        """Generator for one pass; returns its _Pass so the caller can decide whether another is needed."""
        first = self._fill(_Window(0, self._page_size))
        limit = first.end if first.end > 0 else self._page_size
        state = _Pass(total=first.totals[0], last_total=first.totals[-1])
        expect_records(max(first.totals))
        yield from self._account(first, state)
        known_total = max(first.totals)
        next_offset = limit
        with ThreadPoolExecutor(self._max_workers, thread_name_prefix="onec-page") as pool:
            inflight: deque[Future[_Window]] = deque()
            try:
                while inflight or next_offset < known_total:
                    while len(inflight) < self._max_workers and next_offset < known_total:
                        window_ahead = _Window(next_offset, next_offset + limit)
                        inflight.append(pool.submit(copy_context().run, self._fill, window_ahead))
                        next_offset += limit
                    window = inflight.popleft().result()
                    known_total = max(known_total, *window.totals)
                    yield from self._account(window, state)
            finally:
                for future in inflight:
                    future.cancel()
        return state

    def _fill(self, window: _Window) -> _Window:
        """Fetch [offset, end), repeating from where a short page stopped: §1.9 allows short pages mid-result.

        The first window starts with end = page_size and shrinks to the limit the server actually applied.
        """
        cursor = window.offset
        while cursor < window.end:
            page = self._fetch(cursor, window.end - cursor)
            window.fetches += 1
            if window.fetches == 1 and window.offset == 0 and 0 < page.limit < window.end:
                window.end = page.limit
            window.records.extend(page.records[: window.end - cursor])
            window.totals.append(page.total)
            cursor += len(page.records)
            if not page.records or cursor >= page.total:
                break
        return window

    def _account(self, window: _Window, state: _Pass) -> Iterator[list[Record]]:
        self.pages_fetched += window.fetches
        state.covered += min(window.covered, max(0, state.total - window.offset))
        state.last_total = window.totals[-1]
        if any(total != state.total for total in window.totals):
            state.stable = False
        fresh = self._yielded.fresh(window.records, self._key)
        if fresh:
            yield fresh
