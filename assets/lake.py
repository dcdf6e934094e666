"""The check that the lake equals the warehouse, thin over `onec.lake_check`, and (with ONEC_LAKE_FORMAT=delta) the
step that builds the shared warehouse from the Delta lake, thin over `onec.lake_load`.

Attached to the assets that end a run (the incremental sync; the run report of the full sync), so every run that
landed something compares the two afterwards. It repairs as it checks, like `onec-etl check`: the lake is a copy of
the committed warehouse, so rewriting a partition that differs loses nothing. A lake that had to be repaired still
fails the check, as a warning, so the hole shows in the UI; a lake that still differs after the repair is an error.
"""

import dagster as dg

from assets.bases import tags_base
from onec import delta_lake
from onec.errors import UsageError
from onec.lake_check import check_lake
from onec.lake_load import build_warehouse_from_lake
from resources import WarehouseResource, failing_cleanly

LAKE_EQUALS_WAREHOUSE = "lake_equals_warehouse"
DIFFERENCES_SHOWN = 20
WAREHOUSE_FROM_LAKE = dg.AssetKey("warehouse_from_lake")
WAREHOUSE_BUILD_POOL = "warehouse_build"
"""DuckDB has one writer: the step that loads the lake into the shared warehouse runs alone (dagster.yaml's
`default_limit: 1` applies to this pool as to `onec_api`)."""


@dg.asset(
    key=WAREHOUSE_FROM_LAKE,
    group_name="onec_lake",
    pool=WAREHOUSE_BUILD_POOL,
    kinds={"duckdb", "delta"},
    description=(
        "The shared warehouse's landed tables brought level with the Delta lake (the system of record when several"
        " workers land bases): only partitions whose files changed are reloaded, in one transaction."
    ),
)
@failing_cleanly
def warehouse_from_lake(warehouse: WarehouseResource) -> dg.MaterializeResult[None]:
    target = delta_lake.configured_target(warehouse.settings())
    if target is None:
        raise UsageError("warehouse_from_lake loads the Delta lake: set ONEC_LAKE_FORMAT=delta")
    load = build_warehouse_from_lake(warehouse.shared_warehouse(), target.lake)
    return dg.MaterializeResult(
        metadata={
            "partitions_reloaded": sum(load.reloaded.values()),
            "partitions_removed": sum(load.removed.values()),
            "rows_loaded": sum(load.rows.values()),
            **{f"rows_{table}": rows for table, rows in load.rows.items()},
        }
    )


def build_lake_check(asset: dg.AssetKey) -> dg.AssetChecksDefinition:
    """The check on `asset`: it compares the lake of the base its run worked on."""

    @dg.asset_check(
        asset=asset,
        name=LAKE_EQUALS_WAREHOUSE,
        description=(
            "Every lake partition of goods, documents, document_lines and goods_history holds exactly the warehouse's "
            "rows (count and checksum); partitions that differ are rewritten from the warehouse."
        ),
    )
    @failing_cleanly
    def lake_equals_warehouse(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        base = tags_base(context.op_execution_context.run.tags)
        result = check_lake(warehouse.warehouse(base), repair=True)
        shown = "\n".join(f"- {d.describe()}" for d in result.differences[:DIFFERENCES_SHOWN])
        return dg.AssetCheckResult(
            passed=not result.differences,
            severity=dg.AssetCheckSeverity.ERROR if result.remaining else dg.AssetCheckSeverity.WARN,
            metadata={
                "partitions": result.partitions,
                "differing": len(result.differences),
                "repaired": result.repaired,
                "still_differing": len(result.remaining),
                "litter_removed": result.litter_removed,
                "differences": dg.MetadataValue.md(shown or "none"),
            },
        )

    return lake_equals_warehouse
