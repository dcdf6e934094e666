"""Warehouse == lake, row for row, read the way an analyst reads the lake (Polars, hive partitions from the paths).

Written apart from `onec.lake_mirror` on purpose: the comparison must not share the code's idea of the layout.
"""

# ruff: noqa: S608 — table and column names below are test constants.

from __future__ import annotations

import shutil

import polars as pl
from polars.testing import assert_frame_equal

from onec.warehouse import Warehouse

LAKE_LAYOUT: dict[str, tuple[str, dict[str, pl.DataType], list[str]]] = {
    "goods": ("goods/*/data.parquet", {"snapshot_date": pl.Date()}, ["snapshot_date", "sku", "warehouse"]),
    "documents": (
        "documents/*/*/data.parquet",
        {"doc_type": pl.String(), "doc_date": pl.Date()},
        ["doc_type", "number"],
    ),
    "document_lines": (
        "document_lines/*/*/data.parquet",
        {"doc_type": pl.String(), "doc_date": pl.Date()},
        ["doc_type", "number", "line"],
    ),
    "goods_history": (
        "goods_history/*/data.parquet",
        {"closed_month": pl.Date()},
        ["sku", "warehouse", "valid_from", "valid_to"],
    ),
}
"""Table → (file glob under a base's folder of the lake, hive keys in the directory names, a key to sort rows by)."""
CLOSED_MONTH = pl.col("valid_to").dt.convert_time_zone("UTC").dt.date().dt.truncate("1mo")
"""goods_history's folder: the first day of the UTC month its version closed (null, `__HIVE_DEFAULT_PARTITION__`,
while open)."""


def lake_rows(warehouse: Warehouse, table: str) -> pl.DataFrame | None:
    """Every row of a table's lake copy for the warehouse's base (None: no file at all), read across every base as an
    analyst would (`lake/base=*/…`) and narrowed by the `base` column the paths give."""
    pattern, hive, _ = LAKE_LAYOUT[table]
    files = sorted(warehouse.lake_root.glob(f"base=*/{pattern}"))
    if not files:
        return None
    rows = pl.read_parquet(files, hive_partitioning=True, hive_schema={"base": pl.String(), **hive})
    mine = rows.filter(pl.col("base") == warehouse.base).drop("base")
    return mine if not mine.is_empty() else None


def assert_lake_equals_warehouse(warehouse: Warehouse) -> None:
    """Every landed table's lake copy holds exactly the warehouse's rows, and no temporary file is left."""
    for table, (_, _, key) in LAKE_LAYOUT.items():
        expected = warehouse.query(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        actual = lake_rows(warehouse, table)
        if actual is None:
            assert expected.is_empty(), f"{table}: {expected.height} rows in the warehouse, no lake file"
            continue
        assert actual.height == expected.height, (
            f"{table}: {expected.height} rows in the warehouse, lake {actual.height}"
        )
        assert_frame_equal(actual.select(expected.columns).sort(key, nulls_last=True), expected, check_exact=True)
        assert_in_their_months(table, actual)
    litter = list(warehouse.lake_dir.rglob("*.tmp"))
    assert not litter, f"temporary files left in the lake: {litter[:3]}"


def delta_lake_rows(warehouse: Warehouse, table: str) -> pl.DataFrame | None:
    """Every row of the warehouse's base in a table of its Delta lake, read as an analyst would (`pl.scan_delta`),
    instants shown in the warehouse's zone (Delta stores them in UTC). None: the table was never written."""
    assert warehouse.delta is not None, "the warehouse mirrors to the Parquet lake"
    lake = warehouse.delta.lake
    if lake.table(table) is None:
        return None
    rows = lake.scan(table).filter(pl.col("base") == warehouse.delta.base).collect()
    instants = [name for name, kind in rows.schema.items() if isinstance(kind, pl.Datetime) and kind.time_zone]
    return rows.with_columns(pl.col(instants).dt.convert_time_zone(warehouse.timezone))


def assert_delta_lake_equals_warehouse(warehouse: Warehouse) -> None:
    """Every landed table's Delta copy (the warehouse's base) holds exactly the warehouse's rows."""
    for table, (_, _, key) in LAKE_LAYOUT.items():
        expected = warehouse.query(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        actual = delta_lake_rows(warehouse, table)
        if actual is None:
            assert expected.is_empty(), f"{table}: {expected.height} rows in the warehouse, no Delta table"
            continue
        assert actual.height == expected.height, (
            f"{table}: {expected.height} rows in the warehouse, lake {actual.height}"
        )
        assert_frame_equal(actual.select(expected.columns).sort(key, nulls_last=True), expected, check_exact=True)
        assert_in_their_months(table, actual)


def assert_in_their_months(table: str, rows: pl.DataFrame) -> None:
    """goods_history's rows are in the partition of the UTC month their version closed (open: the null one)."""
    if table != "goods_history":
        return
    misplaced = rows.filter(pl.col("closed_month").ne_missing(CLOSED_MONTH))
    assert misplaced.is_empty(), f"goods_history rows in another month's partition than valid_to's:\n{misplaced}"


def as_one_history_file(warehouse: Warehouse) -> None:
    """The base's goods_history as versions before closed-month partitions left it: one file of every row,
    `goods_history/data.parquet`, written from the warehouse as they wrote it."""
    folder = warehouse.lake_dir / "goods_history"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = warehouse.query("SELECT * FROM goods_history ORDER BY sku, warehouse, valid_from")
    rows.write_parquet(folder / "data.parquet", compression="zstd")
