"""The data engineer's path through the UI: `dagster dev -w workspace.yaml`, then a backfill of a date range.

The backfill is launched with the same GraphQL mutation the UI's "Materialize → backfill" dialog sends
(`launchPartitionBackfill` with `partitionNames`, base × day keys, and `assetSelection`), over real HTTP on
127.0.0.1, and carried out by the real daemon. Bounded: every wait has a deadline.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from onec.config import Settings
from onec.connect import sandbox_window
from onec.warehouse import Warehouse
from tests.dagster_bases import day_key
from tests.e2e.conftest import launch_backfill, wait_for_backfill

pytestmark = pytest.mark.e2e
BACKFILL_TIMEOUT_S = 240


def test_backfill_of_three_days_from_the_asset_graph(dagster_dev: str) -> None:
    settings = Settings.from_env()
    first = sandbox_window(settings.timezone)[0] + timedelta(days=5)
    days = [str(day_key(first + timedelta(days=i))) for i in range(3)]
    assets = ["documents_goods_receipt", "documents_shipment", "documents_transfer"]
    params = {"partitionNames": days, "assetSelection": [{"path": [a]} for a in assets], "fromFailure": False}

    status = wait_for_backfill(dagster_dev, launch_backfill(dagster_dev, params), BACKFILL_TIMEOUT_S)
    assert status == "COMPLETED_SUCCESS", status

    warehouse = Warehouse(settings.data_dir, settings.timezone)
    landed = warehouse.query(
        "SELECT doc_type, count(DISTINCT doc_date) AS days FROM documents GROUP BY doc_type ORDER BY doc_type"
    ).rows()
    assert landed == [("goods-receipt", 3), ("shipment", 3), ("transfer", 3)]
