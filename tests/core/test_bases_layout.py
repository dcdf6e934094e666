"""Every table and lake path carries the base: each base has its own warehouse, the lake has `base=<id>` as its first
hive key, and a data directory from before bases becomes the base `main` without losing or doubling a row."""

# ruff: noqa: S608 — table names below are test constants.

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from onec.lake_check import PreBasesLake, check_lake
from onec.marts import build_stock_balance_daily, build_stock_movements
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, doc, good, land_documents, land_goods
from tests.lake_equality import as_one_history_file, assert_lake_equals_warehouse

TABLES = ("goods", "documents", "document_lines", "goods_history", "stock_movements", "stock_balance_daily")
PRE_BASES_VIEWS = {
    "goods": "goods/*/*.parquet",
    "documents": "documents/*/*/*.parquet",
    "document_lines": "document_lines/*/*/*.parquet",
    "goods_history": "goods_history/*.parquet",  # one file per base, before closed-month partitions
    "stock_movements": "marts/stock_movements/*/*.parquet",
    "stock_balance_daily": "marts/stock_balance_daily/*/*.parquet",
}
"""The views.sql globs of the single-base layout (main before bases), written out here, not taken from the code."""


def _land_a_month(warehouse: Warehouse, numbers: range, quantity: int = 10) -> None:
    warehouse.initialize()
    land_goods(warehouse, [good("PROD-001", 5), good("PROD-002", 3)])
    land_documents(warehouse, [doc(str(n), date=f"2026-01-{n:02d}T10:00:00", qty=quantity) for n in numbers])
    build_stock_movements(warehouse)
    build_stock_balance_daily(warehouse)


def _view_counts(lake_root: Path, where: str = "") -> dict[str, int]:
    """Rows per view of `lake/views.sql`, as an analyst with only DuckDB reads them."""
    cwd = Path.cwd()
    os.chdir(lake_root)
    try:
        analyst = duckdb.connect()
        analyst.execute((lake_root / "views.sql").read_text("utf-8"))
        counts = {}
        for table in TABLES:
            row = analyst.execute(f"SELECT count(*) FROM {table} {where}").fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts
    finally:
        os.chdir(cwd)


def _warehouse_counts(warehouse: Warehouse) -> dict[str, int]:
    return {table: int(warehouse.query(f"SELECT count(*) FROM {table}").item()) for table in TABLES}


def _as_before_bases(warehouse: Warehouse) -> None:
    """The lake as the single-base code left it: each table folder directly under `lake/`, goods_history one file,
    the old views.sql."""
    as_one_history_file(warehouse)
    for folder in sorted(warehouse.lake_dir.iterdir()):
        os.rename(folder, warehouse.lake_root / folder.name)
    warehouse.lake_dir.rmdir()
    views = "".join(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true);\n"
        for view, glob in PRE_BASES_VIEWS.items()
    )
    (warehouse.lake_root / "views.sql").write_text(views, "utf-8")


def test_bases_share_a_data_directory_but_never_a_row(tmp_path: Path) -> None:
    """Two bases landing the same days of the same type: each replace touches its own base only, and the lake views
    hold both, told apart by `base`."""
    data = tmp_path / "data"
    main, shop = Warehouse(data, ZONE), Warehouse(data, ZONE, base="shop")
    _land_a_month(main, range(1, 11))
    _land_a_month(shop, range(1, 5), quantity=2)
    assert main.database == data / "warehouse.duckdb" and shop.database == data / "bases" / "shop" / "warehouse.duckdb"
    assert (main.lake_dir, shop.lake_dir) == (data / "lake" / "base=main", data / "lake" / "base=shop")

    land_documents(shop, [doc("1", date="2026-01-01T10:00:00", qty=2)])  # shop's January is now one document
    assert main.query("SELECT count(*) FROM documents").item() == 10
    assert shop.query("SELECT count(*) FROM documents").item() == 1
    for warehouse in (main, shop):
        assert_lake_equals_warehouse(warehouse)
    build_stock_movements(shop)
    assert _view_counts(data / "lake", "WHERE base = 'main'") == _warehouse_counts(main)
    assert _view_counts(data / "lake", "WHERE base = 'shop'") == _warehouse_counts(shop)


def test_a_data_directory_from_before_bases_becomes_main_without_losing_or_doubling_a_row(tmp_path: Path) -> None:
    data = tmp_path / "data"
    before = Warehouse(data, ZONE)
    _land_a_month(before, range(1, 21))
    expected = _warehouse_counts(before)
    _as_before_bases(before)
    assert _view_counts(data / "lake") == expected  # the old layout, read through its own views

    after = Warehouse(data, ZONE)
    after.initialize()
    assert sorted(p.name for p in (data / "lake").iterdir()) == ["base=main", "views.sql"]
    assert _warehouse_counts(after) == expected
    assert _view_counts(data / "lake") == expected
    assert_lake_equals_warehouse(after)
    assert not check_lake(after, repair=False).differences
    after.initialize()  # once only: a second open finds nothing to move
    assert _view_counts(data / "lake") == expected


def test_files_the_single_base_code_wrote_after_the_move_are_adopted_once(tmp_path: Path) -> None:
    """A version without bases run again on a moved lake writes `lake/documents/…` anew: the files the base lacks are
    moved in, those it has are not doubled, and the lake check settles the rest from the warehouse."""
    data = tmp_path / "data"
    warehouse = Warehouse(data, ZONE)
    _land_a_month(warehouse, range(1, 21))
    expected = _warehouse_counts(warehouse)
    moved_day = warehouse.lake_dir / "documents" / "doc_type=goods-receipt" / "doc_date=2026-01-05"
    written_again = data / "lake" / "documents" / "doc_type=goods-receipt"
    shutil.copytree(moved_day, written_again / moved_day.name)
    shutil.move(warehouse.lake_dir / "documents" / "doc_type=goods-receipt" / "doc_date=2026-01-06", written_again)

    warehouse.initialize()
    assert not (data / "lake" / "documents").exists()
    assert _view_counts(data / "lake") == expected
    assert not check_lake(warehouse, repair=False).differences


def test_the_lake_check_moves_a_lake_from_before_bases_and_a_read_only_one_says_it_must(tmp_path: Path) -> None:
    """Found by running the single-base code's sync and then this code's `check --no-repair` on its data directory:
    the read-only check, which opens no writer, reported every partition missing."""
    data = tmp_path / "data"
    before = Warehouse(data, ZONE)
    _land_a_month(before, range(1, 6))
    _as_before_bases(before)
    with pytest.raises(PreBasesLake, match="still laid out as before bases"):
        check_lake(Warehouse(data, ZONE), repair=False)
    result = check_lake(Warehouse(data, ZONE), repair=True)
    assert not result.differences and result.lake_equals_warehouse
    assert _view_counts(data / "lake") == _warehouse_counts(before)


@pytest.mark.parametrize("base", ["", "Main", "a-b", "../x", "a" * 33])
def test_a_warehouse_refuses_a_base_id_that_is_not_one(tmp_path: Path, base: str) -> None:
    with pytest.raises(ValueError, match="is not a base id"):
        Warehouse(tmp_path, ZONE, base=base)
