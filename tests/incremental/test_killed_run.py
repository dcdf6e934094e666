"""`onec-etl sync --incremental` SIGKILLed in the middle of a run over real HTTP, then run again: nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onec.config import Settings
from onec.connect import open_client
from onec.incremental import sync_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sandbox.server import running_server
from onec.warehouse import Warehouse
from tests.incremental.incremental_helpers import ZONE, assert_same_warehouse, full_extract, new_warehouse

pytestmark = pytest.mark.e2e
DEADLINE_S = 90


def test_sigkill_midway_then_rerun_loses_nothing(data: SandboxData, mutator: SandboxMutator, tmp_path: Path) -> None:
    engine = SandboxEngine(data, SandboxConfig(latency_s=0.03, max_page_size=20))
    data_dir = tmp_path / "killed"
    with running_server(engine) as base_url:
        settings = Settings(base_url=base_url, timezone=ZONE, data_dir=data_dir, page_size=20, rate_limit=10_000)
        warehouse = new_warehouse(data_dir)
        with open_client(settings) as client:
            sync_changes(client, warehouse, run_id="boot", timezone=ZONE)
        for _ in range(40):
            mutator.edit_document("shipment")
            mutator.new_document("goods-receipt")
        mutator.random_changes(20)
        env = {"PATH": os.environ["PATH"], "ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(data_dir),
               "ONEC_TIMEZONE": ZONE, "ONEC_PAGE_SIZE": "20", "ONEC_RATE_LIMIT": "10000"}  # fmt: skip
        command = [sys.executable, "-m", "onec.cli", "sync", "--incremental"]
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_first_commit(warehouse, child)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        partial = warehouse.query("SELECT count(*) FROM load_log WHERE run_id LIKE 'cli-incremental-%'").item()
        assert 1 <= partial < 7, "the kill must land between the first and the last entity"
        mutator.random_changes(10)
        Warehouse(data_dir, ZONE).initialize()  # what every run does first: clears the dead run's staging
        assert not any((data_dir / ".staging").iterdir())
        with open_client(settings) as client:
            sync_changes(client, warehouse, run_id="rerun", timezone=ZONE)
        expected = full_extract(lambda: open_client(settings), data, tmp_path / "full")
    assert_same_warehouse(warehouse, expected)


def _wait_for_first_commit(warehouse: Warehouse, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    sql = "SELECT count(*) FROM load_log WHERE run_id LIKE 'cli-incremental-%'"
    while warehouse.query(sql).item() == 0:
        assert child.poll() is None, "the child finished before it could be killed"
        assert time.monotonic() < deadline, "the child landed nothing in time"
        time.sleep(0.05)
