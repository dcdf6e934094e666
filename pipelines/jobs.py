"""Jobs and the partitioning they share."""

from __future__ import annotations

import dagster as dg

from onec.config import Settings

SYNC_JOB = "onec_sync"


def documents_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily partitions by document date in the 1C zone, from `settings.schedule.partitions_start`."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.schedule.partitions_start.isoformat(), timezone=settings.timezone
    )


def build_sync_job() -> dg.UnresolvedAssetJobDefinition:
    """The whole sync: the goods snapshot plus every document type for the partition range of the run, then the
    marts, the reconciliation with 1C and the run report built over everything landed."""
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.groups("onec", "onec_documents", "onec_marts"),
        description=(
            "Goods snapshot plus all six document types for a date range, then marts, reconciliation and the run "
            "report (the nightly run)."
        ),
    )
