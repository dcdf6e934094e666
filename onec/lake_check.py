"""`onec-etl check`: does the lake hold exactly what the warehouse holds? If not, rewrite what differs.

The lake is the Parquet layout, or (ONEC_LAKE_FORMAT=delta) the warehouse's base in the Delta lake: the same
comparison, the Delta side read through its current version's pyarrow dataset.

Why a check besides `lake_pending`: the pending record covers the one gap a run leaves itself (killed between the
commit and the files). Files can also go wrong from outside: deleted or truncated by hand or by a full disk, copied
back from an old backup, or left by a version of this project that predates the pending record. The check compares
every partition of every landed table on both sides by row count and a content checksum (the sum of a hash of every
row, the same expression over the same columns cast to the warehouse's types), so it finds a missing, extra, stale
or unreadable file without holding either side in memory. Repairing is writing those partitions from the committed
tables, exactly as a landing would: the lake is a copy, so rewriting it never loses anything.
"""

# ruff: noqa: S608 — SQL text is built only from the fixed identifiers of LAKE_TABLES and from column names and
# types read from DuckDB's own catalog; file paths are bound parameters.

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from onec import delta_lake, lake, lake_mirror
from onec.delta_lake import DeltaTarget
from onec.errors import UsageError
from onec.lake_mirror import LAKE_TABLES, LakePartition, LakeTable
from onec.warehouse import Warehouse

REPAIR_RUN_ID = "lake-check"


class PreBasesLake(UsageError):
    """A read-only check of a lake not yet moved to the layout with bases: it would report every file missing."""


class OldPartitioning(UsageError):
    """A read-only check of a Delta table not yet repartitioned (goods_history by base alone): its partitions are
    not the warehouse's."""


@dataclass(frozen=True)
class PartitionContent:
    """One side of a partition: its rows and the sum of their hashes (None when a file holds no rows)."""

    rows: int
    checksum: int | None


@dataclass(frozen=True)
class LakeDifference:
    """A partition whose lake file does not hold the warehouse's rows. `warehouse`/`lake` None: no rows there (no
    file, for the lake); `error`: the file could not be read."""

    partition: LakePartition
    warehouse: PartitionContent | None
    lake: PartitionContent | None
    error: str | None = None

    def describe(self) -> str:
        rows = self.warehouse.rows if self.warehouse else 0
        if self.error is not None:
            problem = f"unreadable lake file ({self.error}); warehouse {rows} rows"
        elif self.lake is None:
            problem = f"missing from the lake; warehouse {rows} rows"
        elif self.warehouse is None:
            problem = f"in the lake ({self.lake.rows} rows) but not in the warehouse"
        elif self.lake.rows != rows:
            problem = f"lake {self.lake.rows} rows, warehouse {rows}"
        else:
            problem = f"same row count ({rows}), different content"
        return f"{self.partition.describe()}: {problem}"


@dataclass(frozen=True)
class LakeCheck:
    """What `check_lake` found (`differences`, before any repair), did, and what still differs after it."""

    partitions: int
    differences: tuple[LakeDifference, ...]
    repaired: bool
    remaining: tuple[LakeDifference, ...]
    litter_removed: int

    @property
    def lake_equals_warehouse(self) -> bool:
        return not self.remaining


def check_lake(warehouse: Warehouse, *, repair: bool) -> LakeCheck:
    """Compare every landed table's lake copy with the warehouse, partition by partition; with `repair`, rewrite the
    partitions that differ (and finish pending lake work, and remove temporary-file litter) under the writer lock,
    then compare again. Without it, only read (under a shared lock: no writer changes either side meanwhile)."""
    if not warehouse.database.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse.database}: nothing to compare the lake with")
    root, delta = warehouse.lake_dir, warehouse.delta
    if not repair:
        if warehouse.has_pre_bases_lake():
            raise PreBasesLake(
                f"the lake under {warehouse.lake_root} is still laid out as before bases; any sync, or `onec-etl check`"
                f" without --no-repair, moves it to {root} (a rename, nothing rewritten)"
            )
        with warehouse.reader() as con:
            partitions, differences = compare_lake(con, root, delta)
        return LakeCheck(partitions, differences, repaired=False, remaining=differences, litter_removed=0)
    with warehouse.writer() as con:
        warehouse.adopt_pre_bases_lake()
        litter = lake.remove_litter(root) if delta is None else []
        con.execute(lake_mirror.PENDING_DDL)
        warehouse.upgrade_history_lake(con)
        partitions, differences = compare_lake(con, root, delta)
        con.begin()
        lake_mirror.record_pending(con, [d.partition for d in differences], REPAIR_RUN_ID)
        con.commit()
        lake_mirror.complete_pending(con, root, delta)
        remaining = compare_lake(con, root, delta)[1] if differences else ()
    return LakeCheck(
        partitions, differences, repaired=bool(differences), remaining=remaining, litter_removed=len(litter)
    )


def compare_lake(
    con: duckdb.DuckDBPyConnection, root: Path, delta: DeltaTarget | None = None
) -> tuple[int, tuple[LakeDifference, ...]]:
    """(partitions compared, those that differ), over every table of LAKE_TABLES: with the Parquet files under
    `root`, or with the base's partitions of the Delta lake of `delta`."""
    compared = 0
    differences: list[LakeDifference] = []
    for table in LAKE_TABLES.values():
        digest = _row_digest(con, table)
        in_warehouse = _warehouse_contents(con, table, digest)
        if delta is None:
            in_lake, unreadable = _lake_contents(con, table, digest, root)
        else:
            in_lake, unreadable = _delta_contents(con, table, digest, delta), {}
        keys = sorted({*in_warehouse, *in_lake, *unreadable}, key=lambda p: p.sort_key)
        compared += len(keys)
        for key in keys:
            ours, theirs = in_warehouse.get(key), in_lake.get(key)
            if key in unreadable or ours != theirs:
                differences.append(LakeDifference(key, ours, theirs, unreadable.get(key)))
    return compared, tuple(differences)


