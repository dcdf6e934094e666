"""One extraction, end to end: pages from 1C → canonical frames → validation → a staged, atomic landing.

This is the whole JSON path without Dagster, so the CLI, the Dagster assets, the tests and the benchmarks run the
very same code. Each call lands exactly one partition range and returns what it did, figures included.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from onec.http.limits import query_stats
from onec.progress import EntityProgress, reporting_to
from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DOCUMENT_SLUGS, document_type
from onec.sources import Source
from onec.sources.typing import NamedRecords, SourceBatch, TextRecords
from onec.validation import CheckedBatch, DocumentsScope, GoodsScope, check
from onec.warehouse import Landing, LandingReport, Warehouse

ProgressCallback = Callable[[str], EntityProgress]
"""Gives the progress display of one entity (`goods` or a document type) when its landing starts."""
PageT = TypeVar("PageT", bound=SourceBatch)
BATCH_RECORDS = 2000
ALL_DATES = (date.min, date.max)
"""The span of a landing that is not a range: documents merged by key, whatever their dates."""


@dataclass(frozen=True)
class ExtractResult:
    """What one extraction landed and what it cost; becomes Dagster metadata and the CLI summary."""

    run_id: str
    entity: str
    doc_type: str | None
    date_from: date
    date_to: date
    records: int
    rows: int
    lines: int
    rejected: int
    duplicates: int
    elapsed_s: float
    http: Mapping[str, int] = field(default_factory=dict)
    lake_files: int = 0
    lake_bytes: int = 0
    notes: Mapping[str, int] = field(default_factory=dict)
    """Rows that landed with a note (odd but real 1C data, `docs/validation.md`), counted per rule."""

    @property
    def noted(self) -> int:
        return sum(self.notes.values())

    def as_metadata(self) -> dict[str, Any]:
        """Secret-free figures, flat but for `notes` (rule → rows); callers wrap them in their own metadata types."""
        flat = {k: v for k, v in asdict(self).items() if k not in ("http", "notes")}
        flat["date_from"] = self.date_from.isoformat()
        flat["date_to"] = self.date_to.isoformat()
        flat["noted"] = self.noted
        flat["notes"] = dict(sorted(self.notes.items()))
        flat.update({f"http_{k}": v for k, v in self.http.items()})
        return flat


def local_today(timezone: str) -> date:
    """The calendar day in the 1C server's zone: a goods snapshot belongs to 1C's day, not the runner's."""
    return datetime.now(ZoneInfo(timezone)).date()


def extract_goods(
    source: Source,
    warehouse: Warehouse,
    *,
    snapshot_date: date,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None = None,
    rules: ValidationRules = DEFAULT_RULES,
    stop: StopSignal | None = None,
    complete: bool = True,
) -> ExtractResult:
    """Land the goods for `snapshot_date`. `complete`: the source holds every position, and replaces the day's
    snapshot; otherwise its positions merge into it (started from the latest earlier snapshot)."""

    def checked(records: SourceBatch) -> CheckedBatch:
        scope = GoodsScope(snapshot_date)
        return check(records, scope, timezone=timezone, run_id=run_id, source=source.name, rules=rules)

    land = warehouse.goods_snapshot if complete else warehouse.goods_changes
    landing = land(snapshot_date, run_id=run_id, source=source.name)
    return land_pages(
        source,
        landing,
        source.goods(),
        checked,
        run_id=run_id,
        entity="goods",
        doc_type=None,
        span=(snapshot_date, snapshot_date + timedelta(days=1)),
        on_records=on_records,
        stop=stop,
    )


