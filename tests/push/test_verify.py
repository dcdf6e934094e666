"""The read-back verification overlaps the sending: date windows are read while later batches still go out,
each once every document in it is settled, and anything that changes after its window was read is read again."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from onec.push import Limits, PushOptions, push_file
from onec.push.content import DocumentContent
from onec.push.ledger import Change, Entry, State
from onec.push.readback import OneCCopy
from onec.push.turns import Turns
from onec.push.verify import Verifier, _Cutter
from onec.sandbox.engine import SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.warehouse import Warehouse
from tests.push.push_helpers import document_lines, fresh_data, numbers, sandbox_client, write_csv

TYPE = "goods-receipt"


class Recorder:
    """Every request the sandbox answers, in the order it answered them (thread-safe)."""

    def __init__(self, engine: SandboxEngine) -> None:
        self._handle = engine.handle
        self._lock = threading.Lock()
        self.log: list[tuple[SandboxRequest, SandboxResponse]] = []
        engine.handle = self.handle  # type: ignore[method-assign]

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        response = self._handle(request)
        with self._lock:
            self.log.append((request, response))
        return response


def _is_batch(request: SandboxRequest) -> bool:
    return request.method == "POST" and request.path.endswith("/batch")


def _range_read(request: SandboxRequest) -> tuple[str, str] | None:
    query: Any = request.query
    if request.method != "GET" or "date_from" not in query:
        return None
    return query["date_from"][0], query["date_to"][0]


def test_windows_are_read_while_later_batches_are_sent_and_each_was_complete(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    rows = document_lines(600)  # file order cycles through the month's dates
    path = write_csv(tmp_path / "receipts.csv", rows)
    engine = SandboxEngine(fresh_data(), SandboxConfig(max_batch_items=100))
    recorder = Recorder(engine)
    with sandbox_client(engine, rate_limit=50.0, page_size=100) as client:
        summary = push_file(path, TYPE, client, warehouse, run_id="r1", options=PushOptions(limits=Limits(100)))
    assert summary.complete and summary.verified == 600 and summary.mismatched == 0
    assert set(engine.data.count_documents_by_number(TYPE).values()) == {1}

    order = [(_is_batch(request), _range_read(request), response) for request, response in recorder.log]
    batches = [index for index, (is_batch, _, _) in enumerate(order) if is_batch]
    reads = [(index, span, response) for index, (_, span, response) in enumerate(order) if span is not None]
    assert reads[0][0] < batches[-1], "the first window should be read before the last batch is sent"
    assert len(reads) <= 600 // 100 + 2, "windows should cost hardly more reads than one paged read would"

    dates = {row["Number"]: datetime.fromisoformat(row["Date"]) for row in rows}
    verified: set[str] = set()
    for _, (date_from, date_to), response in reads:
        low, high = datetime.fromisoformat(date_from), datetime.fromisoformat(date_to)
        returned = {str(record["number"]).strip() for record in orjson.loads(response.body)["data"]}
        in_range = {number for number, date in dates.items() if low <= date < high}
        assert returned == in_range, "a window is read only once every document in its dates is in 1C"
        verified |= returned
    assert verified == numbers(rows)


def _content(number: int, moment: datetime) -> DocumentContent:
    return DocumentContent(f"N{number:04d}", f"h{number}", 1, Decimal(1), Decimal(1), moment)


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 40), min_size=1, max_size=120).map(sorted),
    size=st.integers(2, 30),
)
def test_windows_cover_every_document_once_and_never_split_a_second(seconds: list[int], size: int) -> None:
    documents = [_content(n, datetime(2026, 2, 1, 8, tzinfo=UTC) + timedelta(seconds=s)) for n, s in enumerate(seconds)]
    cutter = _Cutter(size)
    windows = [window for document in documents for window in cutter.add(document)] + cutter.flush()
    assert [d.number for w in windows for d in w] == [d.number for d in documents]
    for window in windows:
        assert len(window) <= size or len({d.date for d in window}) == 1, "over a page only for one second's many"
    for before, after in itertools.pairwise(windows):
        assert before[-1].date != after[0].date, "one range read takes every document of a second"


class FakeReadBack:
    """1C's copies are exactly the documents sent; counts the range reads."""

    def __init__(self) -> None:
        self.reads: list[set[str]] = []

    def in_range(self, contents: Sequence[DocumentContent]) -> dict[str, OneCCopy]:
        self.reads.append({c.number for c in contents})
        return {c.number: OneCCopy(c.number, "id", False, c) for c in contents}


def test_a_document_that_changes_after_its_window_was_read_is_read_again_at_the_end() -> None:
    documents = [_content(n, datetime(2026, 2, 1 + n // 4, 8, tzinfo=UTC)) for n in range(12)]
    read_back = FakeReadBack()
    verifier = Verifier(read_back, Turns(1000.0), window=4, early=True)  # type: ignore[arg-type]
    try:
        pending = {d.number: Entry(d.number, d.content_hash, State.PENDING, None, False, 0, None) for d in documents}
        verifier.track(documents, pending)
        verifier.tracked_all()
        verifier.changed([Change(d.number, State.CREATED) for d in documents[:4]])
        verifier.changed([Change(d.number, State.PENDING) for d in documents[4:8]])  # sent again: not settled
        deadline = time.monotonic() + 5
        while not read_back.reads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert read_back.reads == [{d.number for d in documents[:4]}], "only the settled window is read early"
        verifier.changed([Change(documents[0].number, State.CREATED, posted=True)])  # after its read
        verifier.changed([Change(d.number, State.CREATED) for d in documents[4:]])
        final = {d.number: Entry(d.number, d.content_hash, State.CREATED, "id", False, 1, None) for d in documents}
        checks = verifier.finish(final)
    finally:
        verifier.close()
    assert set(checks) == set(final) and all(c.verified for c in checks.values())
    assert read_back.reads[-1] == {documents[0].number}, "the changed document is read again at the end"
    assert sorted(len(r) for r in read_back.reads) == [1, 4, 4, 4]


def test_a_read_waiting_for_a_turn_goes_before_the_batches_already_waiting() -> None:
    turns = Turns(2.5)  # a turn every 0.4 s
    start = time.monotonic()
    turns.take()  # the next turn is 0.4 s away
    taken: list[tuple[str, float]] = []

    def take(name: str, first: bool) -> None:
        turns.take(first=first)
        taken.append((name, time.monotonic()))

    batches = [threading.Thread(target=take, args=(f"batch {n}", False)) for n in range(3)]
    for thread in batches:
        thread.start()
    deadline = time.monotonic() + 5
    while len(turns._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    read = threading.Thread(target=take, args=("read", True))
    read.start()
    for thread in [*batches, read]:
        thread.join(timeout=10)
    assert [name for name, _ in taken] == ["read", "batch 0", "batch 1", "batch 2"]
    # paced: the k-th turn after the first comes no earlier than k slots of 0.4 s after it (a thread woken late
    # does not push the later slots back, so the gaps between when the threads ran may be shorter under load)
    assert all(at >= start + 0.4 * k - 0.001 for k, (_, at) in enumerate(taken, 1)), "paced"
