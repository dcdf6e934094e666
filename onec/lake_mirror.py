"""The lake follows the warehouse: pending lake work, recorded with the rows, written after the commit.

Why a table of pending work: a landing commits its rows (and its change cursor) in one DuckDB transaction and can
only write the lake after that commit, from the committed tables. A run killed in between used to leave the lake
without those partitions for good: the cursor had moved, so no later run landed (nor rewrote) those days again.
Now the landing's transaction also records which lake partitions it changed (`record_pending`); each is deleted
only once its file is written (`complete_pending`), and whoever next holds the writer lock (every `initialize`,
every landing's commit) completes what is left first. Rewriting a partition from the committed table is idempotent,
so redoing work a killed run had half done is always safe.
"""

# ruff: noqa: S608 — SQL text is built only from the fixed identifiers of LAKE_TABLES and from column names read
# from DuckDB's own catalog; every value is a bound parameter.

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from onec import delta_lake, lake
from onec.delta_lake import DeltaTarget

PENDING_TABLE = "lake_pending"
PENDING_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (lake_table VARCHAR NOT NULL, doc_type VARCHAR,"
    " partition_date DATE, run_id VARCHAR, recorded_at TIMESTAMPTZ)"
)
"""One row per lake partition whose file no longer matches its committed table: the day (goods_history: the
closed month; NULL, the partition of its open versions). Duplicates are harmless: completing a partition deletes all
its rows."""

CLOSED_MONTH = "CAST(date_trunc('month', make_timestamp(epoch_us(valid_to))) AS DATE)"
"""goods_history's partition: the first day of the UTC month its version closed (NULL while open), whatever the
session's zone. Why by closing month: a closed version never changes again, so a landing rewrites the open versions
and the months its closings fall in, never the history before them. The same as `date_trunc('month', valid_to AT TIME
ZONE 'UTC')`, but from the instant's microseconds since the epoch (UTC by definition) without a zone conversion,
which costs several times more per row (docs/benchmarks.md, History)."""
LEGACY_HISTORY_FILE = Path("goods_history") / lake.FILE_NAME
"""Where goods_history was one file per base, before it was partitioned by closed month (`record_history_upgrade`)."""

LAKE_BATCH_ROWS = 16_384
"""Rows per Arrow batch streamed from DuckDB into the lake files: a lake write holds one batch, not a range."""
LAKE_ROWS_PER_QUERY = 20_000
"""Rows per lake query (whole days, at least one): its ORDER BY sorts them all before the first batch comes out, so
a range is written in groups of days of about this many rows; one query per day would cost more than the files."""


@dataclass(frozen=True)
class LakeTable:
    """How a warehouse table is laid out in the lake: by document type (or not), then by day. The day is a column
    of the table (dropped from the files: it is in the folder name), or with `day_expression` computed from its
    columns (the files keep them all); only a computed day may be NULL (`lake.NULL_PARTITION`)."""

    name: str
    day_key: str
    by_doc_type: bool
    order: str
    day_expression: str | None = None
    month_of: str | None = None
    """The instant column whose UTC month `day_expression` is, if it is one: a range on the column itself lets DuckDB
    skip row groups by their min/max before it computes any row's month (docs/benchmarks.md, History)."""

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return (*(("doc_type",) if self.by_doc_type else ()), self.day_key)

    @property
    def day_value(self) -> str:
        """The SQL that gives a warehouse row's day: the column, or the expression."""
        return self.day_expression or self.day_key

    @property
    def day_column(self) -> str:
        """The day as a select item, named as the partition key (`closed_month`, computed, for goods_history)."""
        return f"{self.day_value} AS {self.day_key}"

    def directory(self, root: Path, doc_type: str | None, day: dt.date | None) -> Path:
        directory = root / self.name
        if self.by_doc_type:
            directory /= f"doc_type={doc_type}"
        return directory / f"{self.day_key}={self.folder_value(day)}"

    def folder_value(self, day: dt.date | None) -> str:
        if day is None:
            assert self.day_expression is not None, f"{self.name} has no partition without {self.day_key}"
            return lake.NULL_PARTITION
        return day.isoformat()


