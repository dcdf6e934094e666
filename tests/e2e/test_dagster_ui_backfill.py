"""The data engineer's path through the UI: `dagster dev -w workspace.yaml`, then a backfill of a date range.

The backfill is launched with the same GraphQL mutation the UI's "Materialize → backfill" dialog sends
(`launchPartitionBackfill` with `partitionNames` and `assetSelection`), over real HTTP on 127.0.0.1, and carried out
by the real daemon. Bounded: every wait has a deadline.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from onec.config import Settings
from onec.connect import sandbox_window
from onec.warehouse import Warehouse
from tests.e2e.conftest import graphql

pytestmark = pytest.mark.e2e
BACKFILL_TIMEOUT_S = 240

LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
  }
}
"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""


def test_backfill_of_three_days_from_the_asset_graph(dagster_dev: str) -> None:
    settings = Settings.from_env()
    first = sandbox_window(settings.timezone)[0] + timedelta(days=5)
    days = [(first + timedelta(days=i)).isoformat() for i in range(3)]
    assets = ["documents_goods_receipt", "documents_shipment", "documents_transfer"]
    params = {"partitionNames": days, "assetSelection": [{"path": [a]} for a in assets], "fromFailure": False}

    launched = graphql(dagster_dev, LAUNCH, {"params": params})["data"]["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status = _wait_for_backfill(dagster_dev, launched["backfillId"])
    assert status == "COMPLETED_SUCCESS", status

    warehouse = Warehouse(settings.data_dir, settings.timezone)
    landed = warehouse.query(
        "SELECT doc_type, count(DISTINCT doc_date) AS days FROM documents GROUP BY doc_type ORDER BY doc_type"
    ).rows()
    assert landed == [("goods-receipt", 3), ("shipment", 3), ("transfer", 3)]


def _wait_for_backfill(url: str, backfill_id: str) -> str:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    status = "REQUESTED"
    while time.monotonic() < deadline:
        answer = graphql(url, STATUS, {"id": backfill_id})["data"]["partitionBackfillOrError"]
        status = answer.get("status", answer["__typename"])
        if status not in ("REQUESTED", "IN_PROGRESS"):
            return str(status)
        time.sleep(2)
    raise AssertionError(f"backfill still {status} after {BACKFILL_TIMEOUT_S} s")
