"""`onec-etl sync --incremental` SIGKILLed at random points, several times (the first while its first, full scan writes
lake files), then run to the end: the lake holds the warehouse's rows, row for row, and the warehouse what 1C holds.

Before `lake_pending`, the first kill left the days whose files were not yet written out of the lake for good: the
cursor had committed with the rows, so later runs never landed (or rewrote) those days again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from onec.config import Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sandbox.server import running_server
from tests.incremental.incremental_helpers import ZONE, assert_same_warehouse, full_extract, new_warehouse
from tests.lake_equality import assert_lake_equals_warehouse

pytestmark = pytest.mark.e2e
KILLED_RUNS = 6
RUN_DEADLINE_S = 120
POLL_S = 0.005
KILL_DELAY_S = (0.8, 3.0)
"""A run here takes 2-2.5 s, about 1 s of it starting Python: kills by delay land anywhere in the sync."""


def test_runs_killed_at_random_points_leave_the_lake_equal_to_the_warehouse(
    data: SandboxData, mutator: SandboxMutator, tmp_path: Path
) -> None:
    chance = random.Random(20261203)
    engine = SandboxEngine(data, SandboxConfig(latency_s=0.01, max_page_size=20))
    data_dir = tmp_path / "killed"
    warehouse = new_warehouse(data_dir)
    lake = warehouse.lake_dir
    with running_server(engine) as base_url:
        env = {"PATH": os.environ["PATH"], "ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(data_dir),
               "ONEC_TIMEZONE": ZONE, "ONEC_PAGE_SIZE": "20", "ONEC_RATE_LIMIT": "10000"}  # fmt: skip
        started = time.time_ns()
        first = _start(env)
        first_files = _files_written(lake / "documents", started, chance.randint(3, 40))
        assert _kill_when(first, first_files), "the first run (its full scan) must be killed while it writes lake files"
        for round_ in range(1, KILLED_RUNS):
            mutator.random_changes(15)
            started = time.time_ns()
            child = _start(env)
            due = _files_written(lake, started, chance.randint(1, 8)) if round_ % 2 else _delay(chance)
            _kill_when(child, due)
        mutator.random_changes(15)
        final = subprocess.run(_COMMAND, env=env, capture_output=True, timeout=RUN_DEADLINE_S, check=False)
        assert final.returncode == 0, final.stderr.decode()[-2000:]
        settings = Settings(base_url=base_url, timezone=ZONE, data_dir=data_dir, page_size=20, rate_limit=10_000)
        expected = full_extract(lambda: open_client(settings), data, tmp_path / "full")
    assert_lake_equals_warehouse(warehouse)
    assert_same_warehouse(warehouse, expected)


_COMMAND = [sys.executable, "-m", "onec.cli", "sync", "--incremental"]


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(child: subprocess.Popen[bytes], due: Callable[[], bool]) -> bool:
    """SIGKILL the child as soon as `due()`; False if it finished first."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    try:
        while child.poll() is None:
            assert time.monotonic() < deadline, "the child did not finish in time"
            if due():
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                return child.returncode == -signal.SIGKILL
            time.sleep(POLL_S)
        return False
    finally:
        if child.poll() is None:
            child.kill()


def _files_written(directory: Path, since_ns: int, files: int) -> Callable[[], bool]:
    """Due once `files` lake files under `directory` are written (new or replaced) since an instant: a landing writes
    its partitions in one burst after its commit, so the kill lands inside a burst."""

    def due() -> bool:
        count = 0
        for path in directory.rglob("data.parquet"):
            try:
                count += path.stat().st_mtime_ns >= since_ns
            except FileNotFoundError:
                continue
        return count >= files

    return due


def _delay(chance: random.Random) -> Callable[[], bool]:
    deadline = time.monotonic() + chance.uniform(*KILL_DELAY_S)
    return lambda: time.monotonic() >= deadline