LAKE_TABLES = {
    table.name: table
    for table in (
        LakeTable("goods", "snapshot_date", by_doc_type=False, order="sku, warehouse"),
        LakeTable("documents", "doc_date", by_doc_type=True, order="number"),
        LakeTable("document_lines", "doc_date", by_doc_type=True, order="number, line"),
        LakeTable(
            "goods_history",
            "closed_month",
            by_doc_type=False,
            order="sku, warehouse, valid_from",
            day_expression=CLOSED_MONTH,
            month_of="valid_to",
        ),
    )
}
"""The landed tables the lake mirrors. (The marts are rebuilt whole, lake copy included, by every mart build.)"""


@dataclass(frozen=True)
class LakePartition:
    """One lake file: a table's partition (doc_type as the table is partitioned, else None; the day, None for
    goods_history's open versions)."""

    table: str
    doc_type: str | None
    day: dt.date | None

    @property
    def sort_key(self) -> tuple[str, str, dt.date]:
        return self.table, self.doc_type or "", self.day or dt.date.min

    def describe(self) -> str:
        table = LAKE_TABLES[self.table]
        doc_type = [f"doc_type={self.doc_type}"] if table.by_doc_type else []
        return "/".join([self.table, *doc_type, f"{table.day_key}={table.folder_value(self.day)}"])


def table_partitions(table: str, doc_type: str | None, days: Iterable[dt.date | None]) -> list[LakePartition]:
    return [LakePartition(table, doc_type, day) for day in days]


def record_pending(con: duckdb.DuckDBPyConnection, partitions: Iterable[LakePartition], run_id: str) -> None:
    """Record lake work inside the caller's open transaction: it commits (or rolls back) with the rows. One statement
    per table and type, the days as a list (a range of years is thousands of days)."""
    for (table, doc_type), group in groupby(
        sorted(partitions, key=lambda p: p.sort_key), key=lambda p: (p.table, p.doc_type)
    ):
        days = [p.day for p in group]
        con.execute(
            f"INSERT INTO {PENDING_TABLE} SELECT ?, ?, UNNEST(?::DATE[]), ?, now()", [table, doc_type, days, run_id]
        )


def pending(con: duckdb.DuckDBPyConnection) -> list[LakePartition]:
    rows = con.execute(
        f"SELECT DISTINCT lake_table, doc_type, partition_date FROM {PENDING_TABLE} ORDER BY ALL"
    ).fetchall()
    return [LakePartition(table, doc_type, day) for table, doc_type, day in rows]


def complete_pending(
    con: duckdb.DuckDBPyConnection, root: Path, delta: DeltaTarget | None = None
) -> list[lake.LakeWrite]:
    """Write the lake file of every pending partition from its committed table (autocommit connection, under the
    writer lock), deleting each group's (table and type) pending rows once all its files are in place. A kill
    part-way leaves the group recorded for the next writer, which rewrites it (rewriting a file is idempotent).
    One delete per group, not per query of files: each delete is a transaction of its own, and per query they cost
    about as much as writing the files. With `delta`, the partitions are replaced in the Delta lake instead (one
    commit per table and document type; nothing is written under `root`, and no files are returned)."""
    written: list[lake.LakeWrite] = []
    for (name, doc_type), group in groupby(pending(con), key=lambda p: (p.table, p.doc_type)):
        table = LAKE_TABLES[name]
        days = [p.day for p in group]
        if delta is not None:
            _commit_delta(con, table, doc_type, days, delta)
            _forget(con, table, doc_type, days)
            continue
        for window in _day_windows(con, table, doc_type, days):
            written += _write_days(con, table, doc_type, window, root)
        _forget(con, table, doc_type, days)
    return written


def record_history_upgrade(con: duckdb.DuckDBPyConnection, root: Path) -> bool:
    """If the base's lake still has goods_history as one file (`LEGACY_HISTORY_FILE`), record every partition of
    the new layout as pending (committed, autocommit connection) and say so: the caller completes them, then removes
    the old file (`remove_legacy_history`). A kill anywhere in between leaves the old file, so the next writer does
    it all again; meanwhile the views read the old file, not the months beside it (`lake_views.LEGACY_FILES`)."""
    if not (root / LEGACY_HISTORY_FILE).exists():
        return False
    table = LAKE_TABLES["goods_history"]
    months = [row[0] for row in con.execute(f"SELECT DISTINCT {table.day_value} FROM {table.name}").fetchall()]
    con.begin()
    record_pending(con, table_partitions(table.name, None, [*months, None]), "history-layout-upgrade")
    con.commit()
    return True


def remove_legacy_history(root: Path) -> None:
    (root / LEGACY_HISTORY_FILE).unlink(missing_ok=True)


