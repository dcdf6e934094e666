"""Stock marts: what moved (`stock_movements`) and what was in stock at the end of every day (`stock_balance_daily`).

Why built whole in SQL: both are a few set operations over the landed tables, which DuckDB does in seconds even for
millions of lines, and a whole rebuild in one transaction is trivially safe to retry (no state, no cursor).

How a balance is anchored (the one judgement call here). A goods snapshot is 1C's own stock at the moment it was
read. That moment (the snapshot's *as-of instant*) is the start of the goods landing in `load_log`, clamped to the
snapshot's calendar day; with no `load_log` entry it is local midnight at the start of `snapshot_date`, the nightly
02:00 convention ("the balance after every movement dated before snapshot_date"). So a snapshot includes exactly
the movements dated before its as-of instant, and for every position

    balance at the end of day d = snapshot quantity − movements dated before as-of + movements dated on or before d

which rolls the snapshot backwards and forwards over every day that has movements. Days are only as complete as
the documents extracted for them: a day whose documents were never extracted rolls through unchanged.
"""

# ruff: noqa: S608 — SQL text is built only from the fixed identifiers of this module; values are bound parameters.

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from onec import lake
from onec.errors import InputDataError
from onec.lake_views import write_views
from onec.schema import DOCUMENT_TYPES, StockEffect
from onec.warehouse import Warehouse

MARTS_DIR = "marts"
MOVEMENTS = "stock_movements"
BALANCE = "stock_balance_daily"

MOVEMENTS_COLUMNS = {
    "date": "TIMESTAMPTZ",
    "day": "DATE",
    "sku": "VARCHAR",
    "warehouse": "VARCHAR",
    "quantity": "DECIMAL(18, 3)",
    "doc_type": "VARCHAR",
    "number": "VARCHAR",
    "line": "INTEGER",
}
BALANCE_COLUMNS = {
    "day": "DATE",
    "sku": "VARCHAR",
    "warehouse": "VARCHAR",
    "balance": "DECIMAL(18, 3)",
    "net_change": "DECIMAL(18, 3)",
    "anchor_snapshot_date": "DATE",
}


class MartError(InputDataError, ValueError):
    """A mart cannot be built from what the warehouse holds (e.g. no goods snapshot to anchor balances at)."""


@dataclass(frozen=True)
class MartBuild:
    """What one rebuild produced; becomes Dagster metadata."""

    table: str
    rows: int
    first_day: dt.date | None
    last_day: dt.date | None
    anchor_snapshot_date: dt.date | None
    lake_files: int
    lake_path: Path


def build_stock_movements(warehouse: Warehouse) -> MartBuild:
    """Replace `stock_movements`: one row per stock effect of a line of a posted, not deleted document (an empty
    tabular row, with no item, moves nothing).

    The sign and the side come from each type's `StockEffect`: a transfer gives two rows (out of `warehouse`, into
    `warehouse_to`), an inventory none (it moves stock only through the adjustments posted after it).
    """
    with warehouse.writer() as con:
        _in_transaction(con, lambda: _fill_movements(con))
        return _finish(warehouse, con, MOVEMENTS, "date, doc_type, number, line, quantity", None)


def build_stock_balance_daily(warehouse: Warehouse, *, anchor: dt.date | None = None) -> MartBuild:
    """Replace `stock_balance_daily` from `stock_movements`, anchored at the snapshot of `anchor` (default: the
    latest), for every position and every day from the first movement to the later of the last movement and the
    snapshot."""
    with warehouse.writer() as con:
        ensure_table(con, MOVEMENTS, MOVEMENTS_COLUMNS)
        snapshot = anchor or _latest_snapshot(con)
        if snapshot is None:
            raise MartError("no goods snapshot to anchor balances at: land goods first (the `goods` asset)")
        _in_transaction(con, lambda: _fill_balance(con, snapshot))
        return _finish(warehouse, con, BALANCE, "day, sku, warehouse", snapshot)


