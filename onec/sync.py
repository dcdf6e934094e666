"""One extraction, end to end: pages from 1C → canonical frames → validation → a staged, atomic landing.

This is the whole JSON path without Dagster, so the CLI, the Dagster assets, the tests and the benchmarks run the
very same code. Each call lands exactly one partition range and returns what it did, figures included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from onec.schema import DOCUMENT_SLUGS, document_type
from onec.sources import Source, SourceBatch
from onec.validation import (
    CheckedBatch,
    NamedRecords,
    TextRecords,
    check_documents,
    check_documents_text,
    check_goods,
    check_goods_text,
)
from onec.warehouse import Landing, LandingReport, Warehouse

ProgressCallback = Callable[[int], None]
PageT = TypeVar("PageT", bound=SourceBatch)
BATCH_RECORDS = 2000


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

    def as_metadata(self) -> dict[str, Any]:
        """Flat, secret-free figures; callers wrap them in their own metadata types."""
        flat = {k: v for k, v in asdict(self).items() if k != "http"}
        flat["date_from"] = self.date_from.isoformat()
        flat["date_to"] = self.date_to.isoformat()
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
) -> ExtractResult:
    """Land a full goods snapshot for `snapshot_date`, replacing any earlier snapshot of that day."""

    def check(records: SourceBatch) -> CheckedBatch:
        if isinstance(records, TextRecords):
            return check_goods_text(
                records, snapshot_date=snapshot_date, timezone=timezone, run_id=run_id, source=source.name
            )
        return check_goods(records, snapshot_date=snapshot_date, timezone=timezone, run_id=run_id, source=source.name)

    landing = warehouse.goods_snapshot(snapshot_date, run_id=run_id, source=source.name)
    return land_pages(
        source,
        landing,
        source.goods(),
        check,
        run_id=run_id,
        entity="goods",
        doc_type=None,
        span=(snapshot_date, snapshot_date + timedelta(days=1)),
        on_records=on_records,
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
) -> ExtractResult:
    """Land every document of one type dated in [date_from, date_to), replacing those days wholesale."""
    document_type(doc_type)
    if date_to <= date_from:
        raise ValueError(f"empty date range: {date_from} .. {date_to} (the end is exclusive)")

    def check(records: SourceBatch) -> CheckedBatch:
        options = dict(timezone=timezone, run_id=run_id, source=source.name)
        if isinstance(records, TextRecords):
            return check_documents_text(records, doc_type=doc_type, date_from=date_from, date_to=date_to, **options)
        return check_documents(records, doc_type=doc_type, date_from=date_from, date_to=date_to, **options)

    landing = warehouse.document_range(doc_type, date_from, date_to, run_id=run_id, source=source.name)
    return land_pages(
        source,
        landing,
        source.documents(doc_type, date_from, date_to),
        check,
        run_id=run_id,
        entity="documents",
        doc_type=doc_type,
        span=(date_from, date_to),
        on_records=on_records,
    )


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
) -> list[ExtractResult]:
    """The whole sync: a goods snapshot and each document type over the range, `parallel` entities at a time.

    Entities overlap so that 1C is never idle while one of them validates or commits (commits themselves are
    serialised by the warehouse lock); they share the source's session, so together they still keep to its one
    rate limit and connection cap.
    """
    jobs: list[Callable[[], ExtractResult]] = [
        partial(
            extract_goods,
            source,
            warehouse,
            snapshot_date=snapshot_date,
            run_id=run_id,
            timezone=timezone,
            on_records=on_records,
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
            )
        )
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="extract") as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result() for future in futures]


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
) -> ExtractResult:
    """Check and stage every page, then commit the landing (with the change cursor or the source versions the
    rows cover, if any) and report. `cursor` is asked once every page has been read: an incremental cursor
    follows what 1C sent, so it is known only then (None: leave the cursor as it is)."""
    started = time.perf_counter()
    before = source.stats.snapshot()
    records = 0
    with landing:
        for batch in _batched(pages, BATCH_RECORDS):
            records += len(batch)
            landing.add(check(batch))
            if on_records is not None:
                on_records(len(batch))
        http = _delta(before, source.stats.snapshot())
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
    )


def _batched(pages: Iterator[PageT], size: int) -> Iterator[PageT]:
    """Join pages into batches of about `size` records: validation has a fixed cost per call (~25 ms to plan),
    so checking 1C's small pages one by one would dominate; memory stays bounded by `size`. Text batches (CSV)
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


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after}
