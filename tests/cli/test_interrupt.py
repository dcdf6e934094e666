"""Ctrl-C during `onec-etl sync`: it stops within a couple of seconds, each entity landed whole or not at all, and it
says which; the next run lands the rest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import sandbox_process
from onec.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]

ZONE = "Europe/Moscow"


@pytest.mark.e2e
def test_ctrl_c_stops_soon_and_says_what_landed(tmp_path: Path) -> None:
    with sandbox_process("--documents", "3000", "--latency", "0.15") as base_url:
        _interrupt_and_resume(base_url, tmp_path)


def _interrupt_and_resume(base_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ONEC_")}
    env |= {"ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(tmp_path / "data"), "ONEC_PAGE_SIZE": "50",
            "ONEC_MAX_CONNECTIONS": "2"}  # fmt: skip
    command = [sys.executable, "-m", "onec.cli", "sync", "--from", "2020-01-01"]
    sync = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_fetching(tmp_path / "data" / ".staging", sync)
    sync.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    _, stderr = sync.communicate(timeout=30)
    stopped_within = time.monotonic() - interrupted
    assert sync.returncode == 130, stderr[-2000:]
    assert stopped_within < 5, f"Ctrl-C took {stopped_within:.1f} s"
    said = re.search(r"interrupted: landed (.*?); discarded (.*?) \(", stderr)
    assert said, stderr[-2000:]
    landed = set() if said[1] == "nothing" else set(said[1].split(", "))
    discarded = set(said[2].split(", "))
    assert discarded and not landed & discarded
    assert _entities_in(tmp_path / "data") == landed, "the warehouse holds exactly what was said to have landed"
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _entities_in(tmp_path / "data") == landed | discarded


def _wait_until_fetching(staging: Path, sync: subprocess.Popen[str]) -> None:
    """Until a landing stages its first batch (the import of a cold interpreter can take seconds on a busy host)."""
    deadline = time.monotonic() + 60
    while not any(staging.glob("*/*.parquet")) and time.monotonic() < deadline:
        assert sync.poll() is None, "the sync ended before it was interrupted"
        time.sleep(0.1)
    assert sync.poll() is None, "the sync should still be fetching"


def _entities_in(data: Path) -> set[str]:
    warehouse = Warehouse(data, ZONE)
    types = set(warehouse.query("SELECT DISTINCT doc_type FROM documents")["doc_type"].to_list())
    return types | ({"goods"} if warehouse.table_counts()["goods"] else set())
