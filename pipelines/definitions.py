"""The code location: assets, checks, the whole-sync job and the nightly schedule, configured from `ONEC_*`.

Runs use the in-process executor: every asset of a run then shares one 1C session, so one rate limiter and one
concurrency cap govern the whole run (a multi-process run would multiply the load on 1C by the number of steps).
Pages of each query are still fetched concurrently inside the session.
"""

from __future__ import annotations

import dagster as dg

from assets.documents import build_document_assets
from assets.goods import goods
from onec.config import Settings
from pipelines.jobs import build_sync_job, documents_partitions
from pipelines.schedules import build_nightly_schedule
from resources import OneCResource, WarehouseResource


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = documents_partitions(settings.timezone)
    document_assets = build_document_assets(partitions)
    sync_job = build_sync_job()
    return dg.Definitions(
        assets=[goods, *document_assets],
        jobs=[sync_job],
        schedules=[build_nightly_schedule(sync_job, settings.timezone)],
        resources={
            "onec": OneCResource.from_settings(settings),
            "warehouse": WarehouseResource(data_dir=str(settings.data_dir), timezone=settings.timezone),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
