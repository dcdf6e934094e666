"""The nightly goods snapshot: every stock position a base's 1C reports today, landed as that day's snapshot.

Partitioned base × day like the documents, so that it runs in the same job and the UI shows it per base; the day
of the partition does not matter (1C reports its stock now, a past day cannot be read again): any run of a base lands
today's snapshot in that base's zone.
"""

import dagster as dg

from assets.bases import ONE_RUN_PER_PARTITION, context_base
from assets.materialization import materialize_result, validation_check_specs
from onec.sync import extract_goods, local_today
from resources import OneCResource, WarehouseResource, failing_cleanly

GOODS = dg.AssetKey("goods")


def build_goods_asset(partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=GOODS,
        group_name="onec",
        kinds={"duckdb", "parquet"},
        pool="onec_api",
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
        check_specs=validation_check_specs(GOODS),
        description=(
            "Stock positions (sku × warehouse) as the base's 1C reports them now, landed as today's snapshot in its "
            "time zone, whichever day the partition is. Re-materializing the same day replaces that day's snapshot."
        ),
    )
    @failing_cleanly
    def goods(
        context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]  # with check specs, dagster loads the asset only if this is the bare class
        return _land_goods(context, context_base(context), onec, warehouse)

    return goods


def _land_goods(
    context: dg.AssetExecutionContext, base: str, onec: OneCResource, warehouse: WarehouseResource
) -> dg.MaterializeResult[None]:
    store = warehouse.warehouse(base)
    timezone = store.timezone
    snapshot_date = local_today(timezone)
    with onec.source(base) as source:
        result = extract_goods(
            source,
            store,
            snapshot_date=snapshot_date,
            run_id=context.run.run_id,
            timezone=timezone,
            rules=warehouse.rules(),
        )
    landed = store.query("SELECT count(*) FROM goods WHERE snapshot_date = ?", [snapshot_date]).item()
    context.log.info(f"{base}: goods snapshot {snapshot_date}: {result.rows} rows, {result.rejected} rejected")
    return materialize_result(GOODS, result, store, landed, str(store.lake_dir / "goods"))
