"""Periodic reconciliation: does what we extracted explain how 1C's stock changed?

For each pair of consecutive goods snapshots, per (sku, warehouse):

    computed = previous snapshot quantity + movements dated in [previous as-of, as-of)
    difference = reported (this snapshot's quantity) − computed

A non-zero difference means a document we hold differs from 1C's (edited or re-posted after we extracted it, a
day never extracted, a rejected row) or 1C changed stock without a document (an opening-balance correction).
Snapshot as-of instants are the marts' (`onec.marts.create_snapshot_instants`). Differences of every pair are kept
in `reconciliation_diffs` (rebuilt whole, in one transaction); the latest pair decides pass or fail.
"""

# ruff: noqa: S608 — SQL text is built only from the fixed identifiers of this module; values are bound parameters.

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from onec.marts import MOVEMENTS, MartError, create_snapshot_instants, ensure_table, marts_lake_dir, write_partitioned
from onec.warehouse import Warehouse

RECONCILIATION_DIFFS = "reconciliation_diffs"
DIFFS_COLUMNS = {
    "snapshot_date": "DATE",
    "previous_snapshot_date": "DATE",
    "sku": "VARCHAR",
    "warehouse": "VARCHAR",
    "reported_quantity": "DECIMAL(18, 3)",
    "computed_quantity": "DECIMAL(18, 3)",
    "difference": "DECIMAL(18, 3)",
}
LARGEST_SHOWN = 10
BY_SNAPSHOT = ("snapshot_date", "strftime(snapshot_date, '%Y-%m-%d')")


@dataclass(frozen=True)
class Threshold:
    """A position differs when |difference| > `tolerance`; the check fails when more than `max_differing_positions`
    positions differ in the latest pair."""

    tolerance: Decimal = Decimal("0")
    max_differing_positions: int = 0


@dataclass(frozen=True)
class Difference:
    sku: str
    warehouse: str
    reported: Decimal
    computed: Decimal
    difference: Decimal


@dataclass(frozen=True)
class ReconciliationSummary:
    """The latest pair's result. With fewer than two snapshots there is nothing to compare: `compared` is False and
    the result passes (said so in `note`)."""

    snapshot_date: dt.date | None
    previous_snapshot_date: dt.date | None
    positions: int
    differing: int
    total_abs_difference: Decimal
    largest: tuple[Difference, ...]
    threshold: Threshold
    pairs: int
    lake_path: Path

    @property
    def compared(self) -> bool:
        return self.previous_snapshot_date is not None

    @property
    def passed(self) -> bool:
        return self.differing <= self.threshold.max_differing_positions

    @property
    def note(self) -> str:
        if not self.compared:
            return "fewer than two goods snapshots: nothing to reconcile yet"
        return (
            f"{self.differing} of {self.positions} positions differ between 1C's snapshot of {self.snapshot_date} and "
            f"the snapshot of {self.previous_snapshot_date} rolled forward by the extracted movements"
        )

    def as_metadata(self) -> dict[str, Any]:
        """Flat figures for Dagster metadata (dates as ISO text, decimals as text so nothing is rounded)."""
        return {
            "snapshot_date": self.snapshot_date.isoformat() if self.snapshot_date else "",
            "previous_snapshot_date": self.previous_snapshot_date.isoformat() if self.previous_snapshot_date else "",
            "positions": self.positions,
            "differing_positions": self.differing,
            "total_abs_difference": str(self.total_abs_difference),
            "tolerance": str(self.threshold.tolerance),
            "max_differing_positions": self.threshold.max_differing_positions,
            "snapshot_pairs": self.pairs,
        }


def reconcile(warehouse: Warehouse, threshold: Threshold | None = None) -> ReconciliationSummary:
    """Rebuild `reconciliation_diffs` (and its lake copy) and summarise the latest snapshot pair."""
    threshold = threshold or Threshold()
    if threshold.tolerance < 0 or threshold.max_differing_positions < 0:
        raise ValueError("reconciliation tolerance and max_differing_positions must be >= 0")
    with warehouse.writer() as con:
        if not _table_exists(con, MOVEMENTS):
            raise MartError(f"build {MOVEMENTS} before reconciling (it is what the snapshots are rolled by)")
        ensure_table(con, RECONCILIATION_DIFFS, DIFFS_COLUMNS)
        _compare(con)
        con.begin()
        try:
            con.execute(f"DELETE FROM {RECONCILIATION_DIFFS}")
            con.execute(
                f"INSERT INTO {RECONCILIATION_DIFFS} SELECT * FROM s_reconciled WHERE abs(difference) > ?",
                [threshold.tolerance],
            )
        except BaseException:
            con.rollback()
            raise
        con.commit()
        directory = marts_lake_dir(warehouse) / RECONCILIATION_DIFFS
        write_partitioned(con, RECONCILIATION_DIFFS, "sku, warehouse", directory, BY_SNAPSHOT)
        return _summary(con, threshold, directory)


