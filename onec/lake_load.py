"""Build the DuckDB warehouse from the Delta lake: the one step that turns what many workers wrote into the tables
(and, after it, the marts) analysts query.

Why this direction with several workers: each worker lands its bases in a warehouse of its own and mirrors them to
the shared Delta lake, which is then the system of record; DuckDB allows one writer, so exactly one step (a pool of
one in Dagster) loads the lake into the shared warehouse. On one machine nothing changes: the warehouse is landed
first and mirrors to the lake (`lake_pending`).

Why by partition: the step compares each partition's data files in the lake's current version (its add actions)
with those it loaded last time (`lake_loaded`) and reloads only the partitions whose files changed, plus removes
those gone from the lake; a night that rewrote a few days of a few bases costs those days, not the whole history.
Every change is one DuckDB transaction with the new `lake_loaded` rows, so a killed build is redone whole.
"""

# ruff: noqa: S608 — SQL text is built only from the fixed identifiers of LAKE_TABLES and column names read from
# DuckDB's own catalog; every value is a bound parameter.

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from onec.config import SHARED_DIR
from onec.delta_lake import BASE_COLUMN, DeltaLake, Partitions
from onec.errors import UsageError
from onec.lake_mirror import LAKE_TABLES, LakeTable, days_filter, days_params
from onec.warehouse import Warehouse, scalar

LOADED_TABLE = "lake_loaded"
LOADED_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LOADED_TABLE} (lake_table VARCHAR NOT NULL, base VARCHAR NOT NULL,"
    " doc_type VARCHAR, partition_date DATE, files VARCHAR NOT NULL, loaded_at TIMESTAMPTZ)"
)
"""One row per lake partition held in the warehouse: `files`, a digest of the partition's data file names in the
version loaded (Delta never rewrites a file in place, so the same names are the same rows)."""


class LakeLoadError(UsageError):
    """The lake cannot be loaded into this warehouse as it is (e.g. several bases, tables without a base column)."""


PartitionKey = tuple[str, str | None, dt.date | None]
"""(base, doc_type or None, day or None) of one lake partition."""


@dataclass(frozen=True)
class LakeLoad:
    """What a build did: partitions reloaded and removed, rows inserted, per table."""

    reloaded: dict[str, int]
    removed: dict[str, int]
    rows: dict[str, int]

    @property
    def changed(self) -> bool:
        return any(self.reloaded.values()) or any(self.removed.values())


def build_warehouse_from_lake(warehouse: Warehouse, lake: DeltaLake) -> LakeLoad:
    """Bring the warehouse's landed tables level with the Delta lake's current versions, partition by partition, in
    one transaction under the warehouse's writer lock. The first time the lake holds several bases the tables get a
    `base` column (`_keep_bases_apart`); a warehouse that lands a base itself is then refused (LakeLoadError) before
    anything changes."""
    warehouse.initialize()
    reloaded: dict[str, int] = {}
    removed: dict[str, int] = {}
    rows: dict[str, int] = {}
    with warehouse.writer() as con:
        con.execute(LOADED_DDL)
        versions = {table: lake.table(table.name) for table in LAKE_TABLES.values()}
        in_lake = {table: _lake_partitions(table, found) for table, found in versions.items()}
        con.begin()
        try:
            _keep_bases_apart(con, {key[0] for partitions in in_lake.values() for key in partitions}, warehouse)
            for table, found in versions.items():
                changed, gone = _plan(con, table, in_lake[table])
                has_base = BASE_COLUMN in _columns(con, table)
                _delete_partitions(con, table, [*changed, *gone], has_base)
                rows[table.name] = _insert(con, table, found, list(changed), has_base) if changed else 0
                _record_loaded(con, table, changed, gone)
                reloaded[table.name], removed[table.name] = len(changed), len(gone)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return LakeLoad(reloaded, removed, rows)


def _keep_bases_apart(con: duckdb.DuckDBPyConnection, bases: set[str], warehouse: Warehouse) -> None:
    """Give every landed table a `base` column once the lake holds several bases (the rows already loaded are all of
    the one base `lake_loaded` names). Not in a warehouse that lands a base itself (its `load_log` has rows): its
    landings write those tables as they are, so it must stay one base's; LakeLoadError, nothing changed."""
    missing = [table.name for table in LAKE_TABLES.values() if BASE_COLUMN not in _columns(con, table)]
    if len(bases) < 2 or not missing:
        return
    if scalar(con, "SELECT count(*) FROM load_log"):
        raise LakeLoadError(
            f"the lake holds bases {', '.join(sorted(bases))}, but the warehouse {warehouse.database} lands a base"
            " itself and cannot keep them apart: load the lake into a warehouse no base lands into (with several bases"
            f" configured, the Dagster step warehouse_from_lake uses <ONEC_DATA_DIR>/{SHARED_DIR}); nothing loaded"
        )
    loaded = [base for (base,) in con.execute(f"SELECT DISTINCT base FROM {LOADED_TABLE}").fetchall()]
    for name in missing:
        con.execute(f"ALTER TABLE {name} ADD COLUMN {BASE_COLUMN} VARCHAR")
        if scalar(con, f"SELECT count(*) FROM {name}"):
            if len(loaded) != 1:
                raise LakeLoadError(f"{name} holds rows of no single base this warehouse loaded; nothing loaded")
            con.execute(f"UPDATE {name} SET {BASE_COLUMN} = ?", loaded)


