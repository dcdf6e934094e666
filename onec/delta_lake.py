"""The Delta lake: the lake tables as Delta tables (delta-rs), which several workers may write at once.

Why Delta next to the Parquet layout (onec/lake.py): a Parquet partition file is replaced with `os.replace`, which is
atomic on one local disk and under one writer lock, but not across machines nor on object storage. A Delta table
commits each write as one new, numbered log entry (`_delta_log/NNN.json`), created only if absent (a rename on local
disk, a conditional PUT on S3: no lock service). So:

- a landing replaces exactly its partitions in one commit (`write_deltalake(mode="overwrite", predicate=...)`: the
  files of the partitions the predicate names are removed and the new ones added together; rows outside the
  predicate are refused, so a bug cannot overwrite a neighbour);
- writers of disjoint partitions (other bases, other days) both commit: delta-rs re-checks the winner's changes
  against what it read and finds no overlap. Except on a table not yet created: delta-rs lets every writer that
  saw no table commit the table's metadata, and each such commit fails every other writer's commit in flight once
  ("Metadata changed"); that is retried like any conflict, so the first landings on a fresh lake may take a few
  attempts;
- a writer whose partitions someone else changed meanwhile gets `CommitFailedError`; `replace_partitions` then
  reads its rows again (`rows` is a function for that reason) and retries, a bounded number of times, and
  otherwise raises `LakeConflict` naming the partitions;
- a reader sees one committed version: every partition whole, old or new, never half of a write.

Every table is partitioned by `base` first (the 1C base the rows come from; `main` for the one-base default), then
as the Parquet lake is: `doc_type` where the table has one, then the day.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from onec.config import LakeFormat, Settings
from onec.errors import BusyError
from onec.lake_views import sql_literal

if TYPE_CHECKING:
    import pyarrow.dataset as pa_ds

DEFAULT_BASE = "main"
"""The base id of the one-base default (no base configured)."""
BASE_COLUMN = "base"
DEFAULT_DIRECTORY = "delta"
"""The Delta lake's directory under ONEC_DATA_DIR when ONEC_LAKE_URI is not set."""
COMMIT_ATTEMPTS = 4
"""Commits tried before a conflict on the same partitions is reported: each retry rewrites the partitions from
`rows` read again, so only writers racing for the same partitions (or to create the table) ever wait."""
RETRY_PAUSE_S = 0.05
"""The first pause between attempts (doubled after each), so racing writers do not collide again at once."""
WRITER_PROPERTIES = WriterProperties(compression="ZSTD")


class LakeConflict(BusyError):
    """A partition replace lost `attempts` commits in a row to writers of the same partitions: run it again."""


