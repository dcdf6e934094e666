"""Land checked batches in DuckDB, one partition range at a time, and mirror them to the Parquet lake.

Why this shape:
- A landing stages every page to Parquet on disk, so memory does not grow with the extract, and nothing
  touches the warehouse until `commit`: a run that fails or is killed half-way leaves the warehouse as it was.
- `commit` replaces whole partitions (a snapshot day, or a document type's days) in one DuckDB transaction, so
  re-running a day replaces it instead of duplicating it. Only a source that declares itself complete for a
  scope asks for a replace (a sync's range, a complete goods list); one that does not (a file someone dropped,
  a changes-only package) merges by key. A replace that brings no valid row deletes nothing (an empty or
  all-rejected input is not evidence that 1C holds nothing), and one that would remove much more than it brings
  is refused by the `ShrinkGuard` unless forced: a source that lost data must not take the warehouse with it.
- DuckDB allows one writer process and Dagster runs steps in parallel processes: writers take an exclusive
  `flock`, readers a shared one, with a timeout and a clear error instead of DuckDB's lock failure.
- Uniqueness is settled here, across the whole extract (a page cannot see the others), and checked again inside
  the transaction before it commits (`_check_unique`) instead of by PRIMARY KEY constraints: DuckDB builds an ART
  index of a transaction's inserted rows that it cannot spill, so with a key on the big tables a landing's memory
  grew with its rows (+80 MB per million lines) and a landing of ~3M lines failed to commit under the 256 MB cap;
  the check is a GROUP BY over the landed keys, which DuckDB spills like any other query.
- Incremental runs land in *merge* mode instead: documents are replaced by key wherever they were (a changed
  document replaces all its lines, one that moved to another date moves partitions), changed goods are merged into
  the latest snapshot carried forward to the run's day. A landing may carry a change cursor: it is saved in the
  same transaction as the rows, so a failed run never advances a cursor past rows it did not land.
- Every goods landing that produces the newest snapshot also updates `goods_history` (SCD2: valid_from, valid_to),
  so the stock position or price on any past instant can be asked for.
- Warehouse and lake move together: the transaction that commits the rows also records the lake partitions they
  change (`lake_mirror.record_pending`); the files are written after the commit and each record is deleted once its
  file is in place. A run killed in between leaves the work recorded, and the next writer (`initialize`, or any
  landing's commit) completes it before anything else; `initialize` also removes the temporary files killed writers
  left in the lake.
"""

# ruff: noqa: S608 — SQL text is built only from fixed identifiers (the canonical schemas, table names in
# this module); every value is a bound parameter.

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import re
import shutil
import time
import uuid
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import duckdb
import orjson
import polars as pl

from onec import lake, lake_mirror
from onec.config import BASE_ID, DEFAULT_BASE, base_directory
from onec.delta_lake import DeltaTarget
from onec.errors import BusyError, InputDataError, writing_to
from onec.lake_mirror import LakePartition
from onec.lake_views import write_views
from onec.schema import (
    DOCUMENT_LINES_KEY,
    DOCUMENTS_KEY,
    GOODS_KEY,
    document_lines_schema,
    document_type,
    documents_schema,
    goods_schema,
    rejected_rows_schema,
)
from onec.validation import CheckedBatch

DATABASE_FILE = "warehouse.duckdb"
LOCK_FILE = ".warehouse.lock"
STAGING_DIR = ".staging"
STAMP_CURSOR = "1c-stamps"
"""`sync_cursors.basis` of a cursor taken from 1C's own `modified_at` stamps (onec.incremental)."""
LEGACY_CURSOR = "this-machine-clock"
"""`sync_cursors.basis` of a cursor saved before cursors followed 1C's stamps: it was this machine's clock, which
may be hours ahead of 1C's stamps as the configured zone reads them, so it is not trusted (the entity starts over
with a full scan once, and the new cursor replaces it)."""
_STAGING_LOCK = ".lock"
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")
_log = logging.getLogger(__name__)

LOAD_LOG_COLUMNS = {
    "run_id": "VARCHAR",
    "entity": "VARCHAR",
    "doc_type": "VARCHAR",
    "range_start": "DATE",
    "range_end": "DATE",
    "rows": "BIGINT",
    "lines": "BIGINT",
    "rejected": "BIGINT",
    "duplicates": "BIGINT",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "stats": "JSON",
}

REPLACE = "replace"
MERGE = "merge"
GOODS_HISTORY_COLUMNS = {"valid_from": "TIMESTAMPTZ", "valid_to": "TIMESTAMPTZ", "run_id": "VARCHAR"}


class WarehouseBusy(BusyError, TimeoutError):
    """Another process held the warehouse lock for longer than we were willing to wait."""


class ShrinkRefused(InputDataError):
    """A replace would have removed much more than it brought; nothing was changed. The message says what and how
    to force it."""


FORCE_HINT = "re-run with --force-replace (or set ONEC_FORCE_REPLACE=1)"


@dataclass(frozen=True)
class ShrinkGuard:
    """When a replace is refused: it would remove more than `max_removed_share` of a partition (a document type's
    day or the whole range it replaces; a goods snapshot) that held at least `min_rows` rows. A 1C that really
    shrank is landed with `force`, which also lets an empty replace delete."""

    max_removed_share: float = 0.5
    min_rows: int = 20
    force: bool = False

    def refuses(self, held: int, removed: int) -> bool:
        return not self.force and held >= self.min_rows and removed > self.max_removed_share * held


@dataclass(frozen=True)
class LandingReport:
    """What a commit did. `duplicates` counts staged rows dropped by the uniqueness rule (identical copies and
    the losing versions); the losing versions are also counted in `rejected`. `elapsed_s` is the commit,
    including the wait for the lock and the lake writes."""

    rows: int
    lines: int
    rejected: int
    duplicates: int
    partitions: tuple[dt.date, ...]
    lake_files: tuple[Path, ...]
    lake_bytes: int
    elapsed_s: float


@dataclass(frozen=True)
class _Scope:
    """The partitions one landing replaces: [start, end) days of goods, or of one document type. In merge mode
    documents have no range (start == end: nothing is replaced by day, only by key) and goods merge into `start`."""

    entity: str
    doc_type: str | None
    start: dt.date
    end: dt.date
    mode: str = REPLACE
    newer_only: bool = False
    """A merge from a source that is not 1C's current state (a file): a version older than the one held is set
    aside as a rejected row instead of undoing a newer landing."""


