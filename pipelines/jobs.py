"""Jobs and the partitioning they share."""

from __future__ import annotations

import os

import dagster as dg

DOCUMENTS_START_DATE = "2025-01-01"
SYNC_JOB = "onec_sync"


def documents_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """Daily partitions by document date in the 1C zone; the first day is `ONEC_PARTITIONS_START` (2025-01-01)."""
    return dg.DailyPartitionsDefinition(
        start_date=os.environ.get("ONEC_PARTITIONS_START", DOCUMENTS_START_DATE), timezone=timezone
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