def repartition_delta_history(con: duckdb.DuckDBPyConnection, delta: DeltaTarget) -> delta_lake.DeltaCommit | None:
    """If the Delta lake's goods_history is still partitioned by base alone (before closed months), rewrite it
    partitioned by base and closed month in one commit (None: nothing to do). Delta cannot repartition in place,
    and the table holds every base: the other bases' rows come from its current version, this base's from the
    warehouse (the truth this mirror follows), so no base waits for its own worker to move."""
    table = LAKE_TABLES["goods_history"]
    partitions = delta_lake.Partitions(delta.base, None, table.day_key)
    found = delta.lake.table(table.name)
    if found is None or found.metadata().partition_columns == partitions.columns:
        return None
    try:
        return delta_lake.repartition(delta.lake, table.name, partitions, _repartitioned_rows(con, table, delta))
    finally:
        con.unregister(_PREVIOUS_VERSION)


_PREVIOUS_VERSION = "delta_lake_previous_version"


def _repartitioned_rows(
    con: duckdb.DuckDBPyConnection, table: LakeTable, delta: DeltaTarget
) -> Callable[[], pa.RecordBatchReader]:
    """Every base's rows of the table with the computed day: the other bases' from the table's current version (read
    again on every call, as a retry must), this base's from the warehouse."""
    assert table.day_expression is not None
    base = delta_lake.BASE_COLUMN
    names = [name for name, _ in _table_columns(con, table)]
    columns = ", ".join(name for name in names if name != base)
    day = table.day_column
    ours = f"SELECT ?::VARCHAR AS {base}, {columns}, {day} FROM {table.name}"
    ours_filter = f" WHERE {base} = ?" if base in names else ""

    def rows() -> pa.RecordBatchReader:
        current = delta.lake.table(table.name)
        assert current is not None, f"the Delta table {table.name} went away while being repartitioned"
        con.register(_PREVIOUS_VERSION, current.to_pyarrow_dataset())
        sql = (
            f"SELECT {base}, {columns}, {day} FROM {_PREVIOUS_VERSION} WHERE {base} <> ?"
            f" UNION ALL {ours}{ours_filter} ORDER BY {base}, {table.day_key}, {table.order}"
        )
        return _arrow_stream(con, sql, [delta.base, delta.base, *([delta.base] if ours_filter else [])])

    return rows


def lake_columns(con: duckdb.DuckDBPyConnection, table: LakeTable) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the columns a lake file holds: the table's, less the keys in the directory names."""
    return [(name, kind) for name, kind in _table_columns(con, table) if name not in table.partition_keys]


def _table_columns(con: duckdb.DuckDBPyConnection, table: LakeTable) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
        [table.name],
    ).fetchall()
    if not rows:
        raise RuntimeError(f"the warehouse has no table {table.name}: run initialize() first")
    return [(name, kind) for name, kind in rows]


def _write_days(
    con: duckdb.DuckDBPyConnection, table: LakeTable, doc_type: str | None, days: list[dt.date | None], root: Path
) -> list[lake.LakeWrite]:
    columns = ", ".join(name for name, _ in lake_columns(con, table))
    where, params = _partition_filter(table, doc_type, days)
    day, order = table.day_key, table.order
    sql = f"SELECT {table.day_column}, {columns} FROM {table.name} WHERE {where} ORDER BY {day}, {order}"
    with _arrow_stream(con, sql, params) as batches:
        directories = {day: table.directory(root, doc_type, day) for day in days}
        return lake.write_partitions(batches, table.day_key, directories)


def _commit_delta(
    con: duckdb.DuckDBPyConnection,
    table: LakeTable,
    doc_type: str | None,
    days: list[dt.date | None],
    delta: DeltaTarget,
) -> delta_lake.DeltaCommit:
    """Replace the base's partitions of `days` in one Delta commit,
    streamed from the committed table in the same day windows as the Parquet files. A retry re-reads the
    warehouse, which is the truth this mirror follows, so retrying after a conflict is always right."""
    partitions = delta_lake.Partitions(delta.base, doc_type if table.by_doc_type else None, table.day_key, tuple(days))
    return delta_lake.replace_partitions(
        delta.lake, table.name, partitions, _delta_rows(con, table, doc_type, days, delta.base)
    )


