"""What analysts read after a landing: the marts, the reconciliation with 1C, `lake/views.sql` and the run report.

The Dagster job builds these as assets of their own; a command-line sync builds them here, in the same order, so a
user who never opens Dagster gets the same warehouse the documentation describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from onec.lake_views import VIEWS_FILE
from onec.marts import MartBuild, build_stock_balance_daily, build_stock_movements
from onec.reconcile import ReconciliationSummary, reconcile
from onec.report import write_run_report
from onec.warehouse import Warehouse


@dataclass(frozen=True)
class AnalystOutputs:
    marts: tuple[MartBuild, ...]
    reconciliation: ReconciliationSummary
    views: Path
    report: Path


def build_analyst_outputs(warehouse: Warehouse, run_id: str) -> AnalystOutputs:
    """Rebuild the marts over everything landed so far, reconcile with 1C's snapshots, write the run's report."""
    movements = build_stock_movements(warehouse)
    balances = build_stock_balance_daily(warehouse)
    reconciliation = reconcile(warehouse)
    report = write_run_report(warehouse, run_id)
    return AnalystOutputs((movements, balances), reconciliation, warehouse.lake_root / VIEWS_FILE, report)
