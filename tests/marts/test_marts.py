"""Stock marts against the sandbox's own ledger: movements, daily balances, the lake copy and the analysts' views."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from onec.marts import MartError, build_stock_balance_daily, build_stock_movements
from onec.sandbox.data import _effects
from onec.schema import DOCUMENT_SLUGS
from onec.warehouse import Warehouse
from tests.marts.conftest import MONTH_DAYS, MONTH_START, LandedMonth


def test_movements_are_the_stock_effects_of_posted_documents(landed_month: LandedMonth) -> None:
    build = build_stock_movements(landed_month.warehouse)
    expected = sorted(
        (doc.doc_type, doc.number, sku, warehouse, quantity)
        for slug in DOCUMENT_SLUGS
        for doc in landed_month.data.documents_holdings(slug)
        for (sku, warehouse), quantity in _effects(doc)
    )
    got = landed_month.warehouse.query(
        "SELECT doc_type, number, sku, warehouse, quantity FROM stock_movements ORDER BY ALL"
    ).rows()
    assert got == expected
    assert build.rows == len(expected)
    transfers = landed_month.warehouse.query(
        "SELECT count(*) FILTER (quantity < 0) = count(*) FILTER (quantity > 0) FROM stock_movements"
        " WHERE doc_type = 'transfer'"
    ).item()
    assert transfers is True
    assert landed_month.warehouse.query("SELECT count(*) FROM stock_movements WHERE doc_type = 'inventory'").item() == 0


def test_daily_balances_equal_the_sandbox_ledger_on_every_day(landed_month: LandedMonth) -> None:
    build_stock_movements(landed_month.warehouse)
    build = build_stock_balance_daily(landed_month.warehouse)
    assert build.first_day == MONTH_START
    for offset in range(MONTH_DAYS):
        day = MONTH_START + timedelta(days=offset)
        rows = landed_month.warehouse.query(
            "SELECT sku, warehouse, balance FROM stock_balance_daily WHERE day = ?", [day]
        ).rows()
        assert {(sku, wh): balance for sku, wh, balance in rows} == landed_month.data.balance_on(day), day


def test_an_earlier_anchor_gives_the_same_balances(landed_month: LandedMonth) -> None:
    """A mid-month snapshot with no load_log entry counts as taken at local midnight starting its day (the nightly
    convention), so it holds the balance at the end of the day before; it rolls forwards as well as backwards."""
    day = MONTH_START + timedelta(days=15)
    balance = landed_month.data.balance_on(day - timedelta(days=1))
    with landed_month.warehouse.writer() as con:
        con.executemany(
            "INSERT INTO goods (sku, warehouse, name, quantity, snapshot_date) VALUES (?, ?, 'x', ?, ?)",
            [(sku, wh, quantity, day) for (sku, wh), quantity in balance.items()],
        )
    build_stock_movements(landed_month.warehouse)
    build_stock_balance_daily(landed_month.warehouse, anchor=day)
    for offset in (0, 10, 20, MONTH_DAYS - 1):
        other = MONTH_START + timedelta(days=offset)
        rows = landed_month.warehouse.query(
            "SELECT sku, warehouse, balance FROM stock_balance_daily WHERE day = ?", [other]
        ).rows()
        assert {(sku, wh): q for sku, wh, q in rows} == landed_month.data.balance_on(other), other


def test_rebuilding_replaces_and_the_lake_matches_the_tables(landed_month: LandedMonth) -> None:
    warehouse = landed_month.warehouse
    for _ in range(2):
        build_stock_movements(warehouse)
        build = build_stock_balance_daily(warehouse)
    table = warehouse.query("SELECT count(*) FROM stock_balance_daily").item()
    assert build.rows == table
    lake = pl.scan_parquet(build.lake_path / "**" / "*.parquet", hive_partitioning=True).collect()
    assert lake.height == table
    assert lake["balance"].dtype == pl.Decimal(18, 3)
    assert sorted(p.name for p in build.lake_path.iterdir()) == ["month=2026-01", "month=2026-02"]


def test_views_sql_needs_nothing_but_duckdb(landed_month: LandedMonth, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = landed_month.warehouse
    build_stock_movements(warehouse)
    build_stock_balance_daily(warehouse)
    monkeypatch.chdir(warehouse.lake_root)
    analyst = duckdb.connect()
    analyst.execute(Path("views.sql").read_text(encoding="utf-8"))
    for table in ("goods", "documents", "document_lines", "stock_movements", "stock_balance_daily"):
        in_lake = analyst.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        assert in_lake == (warehouse.query(f"SELECT count(*) FROM {table}").item(),), table  # noqa: S608
    row = analyst.execute("SELECT sum(balance) FROM stock_balance_daily WHERE day = DATE '2026-01-15'").fetchone()
    expected = sum(landed_month.data.balance_on(MONTH_START + timedelta(days=14)).values(), Decimal(0))
    assert row == (expected,)


def test_balances_need_a_goods_snapshot(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path, "Europe/Moscow")
    warehouse.initialize()
    build_stock_movements(warehouse)
    with pytest.raises(MartError, match="no goods snapshot"):
        build_stock_balance_daily(warehouse)
