"""The weekly vacuum of the Delta lake (ONEC_LAKE_FORMAT=delta): job `delta_lake_vacuum` and its schedule.

Thin over `onec.delta_lake.vacuum`: every landing replaces its partitions and leaves the replaced files behind for
the readers of the version before; this job deletes those older than ONEC_LAKE_VACUUM_RETENTION_HOURS, so a lake
rewritten every night does not keep a copy of every partition it ever rewrote (docs/scaling.md, "Vacuum"). It may
run beside the landings: it deletes only files the log says were replaced, never one a version still reads.
"""

import dagster as dg

from onec import delta_lake
from onec.config import Settings
from onec.errors import UsageError
from onec.lake_mirror import LAKE_TABLES
from resources import WarehouseResource, failing_cleanly

VACUUM_JOB = "delta_lake_vacuum"
VACUUM_SCHEDULE = "delta_lake_weekly_vacuum"


@dg.op(description="Delete the Delta lake's data files replaced longer ago than ONEC_LAKE_VACUUM_RETENTION_HOURS.")
@failing_cleanly
def vacuum_delta_lake(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dg.Output[int]:
    settings = warehouse.settings()
    target = delta_lake.configured_target(settings)
    if target is None:
        raise UsageError("delta_lake_vacuum vacuums the Delta lake: set ONEC_LAKE_FORMAT=delta")
    hours = settings.lake.vacuum_retention_hours
    done = delta_lake.vacuum(target.lake, list(LAKE_TABLES), hours)
    for table in done:
        context.log.info(
            f"{table.table}: {len(table.files_expired)} replaced files past the retention gone,"
            f" {table.files_current} files in the current version"
        )
    expired = sum(len(table.files_expired) for table in done)
    return dg.Output(
        expired,
        metadata={
            "retention_hours": hours,
            "files_expired": expired,
            "files_current": sum(table.files_current for table in done),
            **{f"files_expired_{table.table}": len(table.files_expired) for table in done},
        },
    )


@dg.job(name=VACUUM_JOB, description="Vacuum the Delta lake (ONEC_LAKE_FORMAT=delta): see docs/scaling.md.")
def delta_lake_vacuum_job() -> None:
    vacuum_delta_lake()


def build_vacuum_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Sundays at 04:00 in the 1C zone, after the night's syncs (02:00); running by default, since a Delta lake
    left without it only grows."""
    return dg.ScheduleDefinition(
        name=VACUUM_SCHEDULE,
        job=delta_lake_vacuum_job,
        cron_schedule="0 4 * * 0",
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Sundays at 04:00 ({settings.timezone}): delete the Delta lake's files replaced more than"
            f" {settings.lake.vacuum_retention_hours} hours ago."
        ),
    )