def _plan(
    con: duckdb.DuckDBPyConnection, table: LakeTable, in_lake: dict[PartitionKey, str]
) -> tuple[dict[PartitionKey, str], list[PartitionKey]]:
    """(partitions whose files differ from those loaded → their digest, partitions loaded but gone from the lake)."""
    loaded = {
        (base, doc_type, day): files
        for base, doc_type, day, files in con.execute(
            f"SELECT base, doc_type, partition_date, files FROM {LOADED_TABLE} WHERE lake_table = ?", [table.name]
        ).fetchall()
    }
    changed = {key: files for key, files in in_lake.items() if loaded.get(key) != files}
    gone = [key for key in loaded if key not in in_lake]
    return changed, gone


def _lake_partitions(table: LakeTable, found: DeltaTable | None) -> dict[PartitionKey, str]:
    """Each partition of the table's version with the digest of its data file names."""
    if found is None:
        return {}
    partitioned_by = found.metadata().partition_columns
    if partitioned_by != _partition_columns(table):
        raise LakeLoadError(
            f"the lake's {table.name} is partitioned by {', '.join(partitioned_by)}, not by"
            f" {', '.join(_partition_columns(table))} (a lake written before goods_history was split by closed month):"
            " initialize any worker of it, or run `onec-etl check`, which repartitions it; nothing loaded"
        )
    actions = pa.table(found.get_add_actions(flatten=True))
    files: dict[PartitionKey, list[str]] = defaultdict(list)
    columns = {name: actions.column(f"partition.{name}").to_pylist() for name in _partition_columns(table)}
    for index, path in enumerate(actions.column("path").to_pylist()):
        base = columns[BASE_COLUMN][index]
        doc_type = columns["doc_type"][index] if table.by_doc_type else None
        day = columns[table.day_key][index]
        files[(base, doc_type, day)].append(path)
    return {key: hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest() for key, paths in files.items()}


def _partition_columns(table: LakeTable) -> list[str]:
    return [BASE_COLUMN, *table.partition_keys]


def _columns(con: duckdb.DuckDBPyConnection, table: LakeTable) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [table.name],
        ).fetchall()
    ]


def _groups(keys: Sequence[PartitionKey]) -> dict[tuple[str, str | None], list[dt.date | None]]:
    """Partition keys by (base, doc_type), each with its days (None: goods_history's open versions)."""
    groups: dict[tuple[str, str | None], list[dt.date | None]] = defaultdict(list)
    for base, doc_type, day in keys:
        groups[(base, doc_type)].append(day)
    return groups


def _delete_partitions(
    con: duckdb.DuckDBPyConnection, table: LakeTable, keys: Sequence[PartitionKey], has_base: bool
) -> None:
    for (base, doc_type), days in _groups(keys).items():
        terms: list[str] = ["true"]
        params: list[object] = []
        if has_base:
            terms.append(f"{BASE_COLUMN} = ?")
            params.append(base)
        if table.by_doc_type:
            terms.append("doc_type = ?")
            params.append(doc_type)
        terms.append(days_filter(table.day_value))
        params.extend(days_params(days))
        con.execute(f"DELETE FROM {table.name} WHERE {' AND '.join(terms)}", params)


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: LakeTable,
    found: DeltaTable | None,
    keys: Sequence[PartitionKey],
    has_base: bool,
) -> int:
    """Insert the rows of `keys` from the version planned, reading only their files (grouped by base and type: the
    predicate a writer replaces them by prunes the dataset's files)."""
    assert found is not None
    columns = ", ".join(name for name in _columns(con, table) if name != BASE_COLUMN or has_base)
    inserted = 0
    for (base, doc_type), days in _groups(keys).items():
        partitions = Partitions(base, doc_type, table.day_key, tuple(days))
        con.register("lake_partitions", found.to_pyarrow_dataset(file_pruning_predicate=partitions.predicate()))
        try:
            inserted += scalar(con, f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM lake_partitions")
        finally:
            con.unregister("lake_partitions")
    return inserted


def _record_loaded(
    con: duckdb.DuckDBPyConnection, table: LakeTable, changed: dict[PartitionKey, str], gone: list[PartitionKey]
) -> None:
    for base, doc_type, day in [*changed, *gone]:
        con.execute(
            f"DELETE FROM {LOADED_TABLE} WHERE lake_table = ? AND base = ? AND doc_type IS NOT DISTINCT FROM ?"
            " AND partition_date IS NOT DISTINCT FROM ?",
            [table.name, base, doc_type, day],
        )
    for (base, doc_type, day), files in changed.items():
        con.execute(
            f"INSERT INTO {LOADED_TABLE} VALUES (?, ?, ?, ?, ?, now())", [table.name, base, doc_type, day, files]
        )
