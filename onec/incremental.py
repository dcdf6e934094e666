"""Incremental sync: land only what 1C changed since the last run, without ever missing a change.

How a change cannot be missed:
- Each entity (goods, each document type) has a change cursor in the warehouse, saved in the same transaction as
  the rows it covers. A run that fails or is killed lands nothing of that entity and leaves its cursor alone.
- The cursor is on 1C's clock, never on this machine's: it is the newest `modified_at` 1C sent (its own stamp, read
  back through the same configured zone the next request is written in, so a zone that is wrong cancels out),
  minus how long the read took (a change 1C stamped while we read may sit on a page already behind us, and it was
  stamped no earlier than the read's start, which is at least that long before the newest stamp), and never past
  1C's own "now" (the `Date` header of its answers). A run that saw no change keeps its cursor.
- A run asks for `modified_since = cursor − overlap` and nothing else: no `modified_until`, since any bound taken
  from this machine's clock in the configured zone is wrong by the zone error or the clock skew. The overlap absorbs
  late commits inside 1C. Rows come back more than once (overlap, retries): landing merges them by key.
- 1C's stamps are checked against its own clock: records stamped after its `Date` by more than a tolerance mean
  `ONEC_TIMEZONE` is west of 1C's zone (or 1C stamps from a clock of its own); they land, the cursor stays at 1C's
  clock, and the run warns. A `Date` far from this machine's clock is reported too (it moves goods' snapshot day and
  `goods_history` times, which are this machine's, not the cursors).

With no cursor yet an entity is bootstrapped by a full scan with no date filter (rows without `modified_at`
only show up there). Full refreshes and date-range backfills (`onec.sync`) do not touch the cursors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import polars as pl

from onec.config import IncrementalSettings
from onec.http.limits import RequestStats
from onec.http.server_clock import ServerClock
from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DOCUMENT_SLUGS, document_type
from onec.sources.typing import Batch
from onec.sync import ALL_DATES, ExtractResult, ProgressCallback, land_pages
from onec.validation import CheckedBatch, check_documents, check_goods
from onec.warehouse import Warehouse

GOODS = "goods"
ENTITIES: tuple[str, ...] = (GOODS, *DOCUMENT_SLUGS)
DEFAULT_OVERLAP = IncrementalSettings.overlap
DEFAULT_CLOCK_TOLERANCE = IncrementalSettings.clock_tolerance
ZONE_SCALE = timedelta(minutes=30)
"""Stamps this far after 1C's own clock are a zone disagreement (zones differ by whole half-hours at least), not
a clock that runs a little fast."""


class ChangeSource(Protocol):
    """A way into 1C that can filter by modification time (§1.2); `OneCClient` is one."""

    name: str

    @property
    def stats(self) -> RequestStats: ...

    @property
    def server_clock(self) -> ServerClock: ...

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
    """What one entity asks 1C for: changes since `since` (None: no cursor yet, a full scan, so rows 1C keeps
    without `modified_at` are included). There is no upper bound (see the module's docstring)."""

    since: datetime | None

    @property
    def bootstrap(self) -> bool:
        return self.since is None


@dataclass(frozen=True)
class ClockCheck:
    """What one entity's read says about 1C's clock and the configured zone.

    `newest`: the newest `modified_at` 1C sent, as the configured zone reads it. `server_now`: 1C's clock when the
    read ended (its last `Date` header; None if 1C sent none), `local_now` this machine's. `future_records`: records
    stamped after 1C's clock at the time they were read by more than `tolerance`, the furthest by `future_by`.
    """

    newest: datetime | None
    server_now: datetime | None
    local_now: datetime
    future_records: int
    future_by: timedelta
    tolerance: timedelta

    @property
    def reference(self) -> datetime:
        """1C's "now": its `Date` header, or this machine's clock when 1C sends none."""
        return self.server_now or self.local_now

    @property
    def skew(self) -> timedelta | None:
        """How far 1C's clock runs ahead of this machine's (negative: behind)."""
        return None if self.server_now is None else self.server_now - self.local_now

    def future_warning(self, entity: str, timezone: str) -> str | None:
        """The loud line for records stamped in the future of 1C's own clock, with the likely cause."""
        if not self.future_records:
            return None
        against = "1C's own clock (its HTTP Date header)" if self.server_now else "this machine's clock"
        if self.future_by >= ZONE_SCALE:
            hours = round(self.future_by / timedelta(minutes=30)) / 2
            cause = (
                f"ONEC_TIMEZONE={timezone} reads 1C's dates about {hours:g} h later than 1C meant them: it is "
                "probably west of the 1C server's zone; set it to that zone"
            )
        else:
            cause = "1C stamps changes with a clock ahead of the one that dates its answers"
        return (
            f"{entity}: {self.future_records} record(s) stamped up to {_duration(self.future_by)} after {against}, "
            f"beyond the {_duration(self.tolerance)} tolerance: {cause}. Nothing is lost: they landed, and the "
            "cursor stays at 1C's clock, so each run reads them again until the stamps are in the past."
        )


@dataclass(frozen=True)
class ChangeResult:
    """One entity's incremental landing: the window it asked for, what it landed, the cursor it left and what its
    read said about 1C's clock."""

    entity: str
    window: ChangeWindow
    extract: ExtractResult
    cursor: datetime | None
    clock: ClockCheck
    timezone: str

    @property
    def warnings(self) -> list[str]:
        warning = self.clock.future_warning(self.entity, self.timezone)
        return [warning] if warning else []

    def as_metadata(self) -> dict[str, object]:
        flat = dict(self.extract.as_metadata())
        skew = self.clock.skew
        flat.update(
            entity=self.entity,
            mode="bootstrap" if self.window.bootstrap else "incremental",
            modified_since=self.window.since.isoformat() if self.window.since else None,
            cursor=self.cursor.isoformat() if self.cursor else None,
            newest_modified_at=self.clock.newest.isoformat() if self.clock.newest else None,
            onec_clock=self.clock.server_now.isoformat() if self.clock.server_now else None,
            onec_clock_skew_s=skew.total_seconds() if skew is not None else None,
            future_records=self.clock.future_records,
        )
        return flat


def run_warnings(results: Sequence[ChangeResult]) -> list[str]:
    """Every warning of a run: each entity's future stamps, then one line if 1C's clock is far from ours."""
    warnings = [warning for result in results for warning in result.warnings]
    skews = [(r.clock.skew, r.clock.tolerance) for r in results if r.clock.skew is not None]
    if skews:
        skew, tolerance = skews[-1]
        assert skew is not None
        if abs(skew) > tolerance:
            side = "ahead of" if skew > timedelta(0) else "behind"
            warnings.append(
                f"1C's clock (its HTTP Date header) is {_duration(abs(skew))} {side} this machine's: cursors follow "
                "1C's own stamps, so no change is missed, but the goods snapshot day and goods_history "
                "valid_from/valid_to are this machine's clock; set both clocks by NTP."
            )
    return warnings


def next_cursor(
    old: datetime | None, newest: datetime | None, server_now: datetime, read_time: timedelta
) -> datetime | None:
    """Where an entity's cursor goes after a read that saw `newest` as its newest stamp.

    Every change 1C stamped before the read started was visible to it (late commits aside: the overlap), and the
    read started at least `read_time` before 1C's clock passed `newest`; so `newest − read_time` is safe, and so is
    anything earlier. Stamps after 1C's own `server_now` (a zone or clock that disagrees) are not trusted further
    than that. The result is cut down to whole seconds, 1C's resolution, so reads of the same stamps that took a
    different fraction of a second give the same cursor. A read that saw nothing new leaves the cursor; a cursor
    never moves back.
    """
    if newest is None:
        return old
    unrounded = min(newest, server_now) - read_time
    candidate = unrounded - timedelta(microseconds=unrounded.microsecond)
    return candidate if old is None else max(old, candidate)


def change_window(cursor: datetime | None, overlap: timedelta) -> ChangeWindow:
    """The window of one entity: from its cursor less the overlap, or a full scan without one."""
    if overlap < timedelta(0):
        raise ValueError("the overlap must not be negative")
    return ChangeWindow(since=None if cursor is None else cursor - overlap)


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
    tolerance: timedelta = DEFAULT_CLOCK_TOLERANCE,
    on_records: ProgressCallback | None = None,
    rules: ValidationRules = DEFAULT_RULES,
) -> list[ChangeResult]:
    """Land the changes of each entity, one committed landing (and cursor) per entity.

    Entities are independent: if one fails, those before it stay landed with their cursors advanced and the
    error propagates; the next run resumes the failed one from its old cursor.
    """
    cursors = warehouse.cursors()
    today = datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()
    results = []
    for entity in check_entities(entities):
        old = cursors.get(_cursor_key(entity))
        window = change_window(old, overlap)
        stamps = _StampWatch(source.server_clock, tolerance, old)
        if entity == GOODS:
            extract = _land_goods(source, warehouse, window, today, stamps, run_id, timezone, on_records, rules)
        else:
            extract = _land_documents(source, warehouse, entity, window, stamps, run_id, timezone, on_records, rules)
        results.append(ChangeResult(entity, window, extract, stamps.cursor, stamps.check(), timezone))
    return results


