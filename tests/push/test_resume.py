"""Resuming an interrupted import costs about what a clean one does (issue 14, "resume by pages").

After SIGKILLs, every batch that was under way is in doubt; the run that finishes the import must find out what 1C
holds without resending anything 1C may have. It does so by reading the date windows of those documents, a page
of up to the page size at a time, not one document at a time (that made the finishing run cost more than ten
clean ones). The figures are the sandbox's own count of the requests it answered.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.sandbox.server import running_server
from onec.warehouse import Warehouse
from tests.push.push_helpers import OBSERVER, ROOT, document_lines, fresh_data, killed_runs, numbers, write_csv

TYPE = "goods-receipt"
DOCUMENTS = 1500
RATE = 5
MAX_ITEMS = "50"
ALLOWED = 1.25
"""The finishing run may make at most this many times the requests of a clean run."""


def _engine() -> SandboxEngine:
    """1C at 5 requests/s that answers 503 to 5 % of requests, drops 5 % of read answers and applies 5 % of the
    writes but drops their answers."""
    faults = FaultConfig(error_503=0.05, drop=0.05, apply_then_drop=0.05)
    return SandboxEngine(fresh_data(), SandboxConfig(rate_limit=RATE, faults=faults, seed=14))


def _requests(engine: SandboxEngine) -> int:
    return int(engine.stats.snapshot()["requests"])


def _count_observer(engine: SandboxEngine) -> Counter[str]:
    """Counts the observer's requests, so the push's own can be told from them."""
    seen: Counter[str] = Counter()
    answer = engine.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        if request.header("user-agent") == OBSERVER:
            seen["requests"] += 1
        return answer(request)

    engine.handle = handle  # type: ignore[method-assign]
    return seen


def _in_doubt(data_dir: Path) -> int:
    """Documents the killed runs left marked `sending` (sent or about to be, no answer recorded)."""
    warehouse = Warehouse(data_dir, "Europe/Moscow")
    return int(warehouse.query("SELECT count(*) FROM import_ledger WHERE state = 'sending'").item())


@pytest.mark.e2e
def test_the_run_that_finishes_a_twice_killed_import_costs_about_a_clean_run(tmp_path: Path) -> None:
    rows = document_lines(DOCUMENTS)
    path = write_csv(tmp_path / "receipts.csv", rows)
    clean, resumed = _engine(), _engine()
    observer = _count_observer(resumed)
    push = [sys.executable, "-m", "onec.cli", "push", str(path), "--type", TYPE, "--max-items", MAX_ITEMS]
    started = time.monotonic()
    with running_server(clean) as clean_url, running_server(resumed) as base_url:
        env = {**os.environ, "ONEC_RATE_LIMIT": str(RATE)}
        clean_run = subprocess.Popen(
            push, cwd=ROOT, env={**env, "ONEC_BASE_URL": clean_url, "ONEC_DATA_DIR": str(tmp_path / "clean")},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        env = {**env, "ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(tmp_path / "data")}
        killed_runs(push, env, base_url, 2, random.Random(14), within_s=8.0)
        killed = _requests(resumed) - observer["requests"]
        held_before = sum(resumed.data.count_documents_by_number(TYPE).values())
        in_doubt = _in_doubt(tmp_path / "data")
        final = subprocess.run(push, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False)
        finishing = _requests(resumed) - observer["requests"] - killed
        clean_out, _ = clean_run.communicate(timeout=150)
    elapsed = time.monotonic() - started
    baseline = _requests(clean)
    print(
        f"\n{DOCUMENTS} documents at {RATE} requests/s: clean run {baseline} requests; two killed runs {killed},"
        f" the finishing run {finishing} ({finishing / baseline:.2f}x the clean run), {held_before} documents held"
        f" and {in_doubt} in doubt before it; faults {clean.stats.snapshot()['faults']} (clean),"
        f" {resumed.stats.snapshot()['faults']} (killed and finishing); {elapsed:.0f} s in all"
    )
    assert clean_run.returncode == 0 and f"Everything landed: {DOCUMENTS} of {DOCUMENTS}" in clean_out, clean_out
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert f"Everything landed: {DOCUMENTS} of {DOCUMENTS}" in final.stdout
    assert 0 < held_before < DOCUMENTS and in_doubt > 0, "the kills should have hit mid-import"
    for engine in (clean, resumed):
        held = engine.data.count_documents_by_number(TYPE)
        assert set(held) == numbers(rows) and max(held.values()) == 1
    assert finishing <= ALLOWED * baseline, f"the finishing run made {finishing} requests, a clean one {baseline}"
