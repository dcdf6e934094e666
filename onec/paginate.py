"""Offset paging that loses no row and repeats none while 1C users keep posting documents.

A paginator is a small object around a `fetch(offset, limit) -> Page` function (in the spirit of dlt's
rest_api paginators), so the same logic serves goods, every document type and the tests' fake servers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from onec.http.errors import OneCIncompleteError

Record = dict[str, Any]


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


@dataclass
class _Pass:
    total: int
    covered: int = 0
    stable: bool = True
    last_total: int = 0


class OffsetPaginator:
    """Yields batches of records in offset order; pages are fetched concurrently, `max_workers` at most.

    Offsets shift when rows are added or removed during a run, so one pass can miss or repeat rows. Repeats
    are dropped by key and content hash; a pass during which any page saw a different `total` (or which did
    not cover `total` rows) is followed by another, up to `max_passes`.
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
        self._seen: dict[Hashable, int] = {}
        self.pages_fetched = 0
        self.passes = 0

    def __iter__(self) -> Iterator[list[Record]]:
        self._seen = {}
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
            f"{len(self._seen)} distinct keys in all; narrow the window (modified_until) or retry later"
        )

    def _one_pass(self) -> Generator[list[Record], None, _Pass]:
        """Generator for one pass; returns its _Pass so the caller can decide whether another is needed."""
        first = self._fill(_Window(0, self._page_size))
        limit = first.end if first.end > 0 else self._page_size
        state = _Pass(total=first.totals[0], last_total=first.totals[-1])
        yield from self._account(first, state)
        known_total = max(first.totals)
        next_offset = limit
        with ThreadPoolExecutor(self._max_workers, thread_name_prefix="onec-page") as pool:
            inflight: deque[Future[_Window]] = deque()
            try:
                while inflight or next_offset < known_total:
                    while len(inflight) < self._max_workers and next_offset < known_total:
                        inflight.append(pool.submit(self._fill, _Window(next_offset, next_offset + limit)))
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
        fresh = [record for record in window.records if self._is_new(record)]
        if fresh:
            yield fresh

    def _is_new(self, record: Record) -> bool:
        """New key, or a known key with different content (a newer version that downstream must see)."""
        digest = hash(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        key = self._key(record)
        if self._seen.get(key) == digest:
            return False
        self._seen[key] = digest
        return True