class _StampWatch:
    """Follows 1C's `modified_at` over one entity's read: the newest stamp (the cursor's source) and the stamps
    ahead of 1C's own clock at the time their page was read. Created just before the read's first request."""

    def __init__(self, server_clock: ServerClock, tolerance: timedelta, old: datetime | None) -> None:
        self._server_clock = server_clock
        self._tolerance = tolerance
        self._old = old
        self._started = time.monotonic()
        self._newest: datetime | None = None
        self._future_records = 0
        self._future_by = timedelta(0)
        self._ended: tuple[datetime | None, datetime] | None = None
        self.cursor: datetime | None = old

    def watch(self, check: Callable[[Batch], CheckedBatch]) -> Callable[[Batch], CheckedBatch]:
        def watched(records: Batch) -> CheckedBatch:
            checked = check(records)
            frame = checked.goods if checked.goods is not None else checked.documents
            if frame is not None and frame.height:
                self._see(frame["modified_at"])
            return checked

        return watched

    def _see(self, stamps: pl.Series) -> None:
        newest = stamps.max()
        if not isinstance(newest, datetime):
            return
        self._newest = newest if self._newest is None else max(self._newest, newest)
        reading = self._server_clock.latest()
        one_c_now = reading.server if reading else datetime.now(UTC)
        ahead = int((stamps.dt.convert_time_zone("UTC") > one_c_now + self._tolerance).sum())
        if ahead:
            self._future_records += ahead
            self._future_by = max(self._future_by, newest - one_c_now)

    def end(self) -> datetime | None:
        """Called once every page has been read (as the landing commits): the entity's new cursor."""
        reading = self._server_clock.latest()
        local_now = datetime.now(UTC)
        self._ended = (reading.server if reading else None, local_now)
        read_time = timedelta(seconds=time.monotonic() - self._started)
        self.cursor = next_cursor(self._old, self._newest, self._ended[0] or local_now, read_time)
        return self.cursor

    def check(self) -> ClockCheck:
        server_now, local_now = self._ended or (None, datetime.now(UTC))
        return ClockCheck(self._newest, server_now, local_now, self._future_records, self._future_by, self._tolerance)


