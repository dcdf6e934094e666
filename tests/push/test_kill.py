"""SIGKILL an `onec-etl push` at random points, restart it each time: 1C ends with every document exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from push_helpers import document_lines, numbers, write_csv

from onec.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from harness import BASE_PATH, free_port  # noqa: E402

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


def _read_page(base_url: str, limit: int, offset: int) -> dict[str, Any]:
    """One page of goods receipts. The push spends the credential's whole rate budget, so this observer is throttled
    like any other client: it waits out each 429's Retry-After (bounded) instead of reading the error as a page."""
    url = f"{base_url}/api/v1/documents/{TYPE}"
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(url, params={"limit": limit, "offset": offset}, timeout=30)
        if response.status_code != 429 or time.monotonic() > deadline:
            response.raise_for_status()
            page: dict[str, Any] = response.json()
            return page
        time.sleep(min(5.0, float(response.headers.get("retry-after", "1"))))


def _held_numbers(base_url: str) -> Counter[str]:
    """Every goods receipt 1C serves, counted by number (a duplicate would be counted twice)."""
    held: Counter[str] = Counter()
    offset = 0
    while True:
        page = _read_page(base_url, 1000, offset)
        data = page["data"]
        held.update(str(doc["number"]).strip() for doc in data)
        offset += len(data)
        if not data or offset >= page["pagination"]["total"]:
            return held


def _wait_for_progress(base_url: str, push: subprocess.Popen[bytes]) -> None:
    """Until 1C holds more documents than before (the push is sending), or the push has ended."""
    start = _held_count(base_url)
    deadline = time.monotonic() + 60
    while push.poll() is None and _held_count(base_url) == start and time.monotonic() < deadline:
        time.sleep(0.3)


def _held_count(base_url: str) -> int:
    return int(_read_page(base_url, 1, 0)["pagination"]["total"])


@pytest.mark.e2e
def test_killed_pushes_restarted_land_every_document_exactly_once(tmp_path: Path) -> None:
    rows = document_lines(1000)
    path = write_csv(tmp_path / "receipts.csv", rows)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}{BASE_PATH}"
    sandbox = _start_sandbox(port)
    env = {**os.environ, "ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": "20", "ONEC_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "onec.cli", "push", str(path), "--type", TYPE, "--max-items", "40"]
    rng = random.Random(4)
    try:
        for _ in range(KILLS):
            push = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for_progress(base_url, push)
            time.sleep(rng.uniform(0.0, 1.5))
            push.send_signal(signal.SIGKILL)
            push.wait(timeout=10)
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
