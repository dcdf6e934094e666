"""The nightly goods snapshot: every stock position 1C reports today, landed as that day's snapshot."""

import dagster as dg

from assets.materialization import materialize_result, validation_check_specs
from onec.sync import extract_goods, local_today
from resources import OneCResource, WarehouseResource, failing_cleanly

GOODS = dg.AssetKey("goods")


@dg.asset(
    key=GOODS,
    group_name="onec",
    kinds={"duckdb", "parquet"},
    pool="onec_api",
    check_specs=validation_check_specs(GOODS),
    description=(
        "Stock positions (sku × warehouse) as 1C reports them now, landed as today's snapshot in the 1C time zone. "
        "Re-materializing the same day replaces that day's snapshot."
    ),
)
@failing_cleanly
def goods(context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource) -> dg.MaterializeResult:  # type: ignore[type-arg]  # with check specs, dagster loads the asset only if this is the bare class
    store = warehouse.warehouse()
    timezone = onec.settings().timezone
    snapshot_date = local_today(timezone)
    with onec.source() as source:
        result = extract_goods(
            source,
            store,
            snapshot_date=snapshot_date,
            run_id=context.run.run_id,
            timezone=timezone,
            rules=warehouse.rules(),
        )
    landed = store.query("SELECT count(*) FROM goods WHERE snapshot_date = ?", [snapshot_date]).item()
    context.log.info(f"goods snapshot {snapshot_date}: {result.rows} rows, {result.rejected} rejected")
    return materialize_result(GOODS, result, store, landed, str(store.lake_dir / "goods"))
