"""The nightly sync at 02:00 in the 1C time zone, and the sensor that keeps the base dimension equal to the bases
configured.

Documents keep changing after their date (1C users edit and re-post them), so each night re-extracts the last few
days, not only yesterday. One run per base × day, as a backfill launches them: the run queue holds each base to one
run at a time (dagster.yaml, `pipelines.instance`), and the runs of a base start in the order requested. So only the
last day's run takes the goods snapshot and rebuilds the marts, reconciliation and report; the earlier days' runs
land their documents only, and come first.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.bases import BASE_DIMENSION, DAY_DIMENSION
from assets.marts import DOCUMENT_KEYS
from onec.config import Bases
from pipelines.instance import configure_instance

BASES_SENSOR = "onec_bases"


def build_nightly_schedule(job: dg.UnresolvedAssetJobDefinition, bases: Bases) -> dg.ScheduleDefinition:
    settings = bases.settings
    timezone, lookback, base_ids = settings.timezone, settings.schedule.nightly_lookback_days, bases.ids

    @dg.schedule(
        name="onec_nightly",
        cron_schedule="0 2 * * *",
        execution_timezone=timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            f"Per base: the goods snapshot and the last {lookback} days of documents, every night at 02:00 "
            f"({timezone})."
        ),
    )
    def onec_nightly(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        configure_instance(context.instance, bases)
        today = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date()
        days = [today - timedelta(days=back) for back in range(lookback, 0, -1)]
        return [
            dg.RunRequest(
                run_key=f"nightly-{today.isoformat()}-{base}-{day.isoformat()}",
                partition_key=base_day(base, day.isoformat()),
                asset_selection=None if day == days[-1] else DOCUMENT_KEYS,
            )
            for base in base_ids
            for day in days
        ]

    return onec_nightly


def base_day(base: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({BASE_DIMENSION: base, DAY_DIMENSION: day})


def build_bases_sensor(bases: Bases) -> dg.SensorDefinition:
    """Adds every configured base to the base dimension and sets the `onec_api` pool to the licence budget
    (`configure_instance`; on by default: without it a base in the file has no partitions to launch from the UI).
    A base removed from the file keeps its partition."""
    base_ids = bases.ids

    @dg.sensor(
        name=BASES_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Keeps the base partitions equal to the configured bases ({', '.join(base_ids)}).",
    )
    def onec_bases(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        added = configure_instance(context.instance, bases)
        return dg.SkipReason(f"added bases {', '.join(added)}" if added else f"no new base ({', '.join(base_ids)})")

    return onec_bases