def extract_documents(
    source: Source,
    warehouse: Warehouse,
    *,
    doc_type: str,
    date_from: date,
    date_to: date,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None = None,
    rules: ValidationRules = DEFAULT_RULES,
    stop: StopSignal | None = None,
) -> ExtractResult:
    """Land every document of one type dated in [date_from, date_to), replacing those days wholesale: for a source
    that holds all of them (a sync or backfill range, an export fetched with that range)."""
    document_type(doc_type)
    if date_to <= date_from:
        raise ValueError(f"empty date range: {date_from} .. {date_to} (the end is exclusive)")
    landing = warehouse.document_range(doc_type, date_from, date_to, run_id=run_id, source=source.name)
    return land_pages(
        source,
        landing,
        source.documents(doc_type, date_from, date_to),
        _documents_check(source, doc_type, (date_from, date_to), run_id, timezone, rules),
        run_id=run_id,
        entity="documents",
        doc_type=doc_type,
        span=(date_from, date_to),
        on_records=on_records,
        stop=stop,
    )


def upsert_documents(
    source: Source,
    warehouse: Warehouse,
    *,
    doc_type: str,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None = None,
    rules: ValidationRules = DEFAULT_RULES,
) -> ExtractResult:
    """Land the documents of one type a source holds, of any date, each replacing its own earlier version (lines
    with it) unless the held one is newer, and nothing else: for a source that declares no range (an exchange
    file someone dropped), whose dates say where its documents are, never that the days between hold no others."""
    document_type(doc_type)
    landing = warehouse.document_changes(doc_type, run_id=run_id, source=source.name, newer_only=True)
    return land_pages(
        source,
        landing,
        source.documents(doc_type, *ALL_DATES),
        _documents_check(source, doc_type, ALL_DATES, run_id, timezone, rules),
        run_id=run_id,
        entity="documents",
        doc_type=doc_type,
        span=ALL_DATES,
        on_records=on_records,
    )


def _documents_check(
    source: Source, doc_type: str, window: tuple[date, date], run_id: str, timezone: str, rules: ValidationRules
) -> Callable[[SourceBatch], CheckedBatch]:
    def checked(records: SourceBatch) -> CheckedBatch:
        scope = DocumentsScope(doc_type, window[0], window[1])
        return check(records, scope, timezone=timezone, run_id=run_id, source=source.name, rules=rules)

    return checked


def extract_all(
    source: Source,
    warehouse: Warehouse,
    *,
    date_from: date,
    date_to: date,
    snapshot_date: date,
    run_id: str,
    timezone: str,
    doc_types: Iterable[str] = DOCUMENT_SLUGS,
    on_records: ProgressCallback | None = None,
    parallel: int = 2,
    rules: ValidationRules = DEFAULT_RULES,
) -> list[ExtractResult]:
    """The whole sync: a goods snapshot and each document type over the range, `parallel` entities at a time.

    Entities overlap so that 1C is never idle while one of them validates or commits (commits themselves are
    serialised by the warehouse lock); they share the source's session, so together they still keep to its one
    rate limit and connection cap. Ctrl-C stops it within a couple of seconds: entities committing finish, those
    still fetching are discarded, and `Interrupted` says which is which.
    """
    stop = StopSignal()
    names = ["goods", *doc_types]
    jobs: list[Callable[[], ExtractResult]] = [
        partial(
            extract_goods,
            source,
            warehouse,
            snapshot_date=snapshot_date,
            run_id=run_id,
            timezone=timezone,
            on_records=on_records,
            rules=rules,
            stop=stop,
        )
    ]
    for slug in doc_types:
        jobs.append(
            partial(
                extract_documents,
                source,
                warehouse,
                doc_type=slug,
                date_from=date_from,
                date_to=date_to,
                run_id=run_id,
                timezone=timezone,
                on_records=on_records,
                rules=rules,
                stop=stop,
            )
        )
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="extract")
    futures = [pool.submit(job) for job in jobs]
    try:
        results = [future.result() for future in futures]
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise _interrupted(names, futures, stop) from None
    pool.shutdown()
    return results