class Warehouse:
    """One 1C base's DuckDB warehouse and its part of the Parquet lake, under one data directory.

    Several bases share the data directory (`ONEC_DATA_DIR`) but not a warehouse: each base has its own DuckDB file,
    writer lock and staging (the base `main` directly in the data directory, where the single-base layout always kept
    them; another base `<id>` in `bases/<id>/`), and its own lake folder `lake/base=<id>/` with the single-base layout
    inside. So no statement can mix two bases' rows, bases land in parallel without waiting for one writer lock, and
    analysts still read every base through one glob, `base` being a hive key (`lake/views.sql`)."""

    def __init__(
        self,
        data_dir: Path,
        timezone: str,
        *,
        base: str = DEFAULT_BASE,
        lock_timeout_s: float = 600.0,
        shrink_guard: ShrinkGuard | None = None,
        delta: DeltaTarget | None = None,
    ) -> None:
        """`delta`: mirror landings to that Delta lake instead of the Parquet lake under `data_dir`
        (ONEC_LAKE_FORMAT=delta; `delta_lake.configured_target`, for the same base)."""
        self.root = Path(data_dir).absolute()
        self.base = _checked_base(base)
        if delta is not None and delta.base != self.base:
            raise ValueError(f"the Delta target of base {delta.base!r} given to the warehouse of base {self.base!r}")
        self.data_dir = base_directory(self.root, base)
        self.timezone = _checked_zone(timezone)
        self.lock_timeout_s = lock_timeout_s
        self.shrink_guard = shrink_guard or ShrinkGuard()
        self.database = self.data_dir / DATABASE_FILE
        self.lake_root = self.root / lake.LAKE_DIR
        """The lake of every base (`views.sql` is here); this base's files are under `lake_dir`."""
        self.lake_dir = self.lake_root / lake.base_folder(base)
        self.delta = delta
        self.staging_dir = self.data_dir / STAGING_DIR

    def initialize(self) -> None:
        """Create the tables if missing (idempotent), then clear up after killed runs: their temporary lake files,
        the lake work their commits recorded but did not finish, their staging."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock(exclusive=True), self._connect(read_only=False) as con:
            for statement in _ddl(self.timezone):
                con.execute(statement)
            _add_new_columns(con, self.timezone)
            _drop_primary_keys(con)
            self.adopt_pre_bases_lake()
            lake.remove_litter(self.lake_dir)
            self.complete_lake_work(con)
        self._remove_stale_staging()

    def complete_lake_work(self, con: duckdb.DuckDBPyConnection) -> list[lake.LakeWrite]:
        """Write every pending lake partition (`lake_mirror.complete_pending`), after moving goods_history to its
        closed-month layout if need be (`upgrade_history_lake`). Call it under the writer lock, autocommit."""
        return self.upgrade_history_lake(con) + lake_mirror.complete_pending(con, self.lake_dir, self.delta)

    def upgrade_history_lake(self, con: duckdb.DuckDBPyConnection) -> list[lake.LakeWrite]:
        """If the base's lake still has goods_history as one file (written before it was partitioned by closed
        month), write every partition of the new layout from the warehouse; then the views read them instead of the
        old file (`lake_views.LEGACY_FILES`: they read each base's one or the other, never both), the old file goes,
        and the views are written once more (another base's writer may have written them in between); the files
        written (pending work is completed with them). In the Delta lake, a goods_history partitioned by base alone
        is rewritten partitioned by closed month too (`lake_mirror.repartition_delta_history`). Call it under the
        writer lock, autocommit."""
        if self.delta is not None:
            lake_mirror.repartition_delta_history(con, self.delta)
            return []
        if not lake_mirror.record_history_upgrade(con, self.lake_dir):
            return []
        written = lake_mirror.complete_pending(con, self.lake_dir)
        write_views(self.lake_root, moved=[self.lake_dir.name])
        lake_mirror.remove_legacy_history(self.lake_dir)
        write_views(self.lake_root)
        return written

    def adopt_pre_bases_lake(self) -> bool:
        """Move a lake written before bases under `main`'s folder (`lake.adopt_single_base_layout`) and rewrite the
        views for the new layout; whether there was anything to move. Call it under the writer lock."""
        if self.base != DEFAULT_BASE or not lake.adopt_single_base_layout(self.lake_root, self.lake_dir):
            return False
        write_views(self.lake_root)
        return True

    def has_pre_bases_lake(self) -> bool:
        """Whether the lake still has table folders from before bases, which `main` has not adopted yet."""
        return self.base == DEFAULT_BASE and any((self.lake_root / t).is_dir() for t in lake.SINGLE_BASE_TABLES)

    def goods_snapshot(self, snapshot_date: dt.date, *, run_id: str, source: str) -> Landing:
        """A landing that replaces the goods snapshot of one day: for a source that holds every position (a sync's
        goods pages, a full goods export, a complete CommerceML set)."""
        scope = _Scope("goods", None, snapshot_date, snapshot_date + dt.timedelta(days=1))
        return Landing(self, scope, run_id=run_id, source=source)

    def document_range(
        self, doc_type: str, date_from: dt.date, date_to: dt.date, *, run_id: str, source: str
    ) -> Landing:
        """A landing that replaces the documents of one type dated [date_from, date_to): for a source that holds
        every document of those days (a sync or backfill range, an export fetched with that range)."""
        document_type(doc_type)
        if date_to <= date_from:
            raise ValueError(f"empty document range [{date_from}, {date_to})")
        return Landing(self, _Scope("documents", doc_type, date_from, date_to), run_id=run_id, source=source)

    def document_changes(self, doc_type: str, *, run_id: str, source: str, newer_only: bool = False) -> Landing:
        """A landing that merges documents of one type by key, whatever their dates: each replaces its own earlier
        version (lines with it), nothing else is removed. For 1C's changes, and for sources that declare no range;
        those that are not 1C's current state (a file) pass `newer_only`: a version whose modified_at is older
        than the held one's is not applied but rejected, with the reason."""
        document_type(doc_type)
        scope = _Scope("documents", doc_type, dt.date.min, dt.date.min, MERGE, newer_only)
        return Landing(self, scope, run_id=run_id, source=source)

    def goods_changes(self, snapshot_date: dt.date, *, run_id: str, source: str) -> Landing:
        """A landing that merges changed positions into the snapshot of `snapshot_date` (started, if missing, as a
        copy of the latest earlier snapshot)."""
        scope = _Scope("goods", None, snapshot_date, snapshot_date + dt.timedelta(days=1), MERGE)
        return Landing(self, scope, run_id=run_id, source=source)

    def cursors(self) -> dict[tuple[str, str | None], dt.datetime]:
        """Every change cursor by (entity, doc_type): 1C's changes before it have landed. One read for a run.
        Legacy cursors (this machine's clock, see `LEGACY_CURSOR`) are not cursors: their entity starts over."""
        if not self.database.exists():
            return {}
        rows = self.query("SELECT entity, doc_type, cursor FROM sync_cursors WHERE basis = ?", [STAMP_CURSOR]).rows()
        return {(entity, doc_type or None): cursor for entity, doc_type, cursor in rows}

    def source_versions(self, source: str, doc_type: str) -> dict[str, str]:
        """1C id → DataVersion of the documents of a type last landed from `source` (OData change detection)."""
        if not self.database.exists():
            return {}
        frame = self.query(
            "SELECT id, version FROM source_versions WHERE source = ? AND doc_type = ?", [source, doc_type]
        )
        return dict(frame.rows())

    def cursor(self, entity: str, doc_type: str | None = None) -> dt.datetime | None:
        """The change cursor of goods or of one document type."""
        return self.cursors().get((entity, doc_type))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a read-only query (analysts, the CLI); instants come back in the 1C zone."""
        with self._lock(exclusive=False), self._connect(read_only=True) as con:
            relation = con.sql(sql, params=list(params) if params is not None else None)
            # duckdb types .pl() as Any (with lazy=True it gives a LazyFrame); without, it is a DataFrame
            frame: pl.DataFrame = relation.pl() if relation is not None else pl.DataFrame()
            return frame

    def table_counts(self) -> dict[str, int]:
        """Rows per warehouse table."""
        tables = ("goods", "documents", "document_lines", "rejected_rows", "load_log")
        with self._lock(exclusive=False), self._connect(read_only=True) as con:
            return {table: scalar(con, f"SELECT count(*) FROM {table}") for table in tables}

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection under a shared lock: no writer changes the tables or the lake meanwhile."""
        with self._lock(exclusive=False), self._connect(read_only=True) as con:
            yield con

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection under the single-writer lock, for the modules that keep their own tables in
        the warehouse (import ledger, marts, cursors). Keep the block short: every other writer waits on it."""
        with self._lock(exclusive=True), self._connect(read_only=False) as con:
            yield con

    @contextmanager
    def _lock(self, *, exclusive: bool) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _flock(self.data_dir / LOCK_FILE, exclusive=exclusive, timeout_s=self.lock_timeout_s):
            yield

    @contextmanager
    def _connect(
        self, *, read_only: bool, memory_limit: str | None = None, threads: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.database.exists():
            raise FileNotFoundError(f"no warehouse at {self.database}: run initialize() first")
        con = _open_waiting(self.database, read_only=read_only, timeout_s=self.lock_timeout_s)
        try:
            con.execute(f"SET TimeZone = '{self.timezone}'")
            con.execute(f"SET memory_limit = '{memory_limit or DUCKDB_MEMORY_LIMIT}'")
            if threads is not None:
                con.execute(f"SET threads = {int(threads)}")
            with writing_to(self.data_dir):
                yield con
        finally:
            con.close()

    def _remove_stale_staging(self) -> None:
        """A staging directory whose lock nobody holds belongs to a run that died."""
        if not self.staging_dir.exists():
            return
        for directory in self.staging_dir.iterdir():
            if directory.is_dir() and not _held(directory / _STAGING_LOCK):
                shutil.rmtree(directory, ignore_errors=True)


class Landing:
    """Stage checked batches for one partition scope, then replace that scope in one transaction.

    Use as a context manager; leaving the block without `commit` (an exception, a kill) discards the staging
    and leaves the warehouse untouched.
    """

    def __init__(self, warehouse: Warehouse, scope: _Scope, *, run_id: str, source: str) -> None:
        self._warehouse = warehouse
        self._scope = scope
        self._run_id = run_id
        self._source = source
        self._directory = warehouse.staging_dir / f"{scope.entity}-{uuid.uuid4().hex}"
        self._liveness: IO[bytes] | None = None
        self._parts = 0
        self._next_id = 0
        self._started = dt.datetime.now(dt.UTC)
        self._committed = False

    def __enter__(self) -> Landing:
        self._directory.mkdir(parents=True)
        self._liveness = (self._directory / _STAGING_LOCK).open("wb")
        fcntl.flock(self._liveness, fcntl.LOCK_EX)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._liveness is not None:
            self._liveness.close()
            self._liveness = None
        shutil.rmtree(self._directory, ignore_errors=True)

    def add(self, batch: CheckedBatch) -> None:
        """Stage one checked page to Parquet (nothing stays in memory between pages)."""
        if self._liveness is None or self._committed:
            raise RuntimeError("Landing.add() needs an open landing: use it inside `with` and before commit()")
        self._check_rejected(batch.rejected)
        if self._scope.entity == "goods":
            goods = _required_frame(batch.goods, "goods")
            self._check_days(goods, "snapshot_date")
            self._write("goods", goods.with_columns(self._ids(goods.height).alias("_order")))
        else:
            documents = _required_frame(batch.documents, "documents")
            lines = _required_frame(batch.lines, "lines")
            self._check_days(documents, "doc_date")
            if not (documents["doc_type"] == self._scope.doc_type).all():
                raise ValueError(f"batch holds documents of another type than {self._scope.doc_type!r}")
            ids = self._ids(documents.height)
            self._write("documents", documents.with_columns(ids.alias("_doc")))
            self._write("document_lines", lines.with_columns(_line_owners(batch, documents, lines, ids)))
        self._write("rejected_rows", batch.rejected)

    def commit(
        self,
        stats: Mapping[str, int] | None = None,
        *,
        cursor: dt.datetime | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> LandingReport:
        """Dedupe the staged rows, replace (or merge) the partitions in one transaction, log it, then refresh the
        lake. `cursor` (timezone-aware) is saved for this landing's entity in the same transaction; a cursor never
        moves backwards. `versions` (1C id → OData DataVersion of the records fetched) likewise.

        The lake is written after the DuckDB commit, still under the writer lock, from the committed tables; the
        partitions to write are recorded in the transaction, so a kill before they are written loses no lake work
        (this commit, or the next writer, completes all that is pending).
        """
        if cursor is not None and cursor.tzinfo is None:
            raise ValueError("a change cursor must be timezone-aware")
        if self._liveness is None or self._committed:
            raise RuntimeError("Landing.commit() needs an open, uncommitted landing")
        started = time.perf_counter()
        warehouse = self._warehouse
        connection = warehouse._connect(read_only=False, memory_limit=LANDING_MEMORY_LIMIT, threads=LANDING_THREADS)
        with warehouse._lock(exclusive=True), connection as con:
            con.execute("BEGIN TRANSACTION")
            try:
                counts, moved = self._replace(con, dict(stats or {}))
                _check_unique(con, self._scope)
                history = (
                    _record_goods_history(con, self._scope.start, self._started, self._run_id)
                    if self._scope.entity == "goods"
                    else set()
                )
                if cursor is not None:
                    _save_cursor(con, self._scope, cursor, self._run_id)
                if versions:
                    _save_versions(con, self._scope, self._source, versions)
                days = self._lake_days(moved)
                lake_mirror.record_pending(con, self._lake_partitions(days, history=history), self._run_id)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
            self._committed = True
            written = warehouse.complete_lake_work(con)
        return LandingReport(
            rows=counts["rows"],
            lines=counts["lines"],
            rejected=counts["rejected"],
            duplicates=counts["duplicates"],
            partitions=days,
            lake_files=tuple(w.path for w in written if w.path is not None),
            lake_bytes=sum(w.bytes for w in written),
            elapsed_s=time.perf_counter() - started,
        )

    # staging

    def _ids(self, count: int) -> pl.Series:
        """Staging order: ties between versions of a key go to the first staged."""
        ids = pl.int_range(self._next_id, self._next_id + count, dtype=pl.Int64, eager=True)
        self._next_id += count
        return ids

    def _write(self, table: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self._parts += 1
        with writing_to(self._warehouse.data_dir):
            frame.write_parquet(self._directory / f"{table}-{self._parts:06d}.parquet", compression="lz4")

    def _staged(self, table: str) -> list[str]:
        """The staged files of a table; a table nothing was staged for gets one empty file, since the commit reads
        every staged table with `read_parquet`, which refuses an empty list."""
        files = sorted(str(p) for p in self._directory.glob(f"{table}-*.parquet"))
        if files:
            return files
        empty = self._directory / f"{table}-empty.parquet"
        pl.DataFrame(schema=_staging_schema(table, self._warehouse.timezone)).write_parquet(empty)
        return [str(empty)]

    def _check_days(self, frame: pl.DataFrame, column: str) -> None:
        """Rows outside the scope would escape the partition replace and pile up on re-runs. (A merge of documents
        has no range: it replaces by key, wherever the rows were.)"""
        if self._scope.start == self._scope.end:
            return
        outside = frame.filter(~pl.col(column).is_between(self._scope.start, self._scope.end, closed="left"))
        if not outside.is_empty():
            raise ValueError(
                f"batch has {column} {outside[column][0]} outside the landing's range "
                f"[{self._scope.start}, {self._scope.end})"
            )

    def _check_rejected(self, rejected: pl.DataFrame) -> None:
        wrong = rejected.filter(
            (pl.col("entity") != self._scope.entity) | pl.col("doc_type").ne_missing(self._scope.doc_type)
        )
        if not wrong.is_empty():
            raise ValueError(f"batch holds rejected rows of another entity or type than this {self._scope.entity}")
        self._check_days(rejected, "partition_date")

    # commit

    def _replace(self, con: duckdb.DuckDBPyConnection, stats: dict[str, int]) -> tuple[dict[str, int], set[dt.date]]:
        scope = self._applied_scope()
        _stage_rejected(con, self._staged("rejected_rows"))
        if scope.mode == REPLACE:
            self._check_shrink(con, scope)
        moved: set[dt.date] = set()
        if scope.entity == "goods" and scope.mode == MERGE:
            counts = _merge_goods(con, scope, self._staged("goods"), self._source, self._run_id)
        elif scope.entity == "goods":
            counts = _dedupe_goods(con, scope, self._staged("goods"), self._source, self._run_id)
        else:
            staged = _StagedDocuments(self._staged("documents"), self._staged("document_lines"))
            counts, moved = _dedupe_documents(con, scope, staged, self._source, self._run_id)
        if scope.mode == MERGE:
            _forget_rejected_keys(con, scope)
            if scope.entity == "documents":
                landed = con.execute("SELECT DISTINCT doc_date FROM s_versions WHERE _rank = 1").fetchall()
                moved |= {row[0] for row in landed}
        else:
            con.execute(
                "DELETE FROM rejected_rows WHERE entity = ? AND doc_type IS NOT DISTINCT FROM ?"
                " AND partition_date >= ? AND partition_date < ?",
                [scope.entity, scope.doc_type, scope.start, scope.end],
            )
        con.execute(f"INSERT INTO rejected_rows SELECT {_columns(rejected_rows_schema())} FROM s_rejected")
        counts["rejected"] = scalar(con, "SELECT count(*) FROM s_rejected")
        con.execute(
            f"INSERT INTO load_log ({', '.join(LOAD_LOG_COLUMNS)}) VALUES ({', '.join('?' * len(LOAD_LOG_COLUMNS))})",
            [
                self._run_id,
                scope.entity,
                scope.doc_type,
                None if scope.mode == MERGE and scope.entity == "documents" else scope.start,
                None if scope.mode == MERGE and scope.entity == "documents" else scope.end,
                counts["rows"],
                counts["lines"],
                counts["rejected"],
                counts["duplicates"],
                self._started,
                dt.datetime.now(dt.UTC),
                orjson.dumps(stats).decode(),
            ],
        )
        return counts, moved

    def _applied_scope(self) -> _Scope:
        """The scope as committed: a replace that brings no valid row would only delete, so it merges instead (an
        empty or all-rejected input deletes nothing) unless the shrink guard is forced."""
        scope = self._scope
        if scope.mode == MERGE or self._next_id or self._warehouse.shrink_guard.force:
            return scope
        end = scope.start if scope.entity == "documents" else scope.end
        return _Scope(scope.entity, scope.doc_type, scope.start, end, MERGE)

    def _check_shrink(self, con: duckdb.DuckDBPyConnection, scope: _Scope) -> None:
        """Refuse (before anything is deleted) a replace the shrink guard refuses, naming the partition."""
        guard = self._warehouse.shrink_guard
        if guard.force:
            return
        if scope.entity == "goods":
            partitions = _goods_shrink(con, scope.start, self._staged("goods"))
        else:
            assert scope.doc_type is not None
            partitions = _documents_shrink(con, scope, self._staged("documents"))
        for where, held, removed in partitions:
            if guard.refuses(held, removed):
                raise ShrinkRefused(
                    f"refused to replace {where}: it would remove {removed:,} of the {held:,} rows held and keep"
                    f" {held - removed:,} (more than {guard.max_removed_share:.0%} of a partition of at least"
                    f" {guard.min_rows:,} rows); nothing was changed. If 1C really holds that few, {FORCE_HINT}"
                )

    def _lake_days(self, moved: set[dt.date]) -> tuple[dt.date, ...]:
        """The days whose lake files this landing changes: every day in scope, and days documents moved away from."""
        return tuple(sorted({*_days(self._scope.start, self._scope.end), *moved}))

    def _lake_partitions(self, days: Sequence[dt.date], *, history: set[dt.date | None]) -> list[LakePartition]:
        """The partitions of the days, and for goods those of goods_history it touched (`_record_goods_history`)."""
        scope = self._scope
        if scope.entity == "goods":
            return [
                *lake_mirror.table_partitions("goods", None, days),
                *lake_mirror.table_partitions("goods_history", None, history),
            ]
        return [
            *lake_mirror.table_partitions("documents", scope.doc_type, days),
            *lake_mirror.table_partitions("document_lines", scope.doc_type, days),
        ]


DUCKDB_MEMORY_LIMIT = "256MB"
"""DuckDB's own cap (it spills to disk past it) for queries and the writer connections of other modules."""
LANDING_MEMORY_LIMIT = "64MB"
"""DuckDB's cap during a landing's commit. DuckDB fills its buffer pool up to the cap before it spills, so the cap is
what a big commit costs: with 256 MB (and primary keys) the JSON path's peak RSS went 390 → 490 MB from 400k to 800k
lines; with 64 MB and no keys 375 → 393 MB (bench/json_throughput.py). Without primary keys nothing in a commit needs
unspillable memory: 3.2M lines inserted in one transaction stay at +70 MB under this cap."""
LANDING_THREADS = 1
"""DuckDB threads during a landing's commit. Every thread of a window function or sort claims its own share of the
cap: with two, a goods snapshot of 360k rows (the sandbox at 3.2M document lines) failed to commit under 64 MB
(out of memory in the ranking or the lake's ORDER BY), with one, 720k rows commit. On the 2 shared cores the JSON
path runs on, the commit is no slower with one (bench/json_throughput.py, 800k lines: 21-22 s of commits either
way): the other entity's validation keeps the second core busy."""
_STAGING_ID = {"goods": "_order", "documents": "_doc", "document_lines": "_doc"}
_STAGED = "read_parquet($staged)"
"""How commit statements read a staged table: straight from its files (bound as `$staged`), so DuckDB streams them
instead of holding the extract in memory; only keys (s_versions) and rejected rows (s_rejected) become temp tables."""


@dataclass(frozen=True)
class _StagedDocuments:
    """The staged files of a documents landing: headers and lines."""

    documents: list[str]
    lines: list[str]


def _staging_schema(table: str, timezone: str) -> pl.Schema:
    """A staged table's columns: the target's, plus the staging id that ties lines to their document version."""
    schema = _schemas(timezone)[table]
    if table not in _STAGING_ID:
        return schema
    return pl.Schema([*schema.items(), (_STAGING_ID[table], pl.Int64())])


def _stage_rejected(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """Temp table s_rejected: the staged rejected rows, to which the commit adds the losing versions of keys."""
    con.execute(
        f"CREATE TEMP TABLE s_rejected AS SELECT {_columns(rejected_rows_schema())} FROM read_parquet(?)", [files]
    )


def _goods_shrink(con: duckdb.DuckDBPyConnection, day: dt.date, files: list[str]) -> list[tuple[str, int, int]]:
    """Positions of the snapshot being replaced (that of `day`, else the latest before it: the current state a
    new day's snapshot succeeds) that the staged rows do not hold: (partition, held, removed)."""
    row = con.execute(
        "WITH reference AS (SELECT max(snapshot_date) AS day FROM goods WHERE snapshot_date <= $day)"
        " SELECT (SELECT day FROM reference), count(*), count(*) FILTER (WHERE s.sku IS NULL) FROM goods g"
        " LEFT JOIN (SELECT DISTINCT sku, warehouse FROM read_parquet($staged)) s"
        "  ON g.sku = s.sku AND g.warehouse IS NOT DISTINCT FROM s.warehouse"
        " WHERE g.snapshot_date = (SELECT day FROM reference)",
        {"day": day, "staged": files},
    ).fetchone()
    if row is None or row[0] is None:
        return []
    reference, held, removed = row
    where = f"the goods snapshot of {day}" + ("" if reference == day else f" (the latest before it is {reference})")
    return [(where, int(held), int(removed))]


def _documents_shrink(con: duckdb.DuckDBPyConnection, scope: _Scope, files: list[str]) -> list[tuple[str, int, int]]:
    """Documents of the range that the staged ones do not hold by key: the whole range first, then each day (a
    range of small days can lose most of them without any one day tripping the guard, and a long range can lose
    a whole day without the range doing so)."""
    days = con.execute(
        "SELECT d.doc_date, count(*), count(*) FILTER (WHERE s.number IS NULL) FROM documents d"
        " LEFT JOIN (SELECT DISTINCT number FROM read_parquet($staged)) s ON d.number = s.number"
        " WHERE d.doc_type = $doc_type AND d.doc_date >= $start AND d.doc_date < $end GROUP BY d.doc_date ORDER BY 1",
        {"staged": files, "doc_type": scope.doc_type, "start": scope.start, "end": scope.end},
    ).fetchall()
    whole = (
        f"the {scope.doc_type} documents dated [{scope.start}, {scope.end})",
        sum(int(held) for _, held, _ in days),
        sum(int(removed) for _, _, removed in days),
    )
    return [whole, *((f"the {scope.doc_type} documents dated {day}", int(h), int(r)) for day, h, r in days)]


def _dedupe_goods(
    con: duckdb.DuckDBPyConnection, scope: _Scope, files: list[str], source: str, run_id: str
) -> dict[str, int]:
    """Keep one row per (sku, warehouse): identical copies collapse, differing versions keep the latest."""
    _rank_versions(con, files, "_order", GOODS_KEY, _columns(goods_schema()))
    con.execute("DELETE FROM goods WHERE snapshot_date = ?", [scope.start])
    return _insert_goods_versions(con, files, source, run_id)


def _merge_goods(
    con: duckdb.DuckDBPyConnection, scope: _Scope, files: list[str], source: str, run_id: str
) -> dict[str, int]:
    """Changed positions replace theirs in the snapshot of `scope.start`; a missing snapshot starts as a copy of
    the latest earlier one (its rejected rows too), so the day's snapshot is the complete current state."""
    day = scope.start
    if con.execute("SELECT count(*) FROM goods WHERE snapshot_date = ?", [day]).fetchone() == (0,):
        previous = "(SELECT max(snapshot_date) FROM goods WHERE snapshot_date < ?)"
        con.execute(
            f"INSERT INTO goods SELECT * REPLACE (CAST(? AS DATE) AS snapshot_date) FROM goods"
            f" WHERE snapshot_date = {previous}",
            [day, day],
        )
        con.execute(
            "INSERT INTO rejected_rows SELECT * REPLACE (CAST(? AS DATE) AS partition_date) FROM rejected_rows"
            f" WHERE entity = 'goods' AND partition_date = {previous}",
            [day, day],
        )
    _rank_versions(con, files, "_order", GOODS_KEY, _columns(goods_schema()))
    con.execute(
        "DELETE FROM goods USING s_versions v WHERE goods.snapshot_date = ? AND v._rank = 1"
        " AND goods.sku = v.sku AND goods.warehouse IS NOT DISTINCT FROM v.warehouse",
        [day],
    )
    return _insert_goods_versions(con, files, source, run_id)


def _insert_goods_versions(
    con: duckdb.DuckDBPyConnection, files: list[str], source: str, run_id: str
) -> dict[str, int]:
    """Insert the kept version of each staged position; the losing versions become rejected rows."""
    schema = goods_schema()
    con.execute(
        f"INSERT INTO goods SELECT {_columns(schema)} FROM {_STAGED}"
        " WHERE _order IN (SELECT _order FROM s_versions WHERE _rank = 1)",
        {"staged": files},
    )
    if scalar(con, "SELECT count(*) FROM s_versions WHERE _rank > 1"):
        con.execute(
            "INSERT INTO s_rejected SELECT 'goods', NULL, g.snapshot_date, g.sku || '|' || coalesce(g.warehouse, ''),"
            " $reason,"
            f" to_json(struct_pack({_struct_fields(schema, prefix='g.')})), $source, $run_id, now()"
            f" FROM s_versions v JOIN {_STAGED} g USING (_order) WHERE v._rank > 1",
            {
                "staged": files,
                "reason": f"duplicate key ({', '.join(GOODS_KEY)}): another version was kept",
                "source": source,
                "run_id": run_id,
            },
        )
    rows = scalar(con, "SELECT count(*) FROM s_versions WHERE _rank = 1")
    staged = scalar(con, f"SELECT count(*) FROM {_STAGED}", {"staged": files})
    return {"rows": rows, "lines": 0, "duplicates": staged - rows}


def _forget_rejected_keys(con: duckdb.DuckDBPyConnection, scope: _Scope) -> None:
    """In a merge, a key's earlier rejected rows go when the key arrives again (valid or not); s_versions holds
    every staged key."""
    if scope.entity == "goods":
        staged = "SELECT sku || '|' || coalesce(warehouse, '') FROM s_versions UNION SELECT record_key FROM s_rejected"
        con.execute(
            f"DELETE FROM rejected_rows WHERE entity = 'goods' AND partition_date = ? AND record_key IN ({staged})",
            [scope.start],
        )
        return
    staged = "SELECT number FROM s_versions UNION SELECT record_key FROM s_rejected"
    con.execute(
        f"DELETE FROM rejected_rows WHERE entity = 'documents' AND doc_type = ? AND record_key IN ({staged})",
        [scope.doc_type],
    )


def _save_cursor(con: duckdb.DuckDBPyConnection, scope: _Scope, cursor: dt.datetime, run_id: str) -> None:
    """A cursor never moves back, except over a legacy one (see `LEGACY_CURSOR`), which it replaces."""
    con.execute(
        "INSERT INTO sync_cursors (entity, doc_type, cursor, run_id, updated_at, basis) VALUES (?, ?, ?, ?, now(), ?)"
        " ON CONFLICT (entity, doc_type) DO UPDATE SET cursor = CASE WHEN sync_cursors.basis = excluded.basis"
        " THEN greatest(sync_cursors.cursor, excluded.cursor) ELSE excluded.cursor END, run_id = excluded.run_id,"
        " updated_at = excluded.updated_at, basis = excluded.basis",
        [scope.entity, scope.doc_type or "", cursor, run_id, STAMP_CURSOR],
    )


def _save_versions(con: duckdb.DuckDBPyConnection, scope: _Scope, source: str, versions: Mapping[str, str]) -> None:
    frame = pl.DataFrame(
        {"id": list(versions), "version": list(versions.values())}, schema={"id": pl.String, "version": pl.String}
    )
    con.register("s_source_versions", frame)
    con.execute(
        "INSERT OR REPLACE INTO source_versions SELECT ?, ?, id, version FROM s_source_versions",
        [source, scope.doc_type or ""],
    )
    con.unregister("s_source_versions")


_HISTORY_ATTRIBUTES = ("name", "quantity", "unit", "price", "id", "code", "deleted", "modified_at")


def _record_goods_history(
    con: duckdb.DuckDBPyConnection, day: dt.date, as_of: dt.datetime, run_id: str
) -> set[dt.date | None]:
    """Bring `goods_history` level with the snapshot of `day` if it is the newest: a position whose attributes
    changed closes its open version and opens a new one; a position gone from the snapshot is closed.

    A version is valid from 1C's modified_at (never after `as_of`, when we saw it, nor before the version it
    replaces); without one, from `as_of`. Returns the lake partitions of goods_history this changed: the closed
    months its closings fall in (`lake_mirror.CLOSED_MONTH`; 1C's modified_at may lie in any earlier month), and
    None, the open versions, if anything opened or closed. Exactly those, so a landing never rewrites old months.
    """
    newest = con.execute("SELECT max(snapshot_date) FROM goods").fetchone()
    if newest is None or newest[0] != day:
        return set()
    attributes = ", ".join(_HISTORY_ATTRIBUTES)
    changed = (
        f"SELECT g.sku, g.warehouse, {', '.join(f'g.{a}' for a in _HISTORY_ATTRIBUTES)},"
        " greatest(least(coalesce(g.modified_at, $as_of), $as_of), coalesce(h.valid_from, $as_of - INTERVAL 100 YEAR))"
        " AS valid_from, h.sku IS NOT NULL AS closes_open"
        " FROM goods g LEFT JOIN goods_history h ON h.valid_to IS NULL AND h.sku = g.sku"
        " AND h.warehouse IS NOT DISTINCT FROM g.warehouse"
        f" WHERE g.snapshot_date = $day AND (h.sku IS NULL OR hash({', '.join(f'h.{a}' for a in _HISTORY_ATTRIBUTES)})"
        f" != hash({', '.join(f'g.{a}' for a in _HISTORY_ATTRIBUTES)}))"
    )
    con.execute(f"CREATE TEMP TABLE s_changed AS {changed}", {"as_of": as_of, "day": day})
    closed = scalar(
        con,
        "UPDATE goods_history SET valid_to = coalesce("
        " (SELECT c.valid_from FROM s_changed c WHERE c.sku = goods_history.sku"
        "  AND c.warehouse IS NOT DISTINCT FROM goods_history.warehouse),"
        " $as_of)"
        " WHERE valid_to IS NULL AND (EXISTS (SELECT 1 FROM s_changed c WHERE c.sku = goods_history.sku"
        "  AND c.warehouse IS NOT DISTINCT FROM goods_history.warehouse)"
        " OR NOT EXISTS (SELECT 1 FROM goods g WHERE g.snapshot_date = $day AND g.sku = goods_history.sku"
        "  AND g.warehouse IS NOT DISTINCT FROM goods_history.warehouse))",
        {"as_of": as_of, "day": day},
    )
    opened = scalar(
        con,
        f"INSERT INTO goods_history SELECT sku, warehouse, {attributes}, valid_from, NULL, $run_id FROM s_changed",
        {"run_id": run_id},
    )
    return _closed_months(con, closed, as_of) | ({None} if closed or opened else set())


def _closed_months(con: duckdb.DuckDBPyConnection, closed: int, as_of: dt.datetime) -> set[dt.date | None]:
    """The closed months of the `closed` versions `_record_goods_history` just closed: each replaced by a changed
    position closed at its successor's valid_from, any other (gone from the snapshot) at `as_of`."""
    month = lake_mirror.CLOSED_MONTH
    replaced = con.execute(
        f"SELECT DISTINCT {month} FROM (SELECT valid_from AS valid_to FROM s_changed WHERE closes_open)"
    ).fetchall()
    months: set[dt.date | None] = {row[0] for row in replaced}
    if closed > scalar(con, "SELECT count(*) FROM s_changed WHERE closes_open"):
        gone = con.execute(f"SELECT {month} FROM (SELECT $as_of::TIMESTAMPTZ AS valid_to)", {"as_of": as_of})
        months |= {row[0] for row in gone.fetchall()}
    return months


def _dedupe_documents(
    con: duckdb.DuckDBPyConnection, scope: _Scope, staged: _StagedDocuments, source: str, run_id: str
) -> tuple[dict[str, int], set[dt.date]]:
    """Keep one version per (doc_type, number), header and lines together; delete the previous version by
    partition and by key, so a document whose date moved does not end up twice.

    Only keys are held (s_versions); headers and lines stream from the staged files into the tables. A number
    staged more than once gets its lines' hash into its content, so versions differing only in lines stay apart."""
    header, line = documents_schema(), document_lines_schema()
    con.execute(
        "CREATE TEMP TABLE s_lines_hash AS WITH repeated AS ("
        " SELECT number FROM read_parquet($documents) GROUP BY number HAVING count(*) > 1)"
        f" SELECT _doc, hash(list(hash({_columns(line)}) ORDER BY line)) AS _lines_hash"
        " FROM read_parquet($lines) WHERE number IN (SELECT number FROM repeated) GROUP BY _doc",
        {"documents": staged.documents, "lines": staged.lines},
    )
    with_lines_hash = f"(SELECT d.*, h._lines_hash FROM {_STAGED} d LEFT JOIN s_lines_hash h USING (_doc))"
    content = f"{_columns(header)}, _lines_hash"
    _rank_versions(con, staged.documents, "_doc", DOCUMENTS_KEY, content, carry=("doc_date",), source=with_lines_hash)
    if scope.newer_only:
        _set_aside_older_versions(con, scope, staged, source, run_id)
    moved = {
        row[0]
        for row in con.execute(
            "SELECT DISTINCT doc_date FROM documents WHERE doc_type = ? AND (doc_date < ? OR doc_date >= ?)"
            " AND number IN (SELECT number FROM s_versions WHERE _rank = 1)",
            [scope.doc_type, scope.start, scope.end],
        ).fetchall()
    }
    for table in ("document_lines", "documents"):
        con.execute(
            f"DELETE FROM {table} WHERE doc_type = ? AND ((doc_date >= ? AND doc_date < ?)"
            " OR number IN (SELECT number FROM s_versions WHERE _rank = 1))",
            [scope.doc_type, scope.start, scope.end],
        )
    kept = "_doc IN (SELECT _doc FROM s_versions WHERE _rank = 1)"
    con.execute(
        f"INSERT INTO documents SELECT {_columns(header)} FROM {_STAGED} WHERE {kept}", {"staged": staged.documents}
    )
    lines = scalar(
        con,
        f"INSERT INTO document_lines SELECT {_columns(line)} FROM {_STAGED} WHERE {kept}",
        {"staged": staged.lines},
    )
    if scalar(con, "SELECT count(*) FROM s_versions WHERE _rank > 1"):
        reason = f"duplicate key ({', '.join(DOCUMENTS_KEY)}): another version was kept"
        losing = "(SELECT _doc, $reason AS _reason FROM s_versions WHERE _rank > 1)"
        _reject_staged_documents(con, staged, losing, source, run_id, {"reason": reason})
    rows = scalar(con, "SELECT count(*) FROM s_versions WHERE _rank = 1")
    documents = scalar(con, f"SELECT count(*) FROM {_STAGED}", {"staged": staged.documents})
    return {"rows": rows, "lines": lines, "duplicates": documents - rows}, moved


def _set_aside_older_versions(
    con: duckdb.DuckDBPyConnection, scope: _Scope, staged: _StagedDocuments, source: str, run_id: str
) -> None:
    """A kept version older than the held one (both with modified_at) is not applied (s_versions `_rank` 0) and
    becomes a rejected row: a stale file must not undo a newer landing, nor move a document back to a day 1C left
    (where the next sync of that day would then remove it)."""
    con.execute(
        "CREATE TEMP TABLE s_older AS SELECT v._doc, format('not applied: this version (modified_at {}) is older"
        " than the one held (modified_at {})', v.modified_at, h.modified_at) AS _reason"
        " FROM s_versions v JOIN documents h ON h.doc_type = $doc_type AND h.number = v.number"
        " WHERE v._rank = 1 AND h.modified_at > v.modified_at",
        {"doc_type": scope.doc_type},
    )
    if scalar(con, "SELECT count(*) FROM s_older"):
        con.execute("UPDATE s_versions SET _rank = 0 WHERE _doc IN (SELECT _doc FROM s_older)")
        _reject_staged_documents(con, staged, "s_older", source, run_id, {})


def _reject_staged_documents(
    con: duckdb.DuckDBPyConnection,
    staged: _StagedDocuments,
    chosen: str,
    source: str,
    run_id: str,
    params: Mapping[str, Any],
) -> None:
    """Staged versions not kept become rejected rows, each with its lines as `items`. `chosen` is a table or
    subquery (of fixed text) of their `_doc` and `_reason`; `params` binds its parameters."""
    header, line = documents_schema(), document_lines_schema()
    con.execute(
        "INSERT INTO s_rejected SELECT 'documents', d.doc_type, d.doc_date, d.number, c._reason,"
        f" to_json(struct_pack({_struct_fields(header, prefix='d.')}, items := ("
        f"  SELECT list(struct_pack({_struct_fields(line, prefix='l.')}) ORDER BY l.line)"
        "   FROM read_parquet($lines) l WHERE l._doc = d._doc))), $source, $run_id, now()"
        f" FROM {chosen} c JOIN read_parquet($documents) d USING (_doc)",
        {"documents": staged.documents, "lines": staged.lines, "source": source, "run_id": run_id, **params},
    )


def _rank_versions(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    order: str,
    key: Sequence[str],
    content: str,
    *,
    carry: Sequence[str] = (),
    source: str = _STAGED,
) -> None:
    """s_versions: the key, staging id and `carry` columns of one row per distinct content of each key (the first
    staged copy); `_rank` 1 is the version kept: the latest modified_at, ties to the first staged. Rows are read
    from `source` (the staged files bound as `$staged`) and only these few columns are kept in memory."""
    keys = ", ".join(key)
    kept = ", ".join((*key, order, "modified_at", *carry))
    con.execute(
        f"CREATE TEMP TABLE s_versions AS SELECT * EXCLUDE (_hash, _copy) FROM ("
        f" SELECT *, row_number() OVER (PARTITION BY {keys}"
        f"  ORDER BY modified_at DESC NULLS LAST, {order}) AS _rank"
        f" FROM (SELECT *, row_number() OVER (PARTITION BY {keys}, _hash ORDER BY {order}) AS _copy"
        f" FROM (SELECT {kept}, hash({content}) AS _hash FROM {source})) WHERE _copy = 1)",
        {"staged": files},
    )


def _line_owners(batch: CheckedBatch, documents: pl.DataFrame, lines: pl.DataFrame, ids: pl.Series) -> pl.Series:
    """The staging id of each line's document: by row link when the batch has one, else by number."""
    if batch.line_document_rows is not None:
        return ids.gather(batch.line_document_rows).alias("_doc")
    if documents["number"].n_unique() != documents.height:
        raise ValueError("batch holds a document number twice and no line_document_rows to tell their lines apart")
    owners = lines.select("number").join(
        documents.select("number", ids.alias("_doc")), on="number", how="left", maintain_order="left"
    )["_doc"]
    if owners.null_count():
        raise ValueError("batch has lines whose document is not in the batch")
    return owners


def _required_frame(frame: pl.DataFrame | None, name: str) -> pl.DataFrame:
    if frame is None:
        raise ValueError(f"this landing needs batches with {name}; got a batch without")
    return frame


def _schemas(timezone: str) -> dict[str, pl.Schema]:
    return {
        "goods": goods_schema(timezone),
        "documents": documents_schema(timezone),
        "document_lines": document_lines_schema(),
        "rejected_rows": rejected_rows_schema(),
    }


_UNIQUE_KEYS = {
    "goods": (*GOODS_KEY, "snapshot_date"),
    "documents": DOCUMENTS_KEY,
    "document_lines": DOCUMENT_LINES_KEY,
}
"""Keys no two rows share; enforced by `_check_unique` in every landing's transaction, not by constraints."""


def _check_unique(con: duckdb.DuckDBPyConnection, scope: _Scope) -> None:
    """Refuse to commit if the rows this landing touched break a unique key (the dedupe above should make that
    impossible: this is the guarantee the primary keys used to give). Only the landed keys are grouped: rows of
    other keys were unique before and the landing did not add to them."""
    checks: list[tuple[str, str, list[Any]]]
    if scope.entity == "goods":
        checks = [("goods", "snapshot_date = ?", [scope.start])]
    else:
        landed = "doc_type = ? AND number IN (SELECT number FROM s_versions WHERE _rank = 1)"
        checks = [("documents", landed, [scope.doc_type]), ("document_lines", landed, [scope.doc_type])]
    for table, where, params in checks:
        key = ", ".join(_UNIQUE_KEYS[table])
        duplicate = con.execute(
            f"SELECT {key} FROM {table} WHERE {where} GROUP BY {key} HAVING count(*) > 1 LIMIT 1", params
        ).fetchone()
        if duplicate is not None:
            raise RuntimeError(f"landing would leave two {table} rows with key ({key}) = {duplicate}; rolled back")


def _add_new_columns(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """Columns the canonical schemas gained since a warehouse was created (e.g. `document_lines.line_unit`), added
    null at the end: a schema only ever grows by nullable columns appended last, so positional inserts stay right."""
    for table, schema in _schemas(timezone).items():
        present = {row[0] for row in con.execute(f"SELECT * FROM {table} LIMIT 0").description}
        for name, dtype in schema.items():
            if name not in present:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {_duckdb_type(dtype)}")


def _drop_primary_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses created before `_check_unique` declared primary keys on the big tables; DuckDB cannot drop a
    constraint, so such a table is copied without it, in one transaction (once: a rebuilt table has no key)."""
    keyed = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
            " AND database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    }
    for table in _UNIQUE_KEYS:
        if table not in keyed:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE TABLE {table}_rebuilt AS SELECT * FROM {table}")
            con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """End a failed transaction, keeping its error: a COMMIT that failed (a full disk under the WAL) has ended the
    transaction already, and the ROLLBACK's own "no transaction is active" must not replace why it failed."""
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _ddl(timezone: str) -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} ({_column_defs(schema)})" for table, schema in _schemas(timezone).items()
    ]
    log = ", ".join(f"{name} {kind}" for name, kind in LOAD_LOG_COLUMNS.items())
    statements.append(f"CREATE TABLE IF NOT EXISTS load_log ({log})")
    goods = goods_schema(timezone)
    history = [f"{name} {_duckdb_type(goods[name])}" for name in ("sku", "warehouse", *_HISTORY_ATTRIBUTES)]
    history += [f"{name} {kind}" for name, kind in GOODS_HISTORY_COLUMNS.items()]
    statements.append(f"CREATE TABLE IF NOT EXISTS goods_history ({', '.join(history)})")
    statements.append(
        "CREATE TABLE IF NOT EXISTS sync_cursors (entity VARCHAR, doc_type VARCHAR, cursor TIMESTAMPTZ,"
        " run_id VARCHAR, updated_at TIMESTAMPTZ, PRIMARY KEY (entity, doc_type))"
    )
    statements.append(f"ALTER TABLE sync_cursors ADD COLUMN IF NOT EXISTS basis VARCHAR DEFAULT '{LEGACY_CURSOR}'")
    statements.append(lake_mirror.PENDING_DDL)
    statements.append(
        "CREATE TABLE IF NOT EXISTS source_versions (source VARCHAR, doc_type VARCHAR, id VARCHAR, version VARCHAR,"
        " PRIMARY KEY (source, doc_type, id))"
    )
    return statements


def _column_defs(schema: pl.Schema) -> str:
    return ", ".join(f"{name} {_duckdb_type(dtype)}" for name, dtype in schema.items())


def _duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    simple = {
        pl.String: "VARCHAR",
        pl.Date: "DATE",
        pl.Boolean: "BOOLEAN",
        pl.Int32: "INTEGER",
        pl.Int64: "BIGINT",
    }
    return simple[dtype.base_type()]


def _columns(schema: pl.Schema, *, drop: Sequence[str] = (), prefix: str = "") -> str:
    """Column list from a canonical schema: identifiers in SQL only ever come from these fixed schemas."""
    return ", ".join(f"{prefix}{name}" for name in schema if name not in drop)


def _struct_fields(schema: pl.Schema, *, prefix: str = "") -> str:
    return ", ".join(f"{name} := {prefix}{name}" for name in schema)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> int:
    """The integer a one-row query returns (a count, an INSERT's or UPDATE's rows); 0 when it returns no row."""
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days)]


