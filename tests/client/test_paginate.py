"""The paginator against a tiny in-memory server that caps limits, sends short pages and drifts mid-run."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onec.http import OneCIncompleteError
from onec.paginate import OffsetPaginator, Page

Row = dict[str, Any]


def row(n: int, version: int = 0) -> Row:
    return {"sku": f"SKU-{n:05d}", "warehouse": "wh-main", "quantity": n, "v": version}


class FakeServer:
    """Rows kept sorted by key; before each read it may apply one scheduled change (drift), atomically."""

    def __init__(
        self,
        rows: list[Row],
        *,
        cap: int = 1000,
        short: Callable[[int], bool] = lambda _: False,
        drift: dict[int, Callable[[list[Row]], None]] | None = None,
    ) -> None:
        self.rows = rows
        self.cap = cap
        self.short = short
        self.drift = drift or {}
        self.calls = 0
        self.lock = threading.Lock()

    def fetch(self, offset: int, limit: int) -> Page:
        with self.lock:
            change = self.drift.get(self.calls)
            if change is not None:
                change(self.rows)
                self.rows.sort(key=lambda r: r["sku"])
            limit_used = min(limit, self.cap)
            count = limit_used // 2 or 1 if self.short(self.calls) else limit_used
            self.calls += 1
            return Page([dict(r) for r in self.rows[offset : offset + count]], offset, limit_used, len(self.rows))


def key(record: Row) -> tuple[str, str]:
    return (record["sku"], record["warehouse"])


def collect(paginator: OffsetPaginator) -> list[Row]:
    return [record for batch in paginator for record in batch]


def assert_complete(got: list[Row], final_rows: list[Row]) -> None:
    """Every final row was yielded with its final content, and no (key, content) pair twice."""
    pairs = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in got]
    assert len(pairs) == len(set(pairs)), "a record was yielded twice"
    wanted = {orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in final_rows}
    assert wanted <= set(pairs), "a row was lost"


def test_plain_paging_in_order_with_concurrency() -> None:
    server = FakeServer([row(i) for i in range(1000)])
    paginator = OffsetPaginator(server.fetch, page_size=100, max_workers=4, key=key)
    got = collect(paginator)
    assert got == server.rows
    assert (paginator.pages_fetched, paginator.passes) == (10, 1)


def test_follows_a_server_cap_on_limit() -> None:
    server = FakeServer([row(i) for i in range(95)], cap=30)
    paginator = OffsetPaginator(server.fetch, page_size=100, max_workers=3, key=key)
    assert collect(paginator) == server.rows
    assert paginator.pages_fetched == 4


def test_short_pages_are_filled_before_moving_on() -> None:
    server = FakeServer([row(i) for i in range(100)], short=lambda call: call % 3 == 1)
    paginator = OffsetPaginator(server.fetch, page_size=10, max_workers=2, key=key)
    assert collect(paginator) == server.rows
    assert paginator.passes == 1


def test_drift_triggers_another_pass_and_nothing_is_lost_or_repeated() -> None:
    def insert_front(rows: list[Row]) -> None:
        rows.append({**row(0), "sku": "SKU-00000a"})

    def delete_front(rows: list[Row]) -> None:
        del rows[1]

    server = FakeServer([row(i) for i in range(200)], drift={3: insert_front, 6: delete_front})
    paginator = OffsetPaginator(server.fetch, page_size=20, max_workers=1, key=key)
    got = collect(paginator)
    assert_complete(got, server.rows)
    assert paginator.passes == 2


def test_changed_content_is_yielded_again_identical_is_not() -> None:
    def bump(rows: list[Row]) -> None:
        rows[0] = row(0, version=1)
        rows.append(row(999))

    server = FakeServer([row(i) for i in range(50)], drift={2: bump})
    got = collect(OffsetPaginator(server.fetch, page_size=10, max_workers=1, key=key))
    assert [r["v"] for r in got if r["sku"] == "SKU-00000"] == [0, 1]
    assert_complete(got, server.rows)


def test_endless_drift_gives_up_with_a_clear_error() -> None:
    server = FakeServer(
        [row(i) for i in range(30)],
        drift={n: _change("insert", 1000 + n) for n in range(1, 100)},
    )
    with pytest.raises(OneCIncompleteError, match=r"kept changing.*after 3 passes"):
        collect(OffsetPaginator(server.fetch, page_size=10, max_workers=1, key=key, max_passes=3))


def test_empty_result() -> None:
    paginator = OffsetPaginator(FakeServer([]).fetch, page_size=10, max_workers=4, key=key)
    assert collect(paginator) == []
    assert paginator.pages_fetched == 1


def test_memory_is_bounded_by_the_workers_not_the_result() -> None:
    server = FakeServer([row(i) for i in range(1000)])
    iterator = iter(OffsetPaginator(server.fetch, page_size=10, max_workers=3, key=key))
    next(iterator)
    next(iterator)
    time.sleep(0.2)  # a slow consumer: the fetchers must wait for it
    assert server.calls <= 1 + 3 + 1
    iterator.close()  # type: ignore[attr-defined]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[FakeServer, int, int, int]:
    size = draw(st.integers(0, 120))
    rows = [row(i * 2) for i in range(size)]
    cap = draw(st.integers(1, 40))
    shorts = draw(st.lists(st.booleans(), min_size=1, max_size=7))
    events = draw(
        st.lists(
            st.tuples(st.integers(0, 40), st.sampled_from(["insert", "delete", "update"]), st.integers(0, 10**6)),
            max_size=3,
            unique_by=lambda e: e[0],
        )
    )
    drift: dict[int, Callable[[list[Row]], None]] = {}
    for call, kind, where in events:
        drift[call] = _change(kind, where)
    server = FakeServer(rows, cap=cap, short=lambda call: shorts[call % len(shorts)], drift=drift)
    return server, draw(st.integers(1, 50)), draw(st.integers(1, 4)), len(events) + 2


def _change(kind: str, where: int) -> Callable[[list[Row]], None]:
    """Inserts and deletes change the total; an update goes with an insert, as a real posting run would."""

    def apply(rows: list[Row]) -> None:
        if kind == "delete" and rows:
            del rows[where % len(rows)]
            return
        rows.append(row(where * 2 + 1))
        if kind == "update" and rows:
            victim = where % len(rows)
            rows[victim] = {**rows[victim], "v": rows[victim]["v"] + 1}

    return apply


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_caps_short_pages_and_drift_lose_nothing_and_repeat_nothing(
    scenario: tuple[FakeServer, int, int, int],
) -> None:
    server, page_size, workers, max_passes = scenario
    paginator = OffsetPaginator(server.fetch, page_size=page_size, max_workers=workers, key=key, max_passes=max_passes)
    got = collect(paginator)
    assert_complete(got, server.rows)


def test_a_long_query_is_remembered_compactly_and_exactly() -> None:
    """50k yielded documents cost under 64 bytes each (a dict of key → hash cost ~190, in small objects that
    pinned the interpreter's arenas); every one is still recognised as a repeat, a new version still is not."""
    documents = [{"number": f"ПТУ-{n:08d}", "v": 0} for n in range(50_000)]
    paginator = OffsetPaginator(
        FakeServer([]).fetch, page_size=1000, max_workers=1, key=lambda record: record["number"]
    )
    yielded = paginator._yielded
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fresh = sum(len(yielded.fresh(documents[n : n + 1000], paginator._key)) for n in range(0, 50_000, 1000))
        per_document = (tracemalloc.get_traced_memory()[0] - before) / len(documents)
    finally:
        tracemalloc.stop()
    assert fresh == len(yielded) == 50_000
    assert per_document < 64
    assert yielded.fresh(documents[::7], paginator._key) == []
    assert yielded.fresh([{"number": "ПТУ-00000003", "v": 1}, documents[5]], paginator._key) == [
        {"number": "ПТУ-00000003", "v": 1}
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2)), max_size=4000))
def test_remembered_records_behave_as_a_set_of_key_and_content(pairs: list[tuple[int, int]]) -> None:
    """Across the table's growth, a record is fresh exactly when its (key, content) was never yielded."""
    records = [{"sku": f"S{number}", "warehouse": "w", "v": version} for number, version in pairs]
    paginator = OffsetPaginator(FakeServer([]).fetch, page_size=10, max_workers=1, key=key)
    got = [record for n in range(0, len(records), 97) for record in paginator._yielded.fresh(records[n : n + 97], key)]
    first_occurrences = {orjson.dumps(record): record for record in reversed(records)}
    assert got == sorted(first_occurrences.values(), key=records.index)
