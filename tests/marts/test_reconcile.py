"""Reconciliation: consecutive snapshots agree when every movement was extracted; an injected discrepancy is found."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg

from assets.marts import WITHIN_THRESHOLD, build_mart_assets
from onec.marts import build_stock_balance_daily, build_stock_movements
from onec.reconcile import Threshold, reconcile
from onec.sandbox.data import _effects
from pipelines.jobs import sync_partitions
from resources import WarehouseResource
from tests.dagster_bases import day_key, instance_with_bases
from tests.marts.conftest import MONTH_END, LandedMonth

FEB_2 = MONTH_END + timedelta(days=1)
FEB_3 = MONTH_END + timedelta(days=2)


def _agreeing_second_snapshot(month: LandedMonth) -> None:
    """1C posts three documents on 2 February; we extract them and snapshot again."""
    for doc_type in ("goods-receipt", "shipment", "transfer"):
        month.data.insert_document(doc_type, FEB_2)
    month.sync(FEB_2, run_id="run-feb-2")


def _inject_discrepancy(month: LandedMonth) -> dict[tuple[str, str], Decimal]:
    """1C corrects a balance without a document and posts a shipment we never extract; returns what must differ."""
    good = next(g for g in month.data.goods_holdings() if g.bad_kind is None and g.warehouse is not None)
    assert good.warehouse is not None
    month.data.upsert_good(good.sku, good.warehouse, datetime(2026, 2, 3, tzinfo=UTC), {"quantity": good.quantity + 5})
    shipment = month.data.insert_document("shipment", FEB_3)
    month.sync(FEB_3, run_id="run-feb-3", doc_types=())
    expected: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal, {(good.sku, good.warehouse): Decimal(5)})
    for position, quantity in _effects(shipment):
        expected[position] += quantity
    return expected


def test_a_single_snapshot_has_nothing_to_compare(landed_month: LandedMonth) -> None:
    build_stock_movements(landed_month.warehouse)
    summary = reconcile(landed_month.warehouse)
    assert not summary.compared and summary.passed and summary.pairs == 0
    assert "fewer than two" in summary.note


def test_snapshots_explained_by_extracted_movements_agree(landed_month: LandedMonth) -> None:
    _agreeing_second_snapshot(landed_month)
    build_stock_movements(landed_month.warehouse)
    summary = reconcile(landed_month.warehouse)
    moved = landed_month.warehouse.query("SELECT count(*) FROM stock_movements WHERE day = ?", [FEB_2]).item()
    assert moved > 0
    assert summary.compared and summary.snapshot_date == FEB_2 and summary.previous_snapshot_date == MONTH_END
    assert summary.positions == len(landed_month.data.balance_on(FEB_2))
    assert (summary.differing, summary.passed) == (0, True)
    assert landed_month.warehouse.query("SELECT count(*) FROM reconciliation_diffs").item() == 0


def test_an_injected_discrepancy_is_reported(landed_month: LandedMonth) -> None:
    _agreeing_second_snapshot(landed_month)
    expected = _inject_discrepancy(landed_month)
    build_stock_movements(landed_month.warehouse)

    summary = reconcile(landed_month.warehouse)
    assert summary.snapshot_date == FEB_3 and not summary.passed
    rows = landed_month.warehouse.query(
        "SELECT sku, warehouse, difference FROM reconciliation_diffs WHERE snapshot_date = ?", [FEB_3]
    ).rows()
    assert {(sku, wh): diff for sku, wh, diff in rows} == {k: v for k, v in expected.items() if v}
    assert summary.differing == len(rows)
    assert summary.total_abs_difference == sum((abs(v) for v in expected.values()), Decimal(0))
    assert reconcile(landed_month.warehouse, Threshold(max_differing_positions=len(rows))).passed
    tolerant = reconcile(landed_month.warehouse, Threshold(tolerance=Decimal(10_000)))
    assert (tolerant.differing, tolerant.passed) == (0, True)


def test_the_asset_check_fails_on_the_discrepancy_and_the_report_is_linked(landed_month: LandedMonth) -> None:
    _agreeing_second_snapshot(landed_month)
    _inject_discrepancy(landed_month)
    resources = {"warehouse": WarehouseResource.from_settings(landed_month.settings)}

    marts = build_mart_assets(sync_partitions(landed_month.settings))
    result = dg.materialize(
        marts, resources=resources, partition_key=day_key(MONTH_END), instance=instance_with_bases()
    )

    assert result.success
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == WITHIN_THRESHOLD]
    assert not check.passed
    differing = check.metadata["differing_positions"].value
    assert isinstance(differing, int) and differing > 0
    report = result.asset_materializations_for_node("run_report")[0].metadata["report"].value
    assert str(report).startswith(str(landed_month.settings.data_dir / "reports"))
    assert "Reconciliation with 1C" in Path(str(report)).read_text(encoding="utf-8")


def test_negative_1c_stock_flows_through_the_marts_and_reconciles(landed_month: LandedMonth) -> None:
    """1C with stock control off holds positions below zero: the snapshot lands them, the daily balance ends the
    month on them, and the next snapshot reconciles with zero differences."""
    warehouse = landed_month.warehouse
    negative = warehouse.query("SELECT sku, warehouse, quantity FROM goods WHERE quantity < 0 ORDER BY ALL").rows()
    assert negative, "the sandbox month holds negative stock"
    truth = landed_month.data.balance_on(MONTH_END)
    assert all(truth[(sku, wh)] == quantity for sku, wh, quantity in negative)
    build_stock_movements(warehouse)
    build_stock_balance_daily(warehouse)
    month_end = MONTH_END - timedelta(days=1)
    balances = dict(
        warehouse.query(
            "SELECT sku || '|' || warehouse, balance FROM stock_balance_daily WHERE day = ? AND balance < 0",
            [month_end],
        ).rows()
    )
    assert balances == {f"{sku}|{wh}": q for (sku, wh), q in truth.items() if q < 0}
    _agreeing_second_snapshot(landed_month)
    build_stock_movements(warehouse)
    summary = reconcile(warehouse)
    assert (summary.differing, summary.passed) == (0, True)
    assert warehouse.query("SELECT count(*) FROM goods WHERE snapshot_date = ? AND quantity < 0", [FEB_2]).item() > 0
