"""SIGKILL an `onec-etl push` at random points, restart it each time: 1C ends with every document exactly once."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.harness import BASE_PATH, free_port
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import running_server
from onec.warehouse import Warehouse
from tests.push.push_helpers import (
    ROOT,
    document_lines,
    fresh_data,
    killed_runs,
    numbers,
    read_page,
    write_csv,
    write_json,
)

TYPE = "goods-receipt"
KILLS = 4


def _start_sandbox(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(ROOT / "bench" / "push_sandbox.py"), "--port", str(port), "--max-items", "40",
               "--rate-limit", "20", "--latency", "0.01"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{BASE_PATH}/api/version", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox did not start within 60 s")


def _held_numbers(base_url: str) -> Counter[str]:
    """Every goods receipt 1C serves, counted by number (a duplicate would be counted twice)."""
    held: Counter[str] = Counter()
    offset = 0
    while True:
        page = read_page(base_url, TYPE, 1000, offset)
        data = page["data"]
        held.update(str(doc["number"]).strip() for doc in data)
        offset += len(data)
        if not data or offset >= page["pagination"]["total"]:
            return held


@pytest.mark.e2e
def test_killed_pushes_restarted_land_every_document_exactly_once(tmp_path: Path) -> None:
    rows = document_lines(1000)
    path = write_csv(tmp_path / "receipts.csv", rows)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}{BASE_PATH}"
    sandbox = _start_sandbox(port)
    env = {**os.environ, "ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": "20", "ONEC_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "onec.cli", "push", str(path), "--type", TYPE, "--max-items", "40"]
    try:
        killed_runs(command, env, base_url, KILLS, random.Random(4))
        held_before = sum(_held_numbers(base_url).values())
        final = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
        held = _held_numbers(base_url)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=15)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "Everything landed: 1000 of 1000" in final.stdout
    assert 0 < held_before < 1000, "the kills should have hit mid-import"
    assert set(held) == numbers(rows) and max(held.values()) == 1
    outcomes = Warehouse(tmp_path / "data", "Europe/Moscow").query(
        "SELECT outcome, count(*) FROM import_results GROUP BY ALL"
    )
    assert outcomes.rows() == [("created", 1000)], "documents written by killed runs must be recognised as ours"


@pytest.mark.e2e
def test_killed_pushes_with_post_and_write_faults_leave_every_document_posted_once(tmp_path: Path) -> None:
    """Issue 12, item 4, through the CLI: write faults that apply the write and lose the answer, SIGKILLs, and 1C
    already holding some of the file's documents as drafts with the file's content (an earlier import of them);
    `push --post` run to the end leaves every document held once and posted, and says so."""
    rows = document_lines(300)
    path = write_csv(tmp_path / "receipts.csv", rows)
    earlier = write_json(tmp_path / "earlier.json", [row for row in rows if row["Number"] < "IMP-000040"])
    faults = FaultConfig(
        error_500=0.025, error_503=0.025, drop=0.025, truncate=0.025, apply_then_drop=0.15, apply_then_timeout=0.075,
        partial_batch=0.15, write_timeout_delay_s=2.0,
    )  # fmt: skip
    engine = SandboxEngine(fresh_data(), SandboxConfig(rate_limit=30, max_connections=4, max_batch_items=30,
                                                       faults=faults, seed=12))  # fmt: skip
    with running_server(engine) as base_url:
        env = {**os.environ, "ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": "30", "ONEC_MAX_CONNECTIONS": "4",
               "ONEC_TIMEOUT": "1", "ONEC_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
        push = [sys.executable, "-m", "onec.cli", "push", "--type", TYPE, "--max-items", "30"]
        first = subprocess.run([*push, str(earlier)], cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
        assert first.returncode == 0, first.stdout[-2000:]
        killed_runs([*push, str(path), "--post"], env, base_url, 2, random.Random(12))
        final = subprocess.run(
            [*push, str(path), "--post"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    held = engine.data.count_documents_by_number(TYPE)
    assert set(held) == numbers(rows) and max(held.values()) == 1
    drafts = sorted(n for n in held if not engine.data.find_by_number(TYPE, n).posted)  # type: ignore[union-attr]
    assert drafts == [], final.stdout[-1500:]
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "Everything landed and posted: 300 of 300" in final.stdout
    assert engine.stats.snapshot()["faults"].keys() >= {"apply_then_drop", "apply_then_timeout", "partial_batch"}
