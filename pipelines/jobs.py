"""Jobs and the partitioning they share."""

from __future__ import annotations

import dagster as dg

from assets.bases import BASE_DIMENSION, BASES, DAY_DIMENSION
from onec.config import Settings

SYNC_JOB = "onec_sync"


def sync_partitions(settings: Settings) -> dg.MultiPartitionsDefinition:
    """Base × day: the configured bases (dynamic) by daily partitions of document date from
    `settings.schedule.partitions_start`. A day is a calendar date, read in each base's own zone by its run; the day
    dimension's zone (`ONEC_TIMEZONE`) only sets when Dagster considers a day complete."""
    days = dg.DailyPartitionsDefinition(
        start_date=settings.schedule.partitions_start.isoformat(), timezone=settings.timezone
    )
    return dg.MultiPartitionsDefinition({BASE_DIMENSION: BASES, DAY_DIMENSION: days})


def build_sync_job(partitions: dg.MultiPartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    """The whole sync of one base: the goods snapshot plus every document type for the partition (or range of days)
    of the run, then the marts, the reconciliation with 1C and the run report built over everything landed."""
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.groups("onec", "onec_documents", "onec_marts"),
        description=(
            "One base's goods snapshot plus all six document types for a day (or the nightly run's days), then marts,"
            " reconciliation and the run report."
        ),
    )
