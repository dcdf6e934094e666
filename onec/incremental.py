"""Incremental sync: land only what 1C changed since the last run, without ever missing a change.

How a change cannot be missed:
- Each entity (goods, each document type) has a change cursor in the warehouse, saved in the same transaction as
  the rows it covers. A run that fails or is killed lands nothing of that entity and leaves its cursor alone.
- A run asks for `modified_since = cursor − overlap` and `modified_until = run start`, the start pinned once per
  run (whole seconds, 1C's resolution) and exclusive: a row changing while the run reads is after the window and
  is caught next time. The overlap absorbs clock skew between 1C and us and late commits inside 1C.
- Rows come back more than once (overlap, retries): landing merges them by key, so repeats are harmless.

With no cursor yet an entity is bootstrapped by a full scan with no date filter (rows without `modified_at`
only show up there), and the cursor starts at the run start. Full refreshes and date-range backfills
(`onec.sync`) do not touch the cursors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from onec.config import IncrementalSettings
from onec.http.limits import RequestStats
from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DOCUMENT_SLUGS, document_type
from onec.sources import Batch
from onec.sync import ExtractResult, ProgressCallback, land_pages
from onec.validation import CheckedBatch, check_documents, check_goods
from onec.warehouse import Warehouse

GOODS = "goods"
ENTITIES: tuple[str, ...] = (GOODS, *DOCUMENT_SLUGS)
DEFAULT_OVERLAP = IncrementalSettings.overlap
ALL_DATES = (date.min, date.max)
"""The validation window of a merge: a changed document may be dated anywhere."""


class ChangeSource(Protocol):
    """A way into 1C that can filter by modification time (§1.2); `OneCClient` is one."""

    name: str

    @property
    def stats(self) -> RequestStats: ...

    def goods(
        self, modified_since: datetime | None = None, modified_until: datetime | None = None
    ) -> Iterator[Batch]: ...

    def documents(
        self,
        doc_type: str,
        date_from: date | None = None,
        date_to: date | None = None,
        modified_since: datetime | None = None,
        modified_until: datetime | None = None,
    ) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class ChangeWindow:
    """What one entity asks 1C for. `since` None: no cursor yet, a full scan (then `until` is None too, so rows
    1C keeps without `modified_at` are included); `cursor` is what the entity's cursor becomes once landed."""

    since: datetime | None
    until: datetime | None
    cursor: datetime

    @property
    def bootstrap(self) -> bool:
        return self.since is None


@dataclass(frozen=True)
class ChangeResult:
    """One entity's incremental landing: the window it asked for and what it landed."""

    entity: str
    window: ChangeWindow
    extract: ExtractResult

    def as_metadata(self) -> dict[str, object]:
        flat = dict(self.extract.as_metadata())
        flat.update(
            entity=self.entity,
            mode="bootstrap" if self.window.bootstrap else "incremental",
            modified_since=self.window.since.isoformat() if self.window.since else None,
            modified_until=self.window.until.isoformat() if self.window.until else None,
            cursor=self.window.cursor.isoformat(),
        )
        return flat


def pinned_run_start(now: datetime | None = None) -> datetime:
    """The run's `modified_until`: now, cut to whole seconds (1C stamps and reads dates to the second)."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("the run start must be timezone-aware")
    return moment.replace(microsecond=0)


def change_window(cursor: datetime | None, run_start: datetime, overlap: timedelta) -> ChangeWindow:
    """The window of one entity for a run pinned at `run_start`."""
    if overlap < timedelta(0):
        raise ValueError("the overlap must not be negative")
    if cursor is None:
        return ChangeWindow(since=None, until=None, cursor=run_start)
    return ChangeWindow(since=cursor - overlap, until=run_start, cursor=max(cursor, run_start))


def check_entities(entities: Iterable[str]) -> tuple[str, ...]:
    """Entity names in the canonical order, each known, each once."""
    wanted = set(entities)
    unknown = wanted - set(ENTITIES)
    if unknown:
        raise ValueError(f"unknown entities {sorted(unknown)}; expected some of: {', '.join(ENTITIES)}")
    return tuple(entity for entity in ENTITIES if entity in wanted)


def sync_changes(
    source: ChangeSource,
    warehouse: Warehouse,
    *,
    run_id: str,
    timezone: str,
    entities: Sequence[str] = ENTITIES,
    overlap: timedelta = DEFAULT_OVERLAP,
    run_start: datetime | None = None,
    on_records: ProgressCallback | None = None,
    rules: ValidationRules = DEFAULT_RULES,
) -> list[ChangeResult]:
    """Land the changes of each entity, one committed landing (and cursor) per entity, all pinned to one start.

    Entities are independent: if one fails, those before it stay landed with their cursors advanced and the
    error propagates; the next run resumes the failed one from its old cursor.
    """
    start = pinned_run_start(run_start)
    cursors = warehouse.cursors()
    results = []
    for entity in check_entities(entities):
        window = change_window(cursors.get(_cursor_key(entity)), start, overlap)
        if entity == GOODS:
            extract = _land_goods(source, warehouse, window, start, run_id, timezone, on_records, rules)
        else:
            extract = _land_documents(source, warehouse, entity, window, run_id, timezone, on_records, rules)
        results.append(ChangeResult(entity, window, extract))
    return results


def _cursor_key(entity: str) -> tuple[str, str | None]:
    """(entity, doc_type) as the warehouse keys cursors: goods, or documents of one type."""
    return (GOODS, None) if entity == GOODS else ("documents", document_type(entity).slug)


def _land_goods(
    source: ChangeSource,
    warehouse: Warehouse,
    window: ChangeWindow,
    run_start: datetime,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None,
    rules: ValidationRules,
) -> ExtractResult:
    """Goods land in the snapshot of the run's day in 1C's zone: a full snapshot on bootstrap, else a merge."""
    day = run_start.astimezone(ZoneInfo(timezone)).date()

    def check(records: Batch) -> CheckedBatch:
        return check_goods(records, snapshot_date=day, timezone=timezone, run_id=run_id, source=source.name,
                           rules=rules)  # fmt: skip

    if window.bootstrap:
        landing = warehouse.goods_snapshot(day, run_id=run_id, source=source.name)
    else:
        landing = warehouse.goods_changes(day, run_id=run_id, source=source.name)
    pages = source.goods(modified_since=window.since, modified_until=window.until)
    return land_pages(source, landing, pages, check, run_id=run_id, entity=GOODS, doc_type=None,
                      span=(day, day + timedelta(days=1)), on_records=on_records, cursor=window.cursor)  # fmt: skip


def _land_documents(
    source: ChangeSource,
    warehouse: Warehouse,
    doc_type: str,
    window: ChangeWindow,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None,
    rules: ValidationRules,
) -> ExtractResult:
    """Changed documents of any date, merged by key (a bootstrap is the same merge over every document)."""

    def check(records: Batch) -> CheckedBatch:
        return check_documents(records, doc_type=doc_type, date_from=ALL_DATES[0], date_to=ALL_DATES[1],
                               timezone=timezone, run_id=run_id, source=source.name, rules=rules)  # fmt: skip

    landing = warehouse.document_changes(doc_type, run_id=run_id, source=source.name)
    pages = source.documents(doc_type, modified_since=window.since, modified_until=window.until)
    return land_pages(source, landing, pages, check, run_id=run_id, entity="documents", doc_type=doc_type,
                      span=ALL_DATES, on_records=on_records, cursor=window.cursor)  # fmt: skip
