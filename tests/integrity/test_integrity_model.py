"""The integrity model (docs/integrity.md) as a hypothesis state machine over one sandbox 1C and one warehouse.

Random sequences of 1C changes (new, edited, re-posted, re-dated, deletion-marked documents, price changes) and
landings (full syncs of a range, backfills of one type over sub-ranges, incremental runs, CSV / UDE XML exports of
a range, a stale export re-dropped, an export with a mistyped year, an all-rejected export, an incremental run
killed between its DuckDB commit and its lake files, a backfill whose staging write meets a full disk). 1C's clock
may run behind ours by more than the incremental overlap. After every step:

(a) the lake equals the warehouse once pending lake work is completed (a fresh `Warehouse.initialize()`);
(b) on every day a complete source (a sync range or a backfill) covered since 1C last changed that day, the
    warehouse's documents of the type are exactly 1C's: numbers, dates, line counts, totals;
(c) nothing valid is missing: every document a landed source carried is in the warehouse, unless a later complete
    source covering the day it was carried on no longer saw it there (1C re-dated it);
(d) every rejected row has a reason and its raw text;
(e) a step that raised left no partial landing (table counts unchanged).

The expectations come from the sandbox's own holdings (`SandboxData.documents_holdings`) and from what each step
handed the warehouse, never from the warehouse code. CI runs a few derandomized examples (~1-2 min);
`ONEC_INTEGRITY_SOAK_MINUTES=30` runs fresh random examples for that long and prints the steps and examples done.
"""

# ruff: noqa: S608 — table names below are test constants.

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from onec import lake
from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.exchange_files import load_files
from onec.incremental import sync_changes
from onec.sandbox.data import Document, SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.exports import ExportVariant, documents_csv, documents_xml
from onec.sandbox.mutations import SandboxMutator
from onec.sync import extract_all, extract_documents, local_today
from onec.warehouse import Warehouse
from tests.core.test_lake_mirror import KillAtFile, Killed
from tests.lake_equality import assert_lake_equals_warehouse

ZONE = "Europe/Moscow"
DAYS = 16
TYPES = ("shipment", "goods-receipt")
MISTYPED_YEAR = "0002"
COUNTED_TABLES = ("documents", "document_lines", "goods", "goods_history", "rejected_rows", "sync_cursors")
SOAK_MINUTES = float(os.environ.get("ONEC_INTEGRITY_SOAK_MINUTES") or 0)

Key = tuple[str, str]
"""(doc_type, number): a document's identity in 1C and in the warehouse."""


@dataclass(frozen=True)
class Version:
    """What 1C held of a document at one moment: enough to tell a change and the day it sits on."""

    day: date
    modified_at: datetime | None


@dataclass
class Counters:
    steps: int = 0
    examples: int = 0


COUNTERS = Counters()


class IntegrityMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        COUNTERS.examples += 1
        self.directory = Path(tempfile.mkdtemp(prefix="integrity-model-"))
        self.zone = ZoneInfo(ZONE)
        self.start = local_today(ZONE) - timedelta(days=DAYS)
        self.data = SandboxData.generate(seed=17, documents=90, start=self.start, days=DAYS, timezone=ZONE)
        self.engine = SandboxEngine(self.data, SandboxConfig(max_page_size=40))
        self.offset = timedelta(0)
        self.mutator = SandboxMutator(self.data, seed=23, clock=self.one_c_now)
        self.warehouse = self.open_warehouse()
        self.covered: set[tuple[str, date]] = set()
        """(type, day) a complete source covered since 1C last changed that day."""
        self.carried: dict[Key, date] = {}
        """Documents a landed source carried → the day they were on when it did."""
        self.unseen_by_incremental: dict[str, set[Key] | None] = dict.fromkeys(TYPES)
        """Per type, documents 1C changed since the last incremental run that completed (None: it never ran)."""
        self.stale_exports: list[tuple[Path, str, dict[str, Version]]] = []
        """Copies of exports kept aside, with the versions of the documents they hold."""
        self.files = 0

    # --- 1C and the client

    def one_c_now(self) -> datetime:
        """1C's clock, `offset` away from ours: what it stamps changes with."""
        return (datetime.now(self.zone) + self.offset).replace(microsecond=0) - timedelta(seconds=1)

    @contextmanager
    def client(self) -> Iterator[OneCClient]:
        configured = Settings(timezone=ZONE, data_dir=self.directory / "client", page_size=30, rate_limit=10_000)
        with open_client(configured, engine=self.engine) as client:
            yield client

    def open_warehouse(self) -> Warehouse:
        """A new Warehouse object, as a new process opens one (it completes pending lake work first)."""
        warehouse = Warehouse(self.directory / "data", ZONE)
        warehouse.initialize()
        return warehouse

    def holdings(self, doc_type: str, first: date | None = None, end: date | None = None) -> list[Document]:
        return self.data.documents_holdings(doc_type, first, end)

    def version(self, document: Document) -> Version:
        return Version(document.date.astimezone(self.zone).date(), document.modified_at)

    def versions(self) -> dict[Key, Version]:
        return {(t, d.number): self.version(d) for t in TYPES for d in self.holdings(t)}

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def span(self, first: int, length: int) -> tuple[date, date]:
        """[first day, end) inside the base (end exclusive)."""
        first = min(first, DAYS - 1)
        return self.day(first), self.day(min(DAYS, first + length))

    # --- setup

    @initialize(offset_min=st.sampled_from([0, 0, -15, 3]))
    def one_c_clock(self, offset_min: int) -> None:
        """1C's clock may run behind ours by more than the incremental overlap (10 min), or a little ahead."""
        self.offset = timedelta(minutes=offset_min)
        self.engine.config = replace(self.engine.config, clock_offset_s=self.offset.total_seconds())

    # --- 1C changes

    @rule(
        kind=st.sampled_from(["new", "edit", "repost", "delete", "move", "price"]),
        doc_type=st.sampled_from(TYPES),
        days=st.sampled_from([-4, -1, 2]),
    )
    def one_c_changes(self, kind: str, doc_type: str, days: int) -> None:
        before = self.versions()
        change: Callable[[], object] = {
            "new": lambda: self.mutator.new_document(doc_type, self.day(DAYS - 1 - abs(days))),
            "edit": lambda: self.mutator.edit_document(doc_type, timedelta(days=3)),
            "repost": lambda: self.mutator.repost_document(doc_type),
            "delete": lambda: self.mutator.mark_deleted(doc_type, timedelta(days=2)),
            "move": lambda: self.mutator.move_document(doc_type, days, timedelta(days=2)),
            "price": lambda: self.mutator.change_price(),
        }[kind]
        change()
        for key, version in self.versions().items():
            old = before.get(key)
            if old == version:
                continue
            for changed in {version.day, *([old.day] if old else [])}:
                self.covered.discard((key[0], changed))
            pending = self.unseen_by_incremental[key[0]]
            if pending is not None:
                pending.add(key)

    # --- complete sources

    @rule(first=st.integers(0, DAYS - 1), length=st.integers(1, DAYS))
    def full_sync_of_a_range(self, first: int, length: int) -> None:
        date_from, date_to = self.span(first, length)
        with self.client() as client:
            extract_all(client, self.warehouse, date_from=date_from, date_to=date_to, snapshot_date=local_today(ZONE),
                        run_id=self.run_id("sync"), timezone=ZONE, doc_types=TYPES)  # fmt: skip
        for doc_type in TYPES:
            self.complete_source_landed(doc_type, date_from, date_to)

    @rule(doc_type=st.sampled_from(TYPES), first=st.integers(0, DAYS - 1), length=st.integers(1, 4))
    def backfill_of_days(self, doc_type: str, first: int, length: int) -> None:
        """A Dagster partition range: one document type, day by day."""
        date_from, date_to = self.span(first, length)
        with self.client() as client:
            day = date_from
            while day < date_to:
                end = day + timedelta(days=1)
                extract_documents(client, self.warehouse, doc_type=doc_type, date_from=day, date_to=end,
                                  run_id=self.run_id("backfill"), timezone=ZONE)  # fmt: skip
                self.complete_source_landed(doc_type, day, end)
                day += timedelta(days=1)

    def complete_source_landed(self, doc_type: str, date_from: date, date_to: date) -> None:
        """What a range of one type 1C answered in full replaces. One that brought no document replaces nothing
        (an empty input deletes nothing: issue 12, `--force-replace` aside), so it covers no day either."""
        days = {date_from + timedelta(days=n) for n in range((date_to - date_from).days)}
        seen = {d.number: d.date.astimezone(self.zone).date() for d in self.holdings(doc_type, date_from, date_to)}
        if not seen:
            return
        for key, day in list(self.carried.items()):
            if key[0] == doc_type and day in days and key[1] not in seen:
                del self.carried[key]
        self.carried.update({(doc_type, number): day for number, day in seen.items()})
        self.covered.update((doc_type, day) for day in days)

    # --- incremental

    @rule()
    def incremental_run(self) -> None:
        with self.client() as client:
            sync_changes(client, self.warehouse, run_id=self.run_id("incremental"), timezone=ZONE,
                         entities=("goods", *TYPES))  # fmt: skip
        current = self.versions()
        for doc_type in TYPES:
            pending = self.unseen_by_incremental[doc_type]
            keys = [k for k in current if k[0] == doc_type] if pending is None else pending
            self.carried.update({key: current[key].day for key in keys})
            self.unseen_by_incremental[doc_type] = set()

    @rule(kill_at=st.integers(1, 6))
    def incremental_run_killed_after_its_commit(self, kill_at: int) -> None:
        """Killed while it puts its n-th lake file in place (its DuckDB transaction, cursor included, committed).
        The model takes nothing from it: what it landed is landed again by whatever runs next."""
        original = lake._commit_file
        lake._commit_file = KillAtFile(kill_at)
        try:
            with self.client() as client:
                sync_changes(client, self.warehouse, run_id=self.run_id("killed"), timezone=ZONE,
                             entities=("goods", *TYPES))  # fmt: skip
        except Killed:
            pass
        finally:
            lake._commit_file = original
        self.warehouse = self.open_warehouse()

    # --- exchange files

    @rule(fmt=st.sampled_from(["csv", "xml"]), doc_type=st.sampled_from(TYPES), first=st.integers(0, DAYS - 1),
          length=st.integers(1, DAYS), keep_a_copy=st.booleans())  # fmt: skip
    def export_file_loaded(self, fmt: str, doc_type: str, first: int, length: int, keep_a_copy: bool) -> None:
        documents = self.holdings(doc_type, *self.span(first, length))
        path = self.export(fmt, doc_type, documents)
        if keep_a_copy:
            copy = path.with_name(f"stale-{path.name}")
            shutil.copy(path, copy)
            versions = {d.number: self.version(d) for d in documents}
            self.stale_exports.append((copy, doc_type, versions))
        self.load(path)
        self.carried.update({(doc_type, d.number): d.date.astimezone(self.zone).date() for d in documents})

    @rule(data=st.data())
    def stale_export_dropped_again(self, data: st.DataObject) -> None:
        """An old export re-dropped: versions older than the warehouse's are set aside, so it carries nothing the
        model may count on, and the days of documents 1C changed since are no longer known to match."""
        if not self.stale_exports:
            return
        path, doc_type, versions = data.draw(st.sampled_from(self.stale_exports))
        self.load(path)
        current = self.versions()
        for number, version in versions.items():
            if current.get((doc_type, number)) != version:
                self.covered.discard((doc_type, version.day))

    @rule(doc_type=st.sampled_from(TYPES), first=st.integers(0, DAYS - 1), length=st.integers(1, DAYS),
          which=st.integers(0, 1_000))  # fmt: skip
    def export_with_a_mistyped_year_loaded(self, doc_type: str, first: int, length: int, which: int) -> None:
        documents = self.holdings(doc_type, *self.span(first, length))
        if not documents:
            return
        mistyped = documents[which % len(documents)].number
        path = self.export("csv", doc_type, documents, mistype=lambda number: number == mistyped)
        self.load(path)
        self.carried.update(
            {(doc_type, d.number): d.date.astimezone(self.zone).date() for d in documents if d.number != mistyped}
        )

    @rule(doc_type=st.sampled_from(TYPES), first=st.integers(0, DAYS - 1), length=st.integers(1, DAYS))
    def export_with_every_row_rejected_loaded(self, doc_type: str, first: int, length: int) -> None:
        documents = self.holdings(doc_type, *self.span(first, length))
        if documents:
            self.load(self.export("csv", doc_type, documents, mistype=lambda _number: True))

    def export(self, fmt: str, doc_type: str, documents: list[Document], mistype: Any = None) -> Path:
        self.files += 1
        path = self.directory / "files" / f"{doc_type}-{self.files}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        variant = ExportVariant()
        if fmt == "xml":
            chunks = documents_xml(documents, variant, datetime.combine(self.start, datetime.min.time()))
        else:
            chunks = documents_csv(documents, variant)
        content = b"".join(chunks)
        if mistype is not None:
            content = mistyped_years(content, mistype)
        path.write_bytes(content)
        return path

    def load(self, path: Path) -> None:
        load_files([path], self.warehouse, timezone=ZONE, run_id=self.run_id("file"))

    # --- failures

    @rule(doc_type=st.sampled_from(TYPES), first=st.integers(0, DAYS - 1), length=st.integers(1, DAYS))
    def backfill_meets_a_full_disk(self, doc_type: str, first: int, length: int) -> None:
        """The staging write fails with ENOSPC: the step raises and nothing of it lands."""
        before = self.counts()
        date_from, date_to = self.span(first, length)
        original = pl.DataFrame.write_parquet

        def full(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        pl.DataFrame.write_parquet = full  # type: ignore[method-assign]
        try:
            with self.client() as client, pytest.raises(Exception, match=r"(?i)space"):
                extract_documents(client, self.warehouse, doc_type=doc_type, date_from=date_from, date_to=date_to,
                                  run_id=self.run_id("disk-full"), timezone=ZONE)  # fmt: skip
        finally:
            pl.DataFrame.write_parquet = original  # type: ignore[method-assign]
        self.warehouse = self.open_warehouse()
        assert self.counts() == before, "a failed landing changed the warehouse"

    # --- invariants

    @invariant()
    def lake_equals_warehouse(self) -> None:
        COUNTERS.steps += 1
        assert_lake_equals_warehouse(self.open_warehouse())

    @invariant()
    def covered_days_equal_one_c(self) -> None:
        held = self.warehouse.query(
            "SELECT d.doc_type, d.number, d.date, d.doc_date, count(l.line) AS lines, sum(l.total) AS total"
            " FROM documents d LEFT JOIN document_lines l USING (doc_type, number)"
            " GROUP BY ALL ORDER BY ALL"
        )
        by_day: dict[tuple[str, date], set[tuple[Any, ...]]] = {}
        for doc_type, number, when, day, lines, total in held.rows():
            by_day.setdefault((doc_type, day), set()).add((number, when, lines, total))
        for doc_type, day in sorted(self.covered):
            expected = {one_c_summary(d) for d in self.holdings(doc_type, day, day + timedelta(days=1))}
            actual = by_day.get((doc_type, day), set())
            assert actual == expected, (
                f"{doc_type} on {day}: missing {sorted(expected - actual)[:3]}, extra {sorted(actual - expected)[:3]}"
            )

    @invariant()
    def nothing_valid_missing(self) -> None:
        held = set(self.warehouse.query("SELECT doc_type, number FROM documents").rows())
        missing = sorted(set(self.carried) - held)
        assert not missing, f"carried, held by 1C, missing from the warehouse: {missing[:5]}"

    @invariant()
    def every_rejected_row_says_why(self) -> None:
        unexplained = self.warehouse.query(
            "SELECT entity, doc_type, record_key, reason, raw FROM rejected_rows"
            " WHERE coalesce(trim(reason), '') = '' OR coalesce(trim(raw), '') = ''"
        )
        assert unexplained.is_empty(), f"rejected rows without a reason or raw text:\n{unexplained}"

    # --- helpers

    def counts(self) -> dict[str, int]:
        return {table: self.warehouse.query(f"SELECT count(*) FROM {table}").item() for table in COUNTED_TABLES}

    def run_id(self, kind: str) -> str:
        return f"{kind}-{COUNTERS.steps}"

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def one_c_summary(document: Document) -> tuple[Any, ...]:
    """What (b) compares: number, date, line count, total, as 1C holds them."""
    totals = [line.total for line in document.items if line.total is not None]
    total = sum(totals, Decimal(0)) if totals else None
    return document.number, document.date, len(document.items), total


def mistyped_years(content: bytes, mistype: Any) -> bytes:
    """A CSV export whose chosen documents' Date cells carry year 2 (a typo of 2026, say)."""
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    header = rows[0]
    number, when = header.index("Number"), header.index("Date")
    for row in rows[1:]:
        if mistype(row[number]):
            row[when] = MISTYPED_YEAR + row[when][4:]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


CI_SETTINGS = settings(
    max_examples=8,
    stateful_step_count=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.skipif(SOAK_MINUTES > 0, reason="the soak below runs instead")
def test_integrity_model() -> None:
    run_state_machine_as_test(IntegrityMachine, settings=CI_SETTINGS)


@pytest.mark.skipif(SOAK_MINUTES <= 0, reason="set ONEC_INTEGRITY_SOAK_MINUTES to soak")
@pytest.mark.timeout(SOAK_MINUTES * 60 + 900)
def test_integrity_model_soak() -> None:
    """Fresh random examples until the time is up; a failure shrinks and prints its sequence."""
    deadline = time.monotonic() + SOAK_MINUTES * 60
    soak = settings(CI_SETTINGS, max_examples=5, stateful_step_count=20, derandomize=False, database=None)
    rounds = 0
    while time.monotonic() < deadline:
        run_state_machine_as_test(IntegrityMachine, settings=soak)
        rounds += 1
    print(f"\nintegrity soak: {SOAK_MINUTES:g} min, {rounds} rounds, {COUNTERS.examples} examples,"
          f" {COUNTERS.steps} steps checked, no failure")  # fmt: skip
