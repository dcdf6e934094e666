"""The code location: assets, checks, the whole-sync job and the nightly schedule (with the Delta lake, its weekly
vacuum too), configured from `ONEC_*`.

Runs use the in-process executor unless `ONEC_CELERY_BROKER` is set (pipelines/executors.py): every asset of a run
then shares one 1C session, so one rate limiter and one concurrency cap govern the whole run. Pages of each query are
still fetched concurrently inside the session. With Celery, steps spread over workers and the `onec_api` pool bounds
the load on 1C instead.
"""

from __future__ import annotations

import dagster as dg

from assets.documents import build_document_assets
from assets.goods import build_goods_asset
from assets.incremental import INCREMENTAL_SYNC, incremental_sync
from assets.lake import build_lake_check, warehouse_from_lake
from assets.marts import RUN_REPORT, build_mart_assets
from onec.allocator import pin_mmap_threshold
from onec.config import Bases, LakeFormat, load_bases
from pipelines.exchange_inbox import build_exchange_inbox_sensor, load_exchange_files_job
from pipelines.executors import run_executor
from pipelines.imports import build_import_inbox_sensor, onec_import_job
from pipelines.incremental import build_incremental_job, build_incremental_schedule, build_webhook_sensor
from pipelines.jobs import build_sync_job, sync_partitions
from pipelines.lake_maintenance import build_vacuum_schedule, delta_lake_vacuum_job
from pipelines.schedules import build_bases_sensor, build_nightly_schedule
from resources import OneCResource, WarehouseResource


def build_definitions(bases: Bases) -> dg.Definitions:
    """Every configured base in one code location: base is a partition dimension (`sync_partitions`), resources
    serve whichever base a run's partition names."""
    settings = bases.settings
    partitions = sync_partitions(settings)
    sync_job = build_sync_job(partitions)
    incremental_job = build_incremental_job()
    delta = settings.lake.format is LakeFormat.DELTA
    return dg.Definitions(
        assets=[
            build_goods_asset(partitions),
            *build_document_assets(partitions),
            incremental_sync,
            *build_mart_assets(partitions),
            *([warehouse_from_lake] if delta else []),
        ],
        asset_checks=[build_lake_check(INCREMENTAL_SYNC), build_lake_check(RUN_REPORT)],
        jobs=[
            sync_job,
            incremental_job,
            load_exchange_files_job,
            onec_import_job,
            *([delta_lake_vacuum_job] if delta else []),
        ],
        schedules=[
            build_nightly_schedule(sync_job, bases),
            build_incremental_schedule(incremental_job, bases),
            *([build_vacuum_schedule(settings)] if delta else []),
        ],
        sensors=[
            build_bases_sensor(bases),
            build_webhook_sensor(incremental_job, bases),
            build_exchange_inbox_sensor(load_exchange_files_job, bases),
            build_import_inbox_sensor(onec_import_job, bases),
        ],
        resources={"onec": OneCResource.from_bases(bases), "warehouse": WarehouseResource.from_bases(bases)},
        executor=run_executor(bases.settings),
    )


pin_mmap_threshold()  # once per process that loads the code location: every run worker does
defs = build_definitions(load_bases())
