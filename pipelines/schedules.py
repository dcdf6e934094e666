"""The nightly sync at 02:00 in the 1C time zone.

Documents keep changing after their date (1C users edit and re-post them), so each night re-extracts the last few
days, not only yesterday. The goods snapshot is taken in the same run.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from onec.config import Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def build_nightly_schedule(job: dg.UnresolvedAssetJobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    timezone, lookback = settings.timezone, settings.schedule.nightly_lookback_days

    @dg.schedule(
        name="onec_nightly",
        cron_schedule="0 2 * * *",
        execution_timezone=timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Goods snapshot and the last {lookback} days of documents, every night at 02:00 ({timezone}).",
    )
    def onec_nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date()
        first, last = today - timedelta(days=lookback), today - timedelta(days=1)
        return dg.RunRequest(
            run_key=f"nightly-{today.isoformat()}",
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        )

    return onec_nightly