def _row_digest(con: duckdb.DuckDBPyConnection, table: LakeTable) -> str:
    """The per-row hash both sides are summed by: every column a lake file holds, cast to the warehouse's type (so
    a file whose types drifted is read as the values it holds, and one missing a column fails to read)."""
    columns = lake_mirror.lake_columns(con, table)
    return f"hash({', '.join(f'CAST({name} AS {kind})' for name, kind in columns)})"


def _warehouse_contents(
    con: duckdb.DuckDBPyConnection, table: LakeTable, digest: str
) -> dict[LakePartition, PartitionContent]:
    return _grouped_contents(con, table, digest, table.name, table.day_value, "true", [])


def _delta_contents(
    con: duckdb.DuckDBPyConnection, table: LakeTable, digest: str, delta: DeltaTarget
) -> dict[LakePartition, PartitionContent]:
    """The base's partitions of the table's current Delta version, read by DuckDB through its pyarrow dataset."""
    found = delta.lake.table(table.name)
    if found is None:
        return {}
    partitioned_by = found.metadata().partition_columns
    if partitioned_by != [delta_lake.BASE_COLUMN, *table.partition_keys]:
        raise OldPartitioning(
            f"the Delta lake's {table.name} is partitioned by {', '.join(partitioned_by)} (as before it was split by"
            f" {table.day_key}); any sync, or `onec-etl check` without --no-repair, repartitions it"
        )
    view = f"delta_lake_{table.name}"
    con.register(view, found.to_pyarrow_dataset())
    try:
        where = f"{delta_lake.BASE_COLUMN} = ?"
        return _grouped_contents(con, table, digest, view, table.day_key, where, [delta.base])
    finally:
        con.unregister(view)


def _grouped_contents(
    con: duckdb.DuckDBPyConnection,
    table: LakeTable,
    digest: str,
    source: str,
    day: str,
    where: str,
    params: list[str],
) -> dict[LakePartition, PartitionContent]:
    """Rows and checksum per partition of `source`, whose day is the SQL `day` (the warehouse computes a computed
    day; the Delta lake has it as a column, which is what it is partitioned by)."""
    keys = ", ".join([*(["doc_type"] if table.by_doc_type else []), day])
    sql = f"SELECT {keys}, count(*), sum({digest}) FROM {source} WHERE {where} GROUP BY ALL"
    rows = con.execute(sql, params).fetchall()
    contents: dict[LakePartition, PartitionContent] = {}
    for *values, count, checksum in rows:
        if count:
            contents[_partition(table, values)] = PartitionContent(int(count), int(checksum))
    return contents


def _lake_contents(
    con: duckdb.DuckDBPyConnection, table: LakeTable, digest: str, root: Path
) -> tuple[dict[LakePartition, PartitionContent], dict[LakePartition, str]]:
    """(content of each readable file, the error of each unreadable one). All files are read in one query; if that
    fails, file by file, so one bad file does not hide the others."""
    files = {str(path): partition for path, partition in _lake_files(table, root)}
    if not files:
        return {}, {}
    try:
        found = _read_files(con, digest, list(files))
        contents = {partition: found.get(path, PartitionContent(0, None)) for path, partition in files.items()}
        return contents, {}
    except duckdb.Error:
        contents, unreadable = {}, {}
        for path, partition in files.items():
            try:
                contents[partition] = _read_files(con, digest, [path]).get(path, PartitionContent(0, None))
            except duckdb.Error as error:
                unreadable[partition] = str(error).splitlines()[0]
        return contents, unreadable


def _read_files(con: duckdb.DuckDBPyConnection, digest: str, paths: list[str]) -> dict[str, PartitionContent]:
    rows = con.execute(
        f"SELECT filename, count(*), sum({digest}) FROM read_parquet(?, filename = true) GROUP BY filename", [paths]
    ).fetchall()
    return {path: PartitionContent(int(count), int(checksum)) for path, count, checksum in rows}


def _lake_files(table: LakeTable, root: Path) -> list[tuple[Path, LakePartition]]:
    """Every file of a table in the lake, with the partition its directory names say it holds (a directory whose
    name is not a partition of this table is not the lake's and is left alone)."""
    pattern = "/".join([*(f"{key}=*" for key in table.partition_keys), lake.FILE_NAME])
    found = []
    for path in sorted((root / table.name).glob(pattern)):
        names = path.relative_to(root / table.name).parts[:-1]
        values = [name.split("=", 1)[1] for name in names]
        try:
            found.append((path, _partition(table, values)))
        except ValueError:
            continue
    return found


def _partition(table: LakeTable, values: Sequence[object]) -> LakePartition:
    """The partition of a table from its key values in partition_keys order (strings parsed, from a path)."""
    doc_type = str(values[0]) if table.by_doc_type else None
    day = values[-1]
    if day == lake.NULL_PARTITION and table.day_expression is not None:
        day = None
    elif isinstance(day, str):
        day = dt.date.fromisoformat(day)
    assert day is None or isinstance(day, dt.date)
    return LakePartition(table.name, doc_type, day)