def _compare(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `s_reconciled`: every position of every consecutive snapshot pair, reported vs computed."""
    create_snapshot_instants(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE s_pairs AS SELECT * FROM ("
        " SELECT snapshot_date, as_of, lag(snapshot_date) OVER w AS previous, lag(as_of) OVER w AS previous_as_of"
        " FROM snapshot_as_of WINDOW w AS (ORDER BY snapshot_date)) WHERE previous IS NOT NULL"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE s_reconciled AS"
        " WITH reported AS (SELECT p.snapshot_date, g.sku, g.warehouse, g.quantity"
        "  FROM s_pairs p JOIN goods g ON g.snapshot_date = p.snapshot_date WHERE g.warehouse IS NOT NULL),"
        " earlier AS (SELECT p.snapshot_date, g.sku, g.warehouse, g.quantity"
        "  FROM s_pairs p JOIN goods g ON g.snapshot_date = p.previous WHERE g.warehouse IS NOT NULL),"
        " moved AS (SELECT p.snapshot_date, m.sku, m.warehouse, sum(m.quantity) AS quantity"
        f"  FROM s_pairs p JOIN {MOVEMENTS} m ON m.date >= p.previous_as_of AND m.date < p.as_of GROUP BY ALL),"
        " positions AS (SELECT snapshot_date, sku, warehouse FROM reported"
        "  UNION SELECT snapshot_date, sku, warehouse FROM earlier"
        "  UNION SELECT snapshot_date, sku, warehouse FROM moved)"
        " SELECT k.snapshot_date, p.previous AS previous_snapshot_date, k.sku, k.warehouse,"
        "  CAST(coalesce(r.quantity, 0) AS DECIMAL(18, 3)) AS reported_quantity,"
        "  CAST(coalesce(e.quantity, 0) + coalesce(m.quantity, 0) AS DECIMAL(18, 3)) AS computed_quantity,"
        "  CAST(reported_quantity - computed_quantity AS DECIMAL(18, 3)) AS difference"
        " FROM positions k JOIN s_pairs p USING (snapshot_date)"
        " LEFT JOIN reported r USING (snapshot_date, sku, warehouse)"
        " LEFT JOIN earlier e USING (snapshot_date, sku, warehouse)"
        " LEFT JOIN moved m USING (snapshot_date, sku, warehouse)"
    )


def _summary(con: duckdb.DuckDBPyConnection, threshold: Threshold, directory: Path) -> ReconciliationSummary:
    latest = con.execute("SELECT snapshot_date, previous FROM s_pairs ORDER BY snapshot_date DESC LIMIT 1").fetchone()
    latest_snapshot = con.execute("SELECT max(snapshot_date) FROM goods").fetchone()
    pairs = con.execute("SELECT count(*) FROM s_pairs").fetchone()
    if latest is None:
        snapshot = latest_snapshot[0] if latest_snapshot else None
        return ReconciliationSummary(snapshot, None, 0, 0, Decimal("0"), (), threshold, 0, directory)
    snapshot, previous = latest
    counts = con.execute(
        "SELECT count(*), count(*) FILTER (abs(difference) > $tolerance),"
        " coalesce(sum(abs(difference)) FILTER (abs(difference) > $tolerance), 0)"
        " FROM s_reconciled WHERE snapshot_date = $snapshot",
        {"tolerance": threshold.tolerance, "snapshot": snapshot},
    ).fetchone()
    assert counts is not None
    largest = con.execute(
        f"SELECT sku, warehouse, reported_quantity, computed_quantity, difference FROM {RECONCILIATION_DIFFS}"
        " WHERE snapshot_date = ? ORDER BY abs(difference) DESC, sku, warehouse LIMIT ?",
        [snapshot, LARGEST_SHOWN],
    ).fetchall()
    return ReconciliationSummary(
        snapshot,
        previous,
        int(counts[0]),
        int(counts[1]),
        Decimal(counts[2]),
        tuple(Difference(*row) for row in largest),
        threshold,
        int(pairs[0]) if pairs else 0,
        directory,
    )


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return bool(row and row[0])
