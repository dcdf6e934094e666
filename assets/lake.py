"""The check that the Parquet lake equals the warehouse, thin over `onec.lake_check`.

Attached to the assets that end a run (the incremental sync; the run report of the full sync), so every run that
landed something compares the two afterwards. It repairs as it checks, like `onec-etl check`: the lake is a copy of
the committed warehouse, so rewriting a partition that differs loses nothing. A lake that had to be repaired still
fails the check, as a warning, so the hole shows in the UI; a lake that still differs after the repair is an error.
"""

import dagster as dg

from assets.bases import tags_base
from onec.lake_check import check_lake
from resources import WarehouseResource, failing_cleanly

LAKE_EQUALS_WAREHOUSE = "lake_equals_warehouse"
DIFFERENCES_SHOWN = 20


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