def create_snapshot_instants(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `snapshot_as_of(snapshot_date, as_of)`: the instant each goods snapshot reflects (see the module
    docstring). Needs the session zone set to the 1C zone, as `Warehouse` connections have it."""
    con.execute("DROP TABLE IF EXISTS snapshot_as_of")
    con.execute(
        "CREATE TEMP TABLE snapshot_as_of AS"
        " WITH taken AS (SELECT range_start AS snapshot_date, max(started_at) AS started_at FROM load_log"
        "  WHERE entity = 'goods' GROUP BY ALL)"
        " SELECT g.snapshot_date,"
        "  least(greatest(coalesce(t.started_at, CAST(g.snapshot_date AS TIMESTAMPTZ)),"
        "   CAST(g.snapshot_date AS TIMESTAMPTZ)), CAST(g.snapshot_date + 1 AS TIMESTAMPTZ)) AS as_of"
        " FROM (SELECT DISTINCT snapshot_date FROM goods) g LEFT JOIN taken t USING (snapshot_date)"
    )


def _fill_movements(con: duckdb.DuckDBPyConnection) -> None:
    ensure_table(con, MOVEMENTS, MOVEMENTS_COLUMNS)
    con.execute("CREATE OR REPLACE TEMP TABLE effect_sides (doc_type VARCHAR, to_side BOOLEAN, sign INTEGER)")
    con.executemany("INSERT INTO effect_sides VALUES (?, ?, ?)", _effect_sides())
    con.execute(f"DELETE FROM {MOVEMENTS}")
    con.execute(
        f"INSERT INTO {MOVEMENTS} SELECT d.date, d.doc_date, l.sku,"
        " CASE WHEN e.to_side THEN d.warehouse_to ELSE d.warehouse END,"
        " CAST(e.sign * l.quantity AS DECIMAL(18, 3)), d.doc_type, d.number, l.line"
        " FROM documents d JOIN document_lines l USING (doc_type, number) JOIN effect_sides e USING (doc_type)"
        " WHERE d.posted AND NOT coalesce(d.deleted, false) AND l.sku IS NOT NULL"
    )


def _effect_sides() -> list[tuple[str, bool, int]]:
    """(doc_type, into warehouse_to?, sign) per row a line of that type produces."""
    sides = {
        StockEffect.INCREASE: [(False, 1)],
        StockEffect.DECREASE: [(False, -1)],
        StockEffect.TRANSFER: [(False, -1), (True, 1)],
        StockEffect.NONE: [],
    }
    return [(t.slug, to_side, sign) for t in DOCUMENT_TYPES for to_side, sign in sides[t.effect]]


def _fill_balance(con: duckdb.DuckDBPyConnection, snapshot: dt.date) -> None:
    ensure_table(con, BALANCE, BALANCE_COLUMNS)
    create_snapshot_instants(con)
    as_of = con.execute("SELECT as_of FROM snapshot_as_of WHERE snapshot_date = ?", [snapshot]).fetchone()
    if as_of is None:
        raise MartError(f"no goods snapshot of {snapshot} in the warehouse")
    bounds = con.execute(f"SELECT min(day), max(day) FROM {MOVEMENTS}").fetchone()
    first = bounds[0] if bounds and bounds[0] else snapshot
    snapshot_day = (as_of[0] - dt.timedelta(microseconds=1)).date()  # the day the as-of instant ends
    last = max(bounds[1] if bounds and bounds[1] else snapshot, snapshot_day)
    con.execute(f"DELETE FROM {BALANCE}")
    con.execute(
        f"INSERT INTO {BALANCE}"
        " WITH anchor AS (SELECT sku, warehouse, quantity FROM goods WHERE snapshot_date = $snapshot"
        "  AND warehouse IS NOT NULL),"
        f" before AS (SELECT sku, warehouse, sum(quantity) AS moved FROM {MOVEMENTS} WHERE date < $as_of"
        "  GROUP BY ALL),"
        f" positions AS (SELECT sku, warehouse FROM anchor UNION SELECT sku, warehouse FROM {MOVEMENTS}),"
        " base AS (SELECT p.sku, p.warehouse, coalesce(a.quantity, 0) - coalesce(b.moved, 0) AS base"
        "  FROM positions p LEFT JOIN anchor a USING (sku, warehouse) LEFT JOIN before b USING (sku, warehouse)),"
        " days AS (SELECT CAST(unnest(generate_series(CAST($first AS TIMESTAMP), CAST($last AS TIMESTAMP),"
        "  INTERVAL 1 DAY)) AS DATE) AS day),"
        f" daily AS (SELECT day, sku, warehouse, sum(quantity) AS net FROM {MOVEMENTS} GROUP BY ALL)"
        " SELECT d.day, b.sku, b.warehouse,"
        "  CAST(b.base + sum(coalesce(m.net, 0)) OVER (PARTITION BY b.sku, b.warehouse ORDER BY d.day)"
        "   AS DECIMAL(18, 3)),"
        "  CAST(coalesce(m.net, 0) AS DECIMAL(18, 3)), $snapshot"
        " FROM base b CROSS JOIN days d"
        " LEFT JOIN daily m ON m.sku = b.sku AND m.warehouse = b.warehouse AND m.day = d.day",
        {"snapshot": snapshot, "as_of": as_of[0], "first": first, "last": last},
    )


def _latest_snapshot(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    row = con.execute("SELECT max(snapshot_date) FROM goods").fetchone()
    return row[0] if row else None


def ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{n} {t}' for n, t in columns.items())})")


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    """Run `work` in one transaction: a failure or a kill leaves the previous version of the mart in place."""
    con.begin()
    try:
        work()
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _finish(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, table: str, order: str, anchor: dt.date | None
) -> MartBuild:
    """Mirror the committed table to the lake by month and regenerate the analysts' views (still under the
    writer lock, so two builds never interleave their files)."""
    directory = marts_lake_dir(warehouse) / table
    files = write_partitioned(con, table, order, directory)
    write_views(warehouse.lake_root)
    row = con.execute(f"SELECT count(*), min(day), max(day) FROM {table}").fetchone()
    assert row is not None
    return MartBuild(table, int(row[0]), row[1], row[2], anchor, files, directory)


def marts_lake_dir(warehouse: Warehouse) -> Path:
    return warehouse.lake_dir / MARTS_DIR


MONTH = ("month", "strftime(day, '%Y-%m')")
"""Marts are hive-partitioned by month: (partition key, the SQL expression giving its value)."""


def write_partitioned(
    con: duckdb.DuckDBPyConnection, table: str, order: str, directory: Path, partition: tuple[str, str] = MONTH
) -> int:
    """Replace the lake copy of a mart table: one file per partition value (each written atomically), and partitions
    that no longer have rows removed. `partition` and `order` come from this package's constants only."""
    key, expression = partition
    values = [row[0] for row in con.execute(f"SELECT DISTINCT {expression} FROM {table}").fetchall()]
    for value in values:
        frame: pl.DataFrame = con.sql(
            f"SELECT * FROM {table} WHERE {expression} = ? ORDER BY {order}", params=[value]
        ).pl()
        lake.write_partition(directory / f"{key}={value}", frame)
    keep = {f"{key}={value}" for value in values}
    if directory.exists():
        for stale in directory.iterdir():
            if stale.is_dir() and stale.name not in keep:
                shutil.rmtree(stale)
    return len(values)