class StopSignal:
    """Set once by an interrupted run; landings check it between batches, and say when they are committing (a
    commit under way is let finish, so an interrupt never leaves an entity half landed)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._committing: set[str] = set()

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise _Stopped

    def committing(self, name: str) -> bool:
        with self._lock:
            return name in self._committing

    @contextmanager
    def committing_now(self, name: str) -> Iterator[None]:
        with self._lock:
            self._committing.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._committing.discard(name)


class Interrupted(Exception):
    """Ctrl-C during a sync. Each entity either landed whole or was discarded whole; this says which."""

    def __init__(self, landed: list[str], discarded: list[str]) -> None:
        super().__init__(f"interrupted: landed {', '.join(landed) or 'nothing'}; discarded {', '.join(discarded)}")
        self.landed = landed
        self.discarded = discarded


class _Stopped(Exception):
    """Raised in a landing that was still fetching when the run was interrupted: its staged rows are dropped."""


INTERRUPT_GRACE_S = 2.0
"""How long an interrupted run waits for entities still fetching to notice; commits under way always finish."""


def _interrupted(names: list[str], futures: list[Future[ExtractResult]], stop: StopSignal) -> Interrupted:
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for name, future in zip(names, futures, strict=True):
        while not future.done() and (stop.committing(name) or time.monotonic() < deadline):
            time.sleep(0.05)
    landed = [n for n, f in zip(names, futures, strict=True) if f.done() and not f.cancelled() and not f.exception()]
    return Interrupted(landed, [name for name in names if name not in landed])


def land_pages(
    source: Source,
    landing: Landing,
    pages: Iterator[PageT],
    check: Callable[[PageT], CheckedBatch],
    *,
    run_id: str,
    entity: str,
    doc_type: str | None,
    span: tuple[date, date],
    on_records: ProgressCallback | None,
    cursor: Callable[[], datetime | None] | None = None,
    versions: Mapping[str, str] | None = None,
    stop: StopSignal | None = None,
) -> ExtractResult:
    """Check and stage every page, then commit the landing (with the change cursor or the source versions the
    rows cover, if any) and report. `cursor` is asked once every page has been read: an incremental cursor
    follows what 1C sent, so it is known only then (None: leave the cursor as it is)."""
    started = time.perf_counter()
    records = 0
    name = doc_type or entity
    stop = stop or StopSignal()
    progress = on_records(name) if on_records is not None else None
    notes: Counter[str] = Counter()
    with landing:
        with query_stats() as query, reporting_to(progress):
            for batch in _batched(pages, BATCH_RECORDS):
                stop.check()
                records += len(batch)
                checked = check(batch)
                notes.update(checked.notes)
                landing.add(checked)
                if progress is not None:
                    progress.advance(len(batch))
        http = query.snapshot()
        with stop.committing_now(name):
            report: LandingReport = landing.commit(
                stats=http, cursor=cursor() if cursor is not None else None, versions=versions
            )
    return ExtractResult(
        run_id=run_id,
        entity=entity,
        doc_type=doc_type,
        date_from=span[0],
        date_to=span[1],
        records=records,
        rows=report.rows,
        lines=report.lines,
        rejected=report.rejected,
        duplicates=report.duplicates,
        elapsed_s=round(time.perf_counter() - started, 3),
        http=http,
        lake_files=len(report.lake_files),
        lake_bytes=report.lake_bytes,
        notes=dict(notes),
    )


def _batched(pages: Iterator[PageT], size: int) -> Iterator[PageT]:
    """Join pages into batches of about `size` records: validation has a fixed cost per call, whatever the size
    of the batch (docs/benchmarks.md, History), so checking 1C's small pages one by one would dominate; memory
    stays bounded by `size`. Text batches (CSV)
    come big already, and must not be joined or split (a document's rows stay together), so they pass through,
    as do batches of file-named records (UDE XML), which come big too and carry their own names."""
    batch: list[dict[str, Any]] = []
    for page in pages:
        if isinstance(page, TextRecords | NamedRecords):
            if batch:
                yield cast(PageT, batch)
                batch = []
            yield page
            continue
        batch.extend(page)
        if len(batch) >= size:
            yield cast(PageT, batch)
            batch = []
    if batch:
        yield cast(PageT, batch)
