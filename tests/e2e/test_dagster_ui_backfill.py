"""The data engineer's path through the UI: `dagster dev -w workspace.yaml`, then a backfill of a date range.

The backfill is launched with the same GraphQL mutation the UI's "Materialize → backfill" dialog sends
(`launchPartitionBackfill` with `partitionNames` and `assetSelection`), over real HTTP on 127.0.0.1, and carried out
by the real daemon. Bounded: every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from onec.config import Settings
from onec.connect import sandbox_window
from onec.warehouse import Warehouse

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ONEC_DATA_DIR": os.environ["ONEC_DATA_DIR"]}
    log = (tmp_path / "dagster-dev.log").open("wb")
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited during start-up"
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200 and _location_loaded(url):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve within {STARTUP_TIMEOUT_S} s")


def _location_loaded(url: str) -> bool:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    body = _graphql(url, query, {})
    entries = body["data"]["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _graphql(url: str, query: str, variables: dict[str, object]) -> dict:  # type: ignore[type-arg]
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_backfill_of_three_days_from_the_asset_graph(dagster_dev: str) -> None:
    settings = Settings.from_env()
    first = sandbox_window(settings.timezone)[0] + timedelta(days=5)
    days = [(first + timedelta(days=i)).isoformat() for i in range(3)]
    assets = ["documents_goods_receipt", "documents_shipment", "documents_transfer"]
    params = {"partitionNames": days, "assetSelection": [{"path": [a]} for a in assets], "fromFailure": False}

    launched = _graphql(dagster_dev, LAUNCH, {"params": params})["data"]["launchPartitionBackfill"]
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
        answer = _graphql(url, STATUS, {"id": backfill_id})["data"]["partitionBackfillOrError"]
        status = answer.get("status", answer["__typename"])
        if status not in ("REQUESTED", "IN_PROGRESS"):
            return str(status)
        time.sleep(2)
    raise AssertionError(f"backfill still {status} after {BACKFILL_TIMEOUT_S} s")
