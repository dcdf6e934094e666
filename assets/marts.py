"""The marts, the reconciliation with 1C and the run report, as assets downstream of the landed tables.

They are unpartitioned and rebuilt whole (seconds, in one transaction each), so they always reflect every document
partition landed so far; the sync job and the nightly run build them after the extraction.
"""

from decimal import Decimal

import dagster as dg

from assets.bases import ONE_RUN_PER_PARTITION, context_base
from assets.documents import document_asset_key
from assets.goods import GOODS
from onec.marts import MartBuild, build_stock_balance_daily, build_stock_movements
from onec.reconcile import Threshold, reconcile
from onec.report import write_run_report
from onec.schema import DOCUMENT_TYPES
from resources import WarehouseResource, failing_cleanly

GROUP = "onec_marts"
STOCK_MOVEMENTS = dg.AssetKey("stock_movements")
STOCK_BALANCE_DAILY = dg.AssetKey("stock_balance_daily")
RECONCILIATION = dg.AssetKey("reconciliation")
RUN_REPORT = dg.AssetKey("run_report")
WITHIN_THRESHOLD = "stock_agrees_with_1c"
DOCUMENT_KEYS = [document_asset_key(t) for t in DOCUMENT_TYPES]


class ReconciliationConfig(dg.Config):
    """How much disagreement with 1C is tolerated before the check fails (set in the launchpad)."""

    tolerance: str = "0"
    max_differing_positions: int = 0


def build_mart_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The marts, reconciliation and report of one base, partitioned base × day like what they are built from (so
    they run in the base's sync job); any day of a base rebuilds them whole from everything that base landed."""

    @dg.asset(
        key=STOCK_MOVEMENTS,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
        kinds={"duckdb", "parquet"},
        deps=DOCUMENT_KEYS,
        description="One row per stock effect of a posted, not deleted document line (transfers: two rows).",
    )
    @failing_cleanly
    def stock_movements(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult[None]:
        return _mart_result(build_stock_movements(warehouse.warehouse(context_base(context))))

    @dg.asset(
        key=STOCK_BALANCE_DAILY,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
        kinds={"duckdb", "parquet"},
        deps=[STOCK_MOVEMENTS, GOODS],
        description="End-of-day balance per sku and warehouse: the latest goods snapshot rolled by stock_movements.",
    )
    @failing_cleanly
    def stock_balance_daily(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult[None]:
        return _mart_result(build_stock_balance_daily(warehouse.warehouse(context_base(context))))

    @dg.asset(
        key=RECONCILIATION,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
        kinds={"duckdb", "parquet"},
        deps=[STOCK_MOVEMENTS, GOODS],
        check_specs=[
            dg.AssetCheckSpec(
                WITHIN_THRESHOLD,
                asset=RECONCILIATION,
                description="1C's latest stock equals the previous snapshot rolled forward by the extracted movements.",
            )
        ],
        description="reconciliation_diffs: per sku and warehouse, 1C's reported stock vs the stock we compute.",
    )
    @failing_cleanly
    def reconciliation(
        context: dg.AssetExecutionContext, config: ReconciliationConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]  # with check specs, dagster loads the asset only if this is the bare class
        threshold = Threshold(Decimal(config.tolerance), config.max_differing_positions)
        summary = reconcile(warehouse.warehouse(context_base(context)), threshold)
        largest = "\n".join(
            f"| {d.sku} | {d.warehouse} | {d.reported} | {d.computed} | {d.difference} |" for d in summary.largest
        )
        table = (
            "| sku | warehouse | 1C | computed | difference |\n|---|---|---|---|---|\n" + largest if largest else "none"
        )
        metadata: dict[str, dg.RawMetadataValue] = {
            **summary.as_metadata(),
            "note": summary.note,
            "largest_differences": dg.MetadataValue.md(table),
            "lake": dg.MetadataValue.path(str(summary.lake_path)),
        }
        return dg.MaterializeResult(
            metadata={"dagster/row_count": summary.differing, **metadata},
            check_results=[
                dg.AssetCheckResult(
                    check_name=WITHIN_THRESHOLD,
                    passed=summary.passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata=metadata,
                )
            ],
        )

    @dg.asset(
        key=RUN_REPORT,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
        kinds={"html"},
        deps=[GOODS, *DOCUMENT_KEYS, STOCK_BALANCE_DAILY, RECONCILIATION],
        description="A self-contained HTML page about the run (rows, rejects, requests, stock trend, reconciliation).",
    )
    @failing_cleanly
    def run_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult[None]:
        path = write_run_report(warehouse.warehouse(context_base(context)), context.run.run_id)
        context.log.info(f"run report written to {path}")
        return dg.MaterializeResult(
            metadata={"report": dg.MetadataValue.path(str(path)), "report_url": dg.MetadataValue.url(path.as_uri())}
        )

    return [stock_movements, stock_balance_daily, reconciliation, run_report]


def _mart_result(build: MartBuild) -> dg.MaterializeResult[None]:
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": build.rows,
            "first_day": build.first_day.isoformat() if build.first_day else "",
            "last_day": build.last_day.isoformat() if build.last_day else "",
            "anchor_snapshot_date": build.anchor_snapshot_date.isoformat() if build.anchor_snapshot_date else "",
            "lake_files": build.lake_files,
            "lake": dg.MetadataValue.path(str(build.lake_path)),
        }
    )