def _duration(value: timedelta) -> str:
    """A whole-seconds duration as h:mm:ss."""
    return str(timedelta(seconds=round(value.total_seconds())))


def _cursor_key(entity: str) -> tuple[str, str | None]:
    """(entity, doc_type) as the warehouse keys cursors: goods, or documents of one type."""
    return (GOODS, None) if entity == GOODS else ("documents", document_type(entity).slug)


def _land_goods(
    source: ChangeSource,
    warehouse: Warehouse,
    window: ChangeWindow,
    day: date,
    stamps: _StampWatch,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None,
    rules: ValidationRules,
) -> ExtractResult:
    """Goods land in the snapshot of the run's day in the configured zone: a full snapshot on bootstrap, else a
    merge."""

    def check(records: Batch) -> CheckedBatch:
        return check_goods(records, snapshot_date=day, timezone=timezone, run_id=run_id, source=source.name,
                           rules=rules)  # fmt: skip

    if window.bootstrap:
        landing = warehouse.goods_snapshot(day, run_id=run_id, source=source.name)
    else:
        landing = warehouse.goods_changes(day, run_id=run_id, source=source.name)
    pages = source.goods(modified_since=window.since)
    return land_pages(source, landing, pages, stamps.watch(check), run_id=run_id, entity=GOODS, doc_type=None,
                      span=(day, day + timedelta(days=1)), on_records=on_records, cursor=stamps.end)  # fmt: skip


def _land_documents(
    source: ChangeSource,
    warehouse: Warehouse,
    doc_type: str,
    window: ChangeWindow,
    stamps: _StampWatch,
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
    pages = source.documents(doc_type, modified_since=window.since)
    return land_pages(source, landing, pages, stamps.watch(check), run_id=run_id, entity="documents",
                      doc_type=doc_type, span=ALL_DATES, on_records=on_records, cursor=stamps.end)  # fmt: skip
