"""Incremental sync as one asset: every entity's changes since its cursor, merged into the warehouse.

The same `goods`, `documents` and `document_lines` tables the partitioned assets fill; those stay the way to run a
full refresh or a date-range backfill (they do not touch the cursors). Runs come from the `onec_incremental`
schedule and from the webhook sensor, which names the entities a burst of events touched.
"""

import dagster as dg
from pydantic import Field

from assets.bases import BASES, context_base
from onec.incremental import ENTITIES, check_entities, run_warnings, sync_changes
from resources import OneCResource, WarehouseResource, failing_cleanly

INCREMENTAL_SYNC = dg.AssetKey("incremental_sync")


def incremental_run_config(entities: list[str]) -> dict[str, object]:
    """Run config that limits a run to some entities (the webhook sensor's runs)."""
    return {"ops": {"incremental_sync": {"config": {"entities": entities}}}}


class IncrementalSyncConfig(dg.Config):
    """`entities`: goods and/or document type slugs; empty means all of them."""

    entities: list[str] = Field(default_factory=list)


@dg.asset(
    key=INCREMENTAL_SYNC,
    group_name="onec_incremental",
    kinds={"duckdb", "parquet"},
    pool="onec_api",
    partitions_def=BASES,
    description=(
        "One base's changes since each entity's cursor (modified_since = cursor − overlap, no upper bound), merged by "
        "key into goods (today's snapshot + goods_history), documents and document_lines; each cursor is the newest "
        "modified_at 1C stamped (less the read's duration, never past 1C's own clock), saved in the same transaction "
        "as the rows. Stamps that disagree with 1C's clock or ONEC_TIMEZONE are a warning in the metadata."
    ),
)
@failing_cleanly
def incremental_sync(
    context: dg.AssetExecutionContext,
    config: IncrementalSyncConfig,
    onec: OneCResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult[None]:
    base = context_base(context)
    store = warehouse.warehouse(base)
    entities = check_entities(config.entities or ENTITIES)
    settings = onec.base_settings(base)
    with onec.client(base) as client:
        results = sync_changes(
            client, store, run_id=context.run.run_id, timezone=settings.timezone, entities=entities,
            overlap=settings.incremental.overlap, tolerance=settings.incremental.clock_tolerance,
            rules=warehouse.rules(),
        )  # fmt: skip
    table = "\n".join(
        f"| {r.entity} | {'bootstrap' if r.window.bootstrap else 'incremental'} | {r.extract.rows} | "
        f"{r.extract.lines} | {r.extract.rejected} | {r.extract.http.get('requests', 0)} | "
        f"{r.cursor.isoformat() if r.cursor else '—'} | {r.clock.future_records} |"
        for r in results
    )
    for r in results:
        context.log.info(f"{base}: {r.entity}: {r.extract.rows} rows changed since {r.window.since}, cursor {r.cursor}")
    warnings = run_warnings(results)
    for warning in warnings:
        context.log.warning(warning)
    skews = [r.clock.skew for r in results if r.clock.skew is not None]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(r.extract.rows for r in results),
            "entities": ", ".join(entities),
            "lines": sum(r.extract.lines for r in results),
            "rejected": sum(r.extract.rejected for r in results),
            "requests": sum(r.extract.http.get("requests", 0) for r in results),
            "retries": sum(r.extract.http.get("retries", 0) for r in results),
            "changes": dg.MetadataValue.md(
                "| entity | mode | rows | lines | rejected | requests | cursor | stamped in 1C's future |\n"
                "|---|---|---|---|---|---|---|---|\n" + table
            ),
            "warnings": dg.MetadataValue.md("\n".join(f"- WARNING {w}" for w in warnings) or "none"),
            "warning_count": len(warnings),
            **({"onec_clock_skew_s": skews[-1].total_seconds()} if skews else {}),
            "warehouse": dg.MetadataValue.path(str(store.database)),
        }
    )