@dataclass(frozen=True)
class DeltaLake:
    """Where the Delta tables live (a local directory or `s3://bucket/prefix`) and how to reach them. The storage
    options hold credentials: they are kept out of repr."""

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeltaLake:
        """The lake ONEC_LAKE_* configure; None-valued S3 options are left to delta-rs's own AWS_* chain."""
        lake = settings.lake
        root = lake.uri or str((settings.data_dir / DEFAULT_DIRECTORY).absolute())
        options: dict[str, str] = {}
        if lake.s3_endpoint:
            options["AWS_ENDPOINT_URL"] = lake.s3_endpoint
            if lake.s3_endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        if lake.s3_region:
            options["AWS_REGION"] = lake.s3_region
        if lake.s3_access_key_id:
            options["AWS_ACCESS_KEY_ID"] = lake.s3_access_key_id.reveal()
            options["AWS_SECRET_ACCESS_KEY"] = lake.s3_secret_access_key.reveal()
        return cls(root, options)

    @property
    def local(self) -> bool:
        return "://" not in self.root

    def table_uri(self, table: str) -> str:
        if self.local:
            return str(Path(self.root) / table)
        return f"{self.root.rstrip('/')}/{table}"

    def table(self, table: str) -> DeltaTable | None:
        """The table's latest version, or None while nothing has been written to it."""
        try:
            return DeltaTable(self.table_uri(table), storage_options=dict(self.storage_options))
        except TableNotFoundError:
            return None

    def dataset(self, table: str) -> pa_ds.Dataset:
        """One committed version of the table as a pyarrow dataset: what DuckDB reads (`register`) without any
        extension. The version is fixed when this is called; later commits do not change what it reads."""
        found = self.table(table)
        if found is None:
            raise TableNotFoundError(f"the Delta lake has no table {table} at {self.table_uri(table)}")
        return found.to_pyarrow_dataset()

    def scan(self, table: str) -> pl.LazyFrame:
        """The table's latest version as a Polars lazy frame (Polars reads Delta natively)."""
        return pl.scan_delta(self.table_uri(table), storage_options=dict(self.storage_options))

    def register(self, con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> list[str]:
        """Register each table that exists as a DuckDB view of its current version; returns those registered."""
        registered = []
        for table in tables:
            found = self.table(table)
            if found is not None:
                con.register(table, found.to_pyarrow_dataset())
                registered.append(table)
        return registered


@dataclass(frozen=True)
class DeltaTarget:
    """Where a warehouse mirrors its landings when the lake is Delta: the lake, and the base its rows belong to."""

    lake: DeltaLake
    base: str = DEFAULT_BASE


def configured_target(settings: Settings, base: str = DEFAULT_BASE) -> DeltaTarget | None:
    """The Delta lake a warehouse mirrors to under ONEC_LAKE_FORMAT=delta; None: the Parquet lake (the default)."""
    if settings.lake.format is not LakeFormat.DELTA:
        return None
    return DeltaTarget(DeltaLake.from_settings(settings), base)


@dataclass(frozen=True)
class Partitions:
    """The partitions one commit replaces: one base, one document type (for a table split by type), and days of
    the table's day column (for a table split by day; none: the base's whole table). A None among the days is the
    partition whose day is null (goods_history's open versions)."""

    base: str = DEFAULT_BASE
    doc_type: str | None = None
    day_key: str | None = None
    days: tuple[dt.date | None, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The table's partition columns, in directory order."""
        return [
            BASE_COLUMN,
            *(["doc_type"] if self.doc_type is not None else []),
            *([self.day_key] if self.day_key is not None else []),
        ]

    def predicate(self) -> str:
        """The SQL predicate delta-rs replaces by. Values are quoted literals (delta-rs takes no bound parameters);
        days are ISO dates, which need no quoting beyond that."""
        terms = [f"{BASE_COLUMN} = {sql_literal(self.base)}"]
        if self.doc_type is not None:
            terms.append(f"doc_type = {sql_literal(self.doc_type)}")
        if self.day_key is not None:
            terms.append(self._days_predicate(self.day_key))
        return " AND ".join(terms)

    def _days_predicate(self, key: str) -> str:
        dated = [sql_literal(day.isoformat()) for day in self.days if day is not None]
        either = [
            *([f"{key} IN ({', '.join(dated)})"] if dated else []),
            *([f"{key} IS NULL"] if None in self.days else []),
        ]
        return either[0] if len(either) == 1 else f"({' OR '.join(either)})"

    def describe(self) -> str:
        shown = [f"{BASE_COLUMN}={self.base}", *([f"doc_type={self.doc_type}"] if self.doc_type else [])]
        if self.days:
            first, last = (day.isoformat() if day else "null" for day in (self.days[0], self.days[-1]))
            span = first + (f"..{last}" if len(self.days) > 1 else "")
            shown.append(f"{self.day_key}={span} ({len(self.days)} days)")
        return ", ".join(shown)


@dataclass(frozen=True)
class DeltaCommit:
    """What one partition replace did: rows written, attempts it took, and its wall time."""

    table: str
    partitions: Partitions
    rows: int
    attempts: int
    seconds: float


def replace_partitions(
    lake: DeltaLake,
    table: str,
    partitions: Partitions,
    rows: Callable[[], pa.RecordBatchReader],
    *,
    attempts: int = COMMIT_ATTEMPTS,
) -> DeltaCommit:
    """Replace `partitions` of `table` with the rows `rows()` streams, in one commit (the table is created by the
    first write). Rows without a `base` column get `partitions.base`; a row outside `partitions` fails the write
    and changes nothing. No rows: the partitions become empty.

    On a conflict (another writer changed these partitions since this one read the table) `rows()` is called again
    and the commit retried, up to `attempts` in all: so `rows` must read the current truth each time (the
    committed warehouse, a fetch). Then LakeConflict."""
    if partitions.day_key is not None and not partitions.days:
        raise ValueError(f"{table}: a replace by {partitions.day_key} needs at least one day")

    def write() -> int:
        return _overwrite(lake, table, partitions, rows, predicate=partitions.predicate(), schema_mode="merge")

    return _retried(table, partitions, f"{table} ({partitions.describe()})", write, attempts)


def repartition(
    lake: DeltaLake,
    table: str,
    partitions: Partitions,
    rows: Callable[[], pa.RecordBatchReader],
    *,
    attempts: int = COMMIT_ATTEMPTS,
) -> DeltaCommit:
    """Replace the whole table, every base, with `rows()` partitioned by `partitions.columns`, in one commit: Delta
    cannot change a table's partition columns in place, so a table laid out otherwise (goods_history before it was
    split by closed month) is rewritten. `rows()` must hold every base's rows, read again on a retry (any commit
    to the table in between conflicts with this one), base column included."""

    def write() -> int:
        return _overwrite(lake, table, partitions, rows, predicate=None, schema_mode="overwrite")

    return _retried(table, partitions, f"{table} (repartitioned by {', '.join(partitions.columns)})", write, attempts)


def _overwrite(
    lake: DeltaLake,
    table: str,
    partitions: Partitions,
    rows: Callable[[], pa.RecordBatchReader],
    *,
    predicate: str | None,
    schema_mode: Literal["merge", "overwrite"],
) -> int:
    """One overwrite commit of `rows()` (what `predicate` selects, or the whole table), partitioned as `partitions`
    says; the rows written."""
    counted = _CountedRows(rows(), partitions.base)
    write_deltalake(
        lake.table_uri(table),
        counted.reader(),
        mode="overwrite",
        predicate=predicate,
        partition_by=partitions.columns,
        schema_mode=schema_mode,
        storage_options=dict(lake.storage_options),
        writer_properties=WRITER_PROPERTIES,
    )
    return counted.rows


def _retried(
    table: str, partitions: Partitions, described: str, write: Callable[[], int], attempts: int
) -> DeltaCommit:
    """`write()` (one commit, returning its rows) until it commits, at most `attempts` times; then LakeConflict."""
    started = time.monotonic()
    pause = RETRY_PAUSE_S
    for attempt in range(1, attempts + 1):
        try:
            written = write()
        except CommitFailedError as conflict:
            if attempt == attempts:
                raise LakeConflict(
                    f"{described}: {attempts} commits lost to concurrent writers of the same partitions"
                    f" ({_first_line(conflict)}); nothing of this write was committed, run it again"
                ) from conflict
            time.sleep(pause)
            pause *= 2
            continue
        return DeltaCommit(table, partitions, written, attempt, time.monotonic() - started)
    raise AssertionError("unreachable: the last attempt returns or raises")


def replace_frame(
    lake: DeltaLake,
    table: str,
    partitions: Partitions,
    frame: pl.DataFrame | pa.Table,
    *,
    attempts: int = COMMIT_ATTEMPTS,
) -> DeltaCommit:
    """`replace_partitions` from rows in memory (a worker's landed frame): a retry rewrites the same rows."""
    arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame

    def rows() -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches())

    return replace_partitions(lake, table, partitions, rows, attempts=attempts)


class _CountedRows:
    """A record batch stream with the base column added where missing, counting the rows that pass."""

    def __init__(self, source: pa.RecordBatchReader, base: str) -> None:
        self._source = source
        self._base = base
        self._add_base = BASE_COLUMN not in source.schema.names
        self.schema = source.schema.insert(0, pa.field(BASE_COLUMN, pa.string())) if self._add_base else source.schema
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self._source:
            self.rows += batch.num_rows
            if self._add_base:
                base = pa.array([self._base] * batch.num_rows, pa.string())
                yield pa.RecordBatch.from_arrays([base, *batch.columns], schema=self.schema)
            else:
                yield batch


@dataclass(frozen=True)
class Vacuumed:
    """What vacuuming one table did: the replaced files past the retention (paths within the table), none of which
    the storage holds any more (deleted now, or by an earlier vacuum: delta-rs lists a file again until its
    tombstone leaves the log), and the number of data files the table's current version reads."""

    table: str
    files_expired: tuple[str, ...]
    files_current: int


def vacuum(lake: DeltaLake, tables: Sequence[str], retention_hours: int) -> list[Vacuumed]:
    """Delete the data files that commits replaced more than `retention_hours` ago, in every table of `tables` the
    lake has.

    Why: a partition replace keeps the replaced file (a tombstone in the log) so that readers of the version before
    it can finish; nothing else ever deletes it, so without this a lake that is rewritten every night grows by a
    copy of every partition it rewrites. Files a current version reads are never deleted, and neither is a file a
    concurrent writer has just added (it is no tombstone), so vacuum may run beside the landings; a reader still on
    a version older than `retention_hours` may find its files gone, which is why the retention is a setting.
    The retention is honoured as given, below delta-rs's own 7-day floor too (a deliberate setting, and tests)."""
    done = []
    for name in tables:
        table = lake.table(name)
        if table is None:
            continue
        expired = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
        prefix = lake.table_uri(name).rstrip("/") + "/"
        relative = tuple(sorted(path.removeprefix("file://").removeprefix(prefix) for path in expired))
        done.append(Vacuumed(name, relative, len(table.file_uris())))
    return done


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
