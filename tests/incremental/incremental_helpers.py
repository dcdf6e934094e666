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


def new_warehouse(directory: Path) -> Warehouse:
    warehouse = Warehouse(directory, ZONE)
    warehouse.initialize()
    return warehouse


def full_extract(client_for: OpenClient, data: SandboxData, directory: Path) -> Warehouse:
    """What a fresh full extract of the sandbox as it is now lands."""
    warehouse = new_warehouse(directory)
    with client_for() as client:
        extract_all(client, warehouse, date_from=data.start, date_to=data.start + timedelta(days=data.days),
                    snapshot_date=local_today(ZONE), run_id="full", timezone=ZONE)  # fmt: skip
    return warehouse


def assert_same_warehouse(actual: Warehouse, expected: Warehouse) -> None:
    """Documents, lines, today's goods snapshot and rejected records are equal (run ids and times aside)."""
    today = local_today(ZONE)
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


def lake_frame(warehouse: Warehouse, table: str) -> pl.DataFrame:
    return pl.read_parquet(warehouse.lake_dir / table / "**" / "*.parquet", hive_partitioning=True)
