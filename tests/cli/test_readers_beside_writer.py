"""An analyst with `warehouse.duckdb` open must delay a sync, not fail it: held read-only for seconds, or re-opened by a
BI tool every 0.1 s, the sync waits for its turn, exits 0 and lands everything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from onec.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
ZONE = "Europe/Moscow"
SYNC = [sys.executable, "-m", "onec.cli", "sync", "--types", "shipment", "goods-receipt"]

HOLD_READ_ONLY = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM documents").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""

REOPEN_EVERY_TENTH = """
import sys, time, duckdb
print("polling", flush=True)
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
        con.execute("SELECT count(*) FROM documents").fetchall()
        time.sleep(0.02)
        con.close()
    except duckdb.Error:
        pass  # the writer holds it this instant: a BI tool retries on its next refresh
    time.sleep(0.1)
"""


def _env(data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ONEC_")}
    return {**env, "ONEC_DATA_DIR": str(data), "ONEC_SANDBOX_DOCUMENTS": "600"}


def _sync(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SYNC, cwd=ROOT, env=_env(data), capture_output=True, text=True, timeout=240, check=False)


def _landed(data: Path) -> tuple[int, int, int]:
    counts = Warehouse(data, ZONE).table_counts()
    return counts["documents"], counts["document_lines"], counts["goods"]


@contextmanager
def _reader(script: str, database: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(database), *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip()  # it has the file open now
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, int, int]:
    """What the same sync lands with nobody else around."""
    data = tmp_path_factory.mktemp("alone")
    result = _sync(data)
    assert result.returncode == 0, result.stderr[-2000:]
    return _landed(data)


@pytest.mark.e2e
def test_a_sync_waits_for_a_reader_holding_the_file_open(tmp_path: Path, expected: tuple[int, int, int]) -> None:
    data = tmp_path / "data"
    assert _sync(data).returncode == 0
    with _reader(HOLD_READ_ONLY, data / "warehouse.duckdb", "15"):
        started = time.monotonic()
        result = _sync(data)
        waited = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert "held open by PID" in result.stderr, "the wait is said, naming the holder"
    assert waited >= 5, "the reader held the file: the sync cannot have landed before it let go"
    assert _landed(data) == expected


@pytest.mark.e2e
def test_a_sync_lands_beside_a_tool_reopening_the_file_every_tenth_of_a_second(
    tmp_path: Path, expected: tuple[int, int, int]
) -> None:
    data = tmp_path / "data"
    assert _sync(data).returncode == 0
    with _reader(REOPEN_EVERY_TENTH, data / "warehouse.duckdb"):
        result = _sync(data)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _landed(data) == expected