def _delta_rows(
    con: duckdb.DuckDBPyConnection, table: LakeTable, doc_type: str | None, days: list[dt.date | None], base: str
) -> Callable[[], pa.RecordBatchReader]:
    """The rows of the partitions, every column of the table and the partition keys (Delta keeps them as columns: a
    computed day is added), the windows' queries chained into one stream. A table that already has the base column
    is filtered by it."""
    names = [name for name, _ in _table_columns(con, table)]
    has_base = delta_lake.BASE_COLUMN in names
    base_filter = f"{delta_lake.BASE_COLUMN} = ? AND " if has_base else ""
    base_params = [base] if has_base else []
    columns = ", ".join([*names, *([table.day_column] if table.day_expression else [])])
    queries = []
    for window in _day_windows(con, table, doc_type, days):
        where, params = _partition_filter(table, doc_type, window)
        order = f"{table.day_key}, {table.order}"
        queries.append(
            (f"SELECT {columns} FROM {table.name} WHERE {base_filter}{where} ORDER BY {order}", base_params + params)
        )

    def rows() -> pa.RecordBatchReader:
        first = _arrow_stream(con, *queries[0])

        def batches() -> Iterator[pa.RecordBatch]:
            with first:
                yield from first
            for sql, params in queries[1:]:
                with _arrow_stream(con, sql, params) as more:
                    yield from more

        return pa.RecordBatchReader.from_batches(first.schema, batches())

    return rows


def _forget(con: duckdb.DuckDBPyConnection, table: LakeTable, doc_type: str | None, days: list[dt.date | None]) -> None:
    con.execute(
        f"DELETE FROM {PENDING_TABLE} WHERE lake_table = ? AND doc_type IS NOT DISTINCT FROM ?"
        f" AND {days_filter('partition_date')}",
        [table.name, doc_type, *days_params(days)],
    )


def days_filter(value: str) -> str:
    """SQL: `value` is one of the days bound by `days_params` (a None among them matches NULL)."""
    return f"({value} IN (SELECT UNNEST(?::DATE[])) OR (? AND {value} IS NULL))"


def days_params(days: Sequence[dt.date | None]) -> list[Any]:
    return [[day for day in days if day is not None], None in days]


def _partition_filter(table: LakeTable, doc_type: str | None, days: Sequence[dt.date | None]) -> tuple[str, list[Any]]:
    where, params = days_filter(table.day_value), days_params(days)
    if table.month_of is not None:
        months, months_params = _months_range(table.month_of, days)
        where, params = f"{months} AND {where}", [*months_params, *params]
    if table.by_doc_type:
        return f"doc_type = ? AND {where}", [doc_type, *params]
    return where, params


def _months_range(column: str, months: Sequence[dt.date | None]) -> tuple[str, list[Any]]:
    """SQL: `column` lies within the UTC months given (from the first to the end of the last; a None: or is NULL).
    Coarser than the months themselves, never narrower: it only spares computing each row's month."""
    dated = [month for month in months if month is not None]
    if not dated:
        return f"{column} IS NULL", []
    last = max(dated)
    end = dt.date(last.year + last.month // 12, last.month % 12 + 1, 1)
    bounds = [dt.datetime.combine(day, dt.time(), dt.UTC) for day in (min(dated), end)]
    return f"({column} IS NULL AND ? OR {column} >= ? AND {column} < ?)", [None in months, *bounds]


def _day_windows(
    con: duckdb.DuckDBPyConnection, table: LakeTable, doc_type: str | None, days: list[dt.date | None]
) -> list[list[dt.date | None]]:
    """`days` in consecutive groups of at most LAKE_ROWS_PER_QUERY rows of `table` (a bigger day is a group alone)."""
    where, params = _partition_filter(table, doc_type, days)
    counts = dict(
        con.execute(
            f"SELECT {table.day_value}, count(*) FROM {table.name} WHERE {where} GROUP BY ALL", params
        ).fetchall()
    )
    windows: list[list[dt.date | None]] = []
    rows = 0
    for day in days:
        if not windows or rows + counts.get(day, 0) > LAKE_ROWS_PER_QUERY:
            windows.append([])
            rows = 0
        windows[-1].append(day)
        rows += counts.get(day, 0)
    return windows


def _arrow_stream(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
    """A query's result as record batches of LAKE_BATCH_ROWS; use it in `with`, which releases the result."""
    reader: pa.RecordBatchReader = con.sql(sql, params=list(params)).to_arrow_reader(LAKE_BATCH_ROWS)
    return reader
