"""A 100,000-line import into a 1C limited to 500 items per request and 20 requests/s: wall time against the floor.

    .venv/bin/python bench/push_throughput.py [--lines 100000] [--max-items 500] [--rate 20] [--repeat 3]

The sandbox 1C runs in its own process (bench/push_sandbox.py) with the item limit, a token bucket of `rate`
requests/s, 8 concurrent connections and 10 ms of latency; the client paces itself to the same rate. Each
repetition imports the same file (its dates cycle through the month in file order) into a fresh sandbox and a
fresh warehouse (`onec.push.push_file`: read, validate, ledger, batches, read-back verification, which reads each
range of dates while later batches are still being sent). The floor is the fewest requests any client needs:
⌈lines ÷ max_items⌉ batches plus the verification pages (⌈documents ÷ page size⌉), divided by the rate. Printed:
medians of wall time and of wall ÷ floor (target ≤ 1.15), the requests actually made, and the sandbox process's
CPU time during the import (from /proc; the other end's share of the wall time, which no client change can
remove). Both ends share the machine's cores, so quote the load (`uptime`) with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import BASE_PATH, ROOT, free_port, median, run_child

sys.path.insert(0, str(ROOT / "tests" / "push"))
PAGE_SIZE = 1000


def child(base_url: str, rate: str, max_items: str, csv_path: str, data_dir: str) -> None:
    from onec.config import Settings
    from onec.connect import open_client
    from onec.push import Limits, PushOptions, push_file
    from onec.warehouse import Warehouse

    settings = Settings.from_env({"ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": rate, "ONEC_MAX_CONNECTIONS": "8",
                                  "ONEC_PAGE_SIZE": str(PAGE_SIZE), "ONEC_DATA_DIR": data_dir})  # fmt: skip
    warehouse = Warehouse(Path(data_dir), settings.timezone)
    warehouse.initialize()
    started = time.perf_counter()
    with open_client(settings) as client:
        summary = push_file(Path(csv_path), "goods-receipt", client, warehouse, run_id="bench",
                            options=PushOptions(limits=Limits(int(max_items))))  # fmt: skip
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "documents": summary.documents, "created": summary.counts["created"],
                      "complete": summary.complete, "requests": summary.http.get("requests", 0),
                      "batches": summary.requests, "throttled": summary.http.get("throttled", 0)}))  # fmt: skip


def _sandbox(max_items: int, rate: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "push_sandbox.py"), "--port", str(port), "--max-items",
               str(max_items), "--rate-limit", str(rate), "--max-connections", "8", "--latency", "0.01"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}{BASE_PATH}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/version", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox did not start within 60 s")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, from Linux's /proc (read around the import, so the
    sandbox's own startup is not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--max-items", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from push_helpers import document_lines, write_csv

    rows = document_lines(args.lines // 10 + 1, max_lines=19)[: args.lines]
    last = rows[-1]["Number"]
    rows = [r for r in rows if r["Number"] != last]  # no cut-off document at the end
    documents = len({r["Number"] for r in rows})
    floor_requests = math.ceil(len(rows) / args.max_items) + math.ceil(documents / PAGE_SIZE)
    floor_s = floor_requests / args.rate
    walls: list[float] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(Path(tmp) / "receipts.csv", rows)
        for run in range(args.repeat):
            process, base_url = _sandbox(args.max_items, args.rate)
            try:
                sandbox_cpu = _cpu_s(process.pid)
                result = run_child(Path(__file__), [base_url, str(args.rate), str(args.max_items), str(csv_path),
                                                    str(Path(tmp) / f"data-{run}")], {})  # fmt: skip
                sandbox_cpu = _cpu_s(process.pid) - sandbox_cpu
            finally:
                process.terminate()
                process.wait(timeout=15)
            if not result["complete"] or result["created"] != documents:
                raise SystemExit(f"run {run}: the import did not land every document once: {result}")
            walls.append(result["wall_s"])
            ratios.append(result["wall_s"] / floor_s)
            print(f"run {run}: {result['wall_s']:.2f} s, {result['requests']:.0f} requests "
                  f"({result['batches']:.0f} batches), {result['throttled']:.0f} × 429, "
                  f"ratio {ratios[-1]:.3f}; sandbox CPU {sandbox_cpu:.2f} s "
                  f"({sandbox_cpu / result['requests'] * 1000:.1f} ms per request)")  # fmt: skip
    print(f"{len(rows):,} lines in {documents:,} documents; limit {args.max_items} items, {args.rate:g} requests/s")
    print(f"floor: {floor_requests} requests ÷ {args.rate:g}/s = {floor_s:.2f} s")
    print(f"median wall {median(walls):.2f} s; median wall ÷ floor {median(ratios):.3f} (target ≤ 1.15)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main()
