"""Helpers of the incremental tests: warehouses and the comparison "incremental == full extract"."""

# ruff: noqa: S608 — table names below are test constants.

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from onec.client import OneCClient
from onec.sandbox.data import SandboxData
from onec.sync import extract_all, local_today
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
DAYS = 40

OpenClient = Callable[[], AbstractContextManager[OneCClient]]


def new_warehouse(directory: Path, zone: str = ZONE) -> Warehouse:
    """A warehouse configured with `zone` (the client's ONEC_TIMEZONE, which may not be 1C's)."""
    warehouse = Warehouse(directory, zone)
    warehouse.initialize()
    return warehouse


def full_extract(client_for: OpenClient, data: SandboxData, directory: Path, zone: str = ZONE) -> Warehouse:
    """What a fresh full extract of the sandbox as it is now lands, through a client configured with `zone`."""
    warehouse = new_warehouse(directory, zone)
    with client_for() as client:
        extract_all(client, warehouse, date_from=data.start, date_to=data.start + timedelta(days=data.days),
                    snapshot_date=local_today(zone), run_id="full", timezone=zone)  # fmt: skip
    return warehouse


def assert_same_warehouse(actual: Warehouse, expected: Warehouse, zone: str = ZONE) -> None:
    """Documents, lines, today's goods snapshot and rejected records are equal (run ids and times aside)."""
    today = local_today(zone)
    queries = {
        "documents": "SELECT * FROM documents ORDER BY doc_type, number",
        "lines": "SELECT * FROM document_lines ORDER BY doc_type, number, line",
        "goods": f"SELECT * FROM goods WHERE snapshot_date = '{today.isoformat()}' ORDER BY sku, warehouse",
        "rejected": "SELECT DISTINCT entity, doc_type, record_key, reason FROM rejected_rows ORDER BY ALL",
    }
    for name, sql in queries.items():
        try:
            assert_frame_equal(actual.query(sql), expected.query(sql), check_exact=True)
        except AssertionError as error:
            raise AssertionError(f"{name} differ: {error}") from None
    assert lake_frame(actual, "documents").height == expected.query("SELECT count(*) FROM documents").item()


def assert_history_consistent(warehouse: Warehouse, zone: str = ZONE) -> None:
    """goods_history is one chain per position: each version ends where the next begins, none ends before it
    begins, only the last is open, and the open ones are exactly today's snapshot."""
    broken = warehouse.query(
        "SELECT sku, warehouse, valid_from, valid_to, lead(valid_from) OVER w AS next_from,"
        " row_number() OVER w = count(*) OVER (PARTITION BY sku, warehouse) AS last"
        " FROM goods_history WINDOW w AS (PARTITION BY sku, warehouse ORDER BY valid_from, valid_to NULLS LAST)"
        " QUALIFY (valid_to IS NOT NULL AND valid_to < valid_from)"
        " OR (NOT last AND (valid_to IS NULL OR valid_to != next_from))"
    )
    assert broken.is_empty(), f"goods_history chains broken:\n{broken}"
    open_positions = "SELECT sku, warehouse FROM goods_history WHERE valid_to IS NULL ORDER BY ALL"
    today = local_today(zone).isoformat()
    snapshot = f"SELECT sku, warehouse FROM goods WHERE snapshot_date = '{today}' ORDER BY ALL"
    assert warehouse.query(open_positions).equals(warehouse.query(snapshot))


def lake_frame(warehouse: Warehouse, table: str) -> pl.DataFrame:
    return pl.read_parquet(warehouse.lake_dir / table / "**" / "*.parquet", hive_partitioning=True)
