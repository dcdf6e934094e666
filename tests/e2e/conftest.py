"""Shared end-to-end fixtures: `dagster dev -w workspace.yaml` on a free 127.0.0.1 port, with its own DAGSTER_HOME
and the test's ONEC_DATA_DIR. Bounded: start-up has a deadline, shutdown escalates to SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance
from playwright.sync_api import Page, sync_playwright

from onec.config import load_bases
from pipelines.instance import configure_instance
from tests.services import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ONEC_DATA_DIR": os.environ["ONEC_DATA_DIR"]}
    with dagster_dev_server(env, tmp_path / "dagster-dev.log") as url:
        with DagsterInstance.from_config(str(home)) as instance:
            # What the onec_bases sensor does on its first tick, done now rather than waiting for the tick.
            configure_instance(instance, load_bases(env))
        yield url


@contextmanager
def dagster_dev_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`dagster dev` (webserver, daemon, code server) on the instance of `env["DAGSTER_HOME"]`; yields its URL."""
    port = free_port()
    log = log_path.open("wb")
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
        stop(process)
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
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus"
        " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    body = graphql(url, query, {})
    entries = body["data"]["workspaceOrError"]["locationEntries"]
    for entry in entries:
        error = entry["locationOrLoadError"] or {}
        if entry["loadStatus"] == "LOADED" and error.get("__typename") == "PythonError":
            raise AssertionError(f"the code location failed to load: {error['message']}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def graphql(url: str, query: str, variables: dict[str, object]) -> dict:  # type: ignore[type-arg]
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


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


def launch_backfill(url: str, params: dict[str, object]) -> str:
    """The UI's "Materialize → backfill" mutation; returns the backfill's id."""
    launched = graphql(url, LAUNCH, {"params": params})["data"]["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


def wait_for_backfill(url: str, backfill_id: str, timeout_s: float) -> str:
    """The backfill's final status, polled within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    status = "REQUESTED"
    while time.monotonic() < deadline:
        answer = graphql(url, STATUS, {"id": backfill_id})["data"]["partitionBackfillOrError"]
        status = answer.get("status", answer["__typename"])
        if status not in ("REQUESTED", "IN_PROGRESS"):
            return str(status)
        time.sleep(2)
    raise AssertionError(f"backfill still {status} after {timeout_s} s")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser_page() -> Iterator[Page]:
    """A page in the Debian Chromium driven by Playwright (`playwright install` cannot download browsers here).
    CI installs Chromium in .ci/run, so there a missing browser is a failure; on a developer machine, a skip."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