def _checked_base(base: str) -> str:
    """The base id names folders (`bases/<id>`, `base=<id>`): only a well-formed id is accepted."""
    if not BASE_ID.fullmatch(base):
        raise ValueError(f"{base!r} is not a base id (a-z, 0-9 and _, a letter first, at most 32)")
    return base


def _checked_zone(name: str) -> str:
    """The zone goes into `SET TimeZone`, which takes no parameters: only a real IANA name is accepted."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA time zone") from None
    if not _ZONE_NAME.match(name):
        raise ValueError(f"{name!r} is not a time zone name")
    return name


@contextmanager
def _flock(path: Path, *, exclusive: bool, timeout_s: float) -> Iterator[None]:
    """Block until the lock is ours or the timeout passes; the kernel releases it if the process dies."""
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout_s
    with path.open("ab") as handle:
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"another process has held the warehouse lock ({path}) for over {timeout_s:.0f}s;"
                        " DuckDB allows one writer at a time: wait for it or raise the lock timeout"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_waiting(database: Path, *, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting while another process (an analyst's session, a BI tool) holds DuckDB's own file
    lock: a reader must delay a landing, not fail it. The wait is bounded and said once, naming the holder."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    said = False
    while True:
        try:
            return duckdb.connect(str(database), read_only=read_only)
        except duckdb.IOException as exc:
            if _LOCK_CONFLICT not in str(exc):
                raise
            holder = _lock_holder(str(exc))
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"{database} has been held by {holder} for over {timeout_s:.0f}s; close it there (analysts can"
                    " read the Parquet lake through lake/views.sql instead) and re-run: everything fetched is staged"
                ) from None
            if not said:
                _log.warning("waiting for %s: it is held open by %s (up to %.0fs)", database, holder, timeout_s)
                said = True
            time.sleep(delay)
            delay = min(0.2, delay * 2)


_LOCK_CONFLICT = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _lock_holder(message: str) -> str:
    """`PID 123 (/usr/bin/python3)` from DuckDB's lock-conflict message, or a plain phrase when it names none."""
    found = _LOCK_HOLDER.search(message)
    return f"PID {found.group(2)} ({found.group(1)})" if found else "another process"


def _held(path: Path) -> bool:
    """Whether a live process holds this staging lock."""
    try:
        with path.open("ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
