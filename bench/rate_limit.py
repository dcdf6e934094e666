"""A paced sync against a rate-limited 1C: zero 429s, and wall time against the floor (requests ÷ rate).

    ./dev bench rate_limit [--rate 20] [--documents 12000] [--page-size 50] [--repeat 3]

The sandbox 1C (own process) allows `rate` requests/s (token bucket) and 8 concurrent connections, with 20 ms of
latency per answer. The client is configured with the same rate. A full sync (goods snapshot + six document types) of a
few hundred pages runs `repeat` times; printed are the medians of wall time and of wall ÷ floor, where the floor is
the requests actually made divided by the rate: no client can do better without breaking the limit.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import median, run_child, sandbox_process

START, DAYS = date(2026, 1, 1), 31


def child(base_url: str, rate: str, page_size: str, data_dir: str) -> None:
    from onec.config import Settings
    from onec.connect import open_client
    from onec.sync import extract_all
    from onec.warehouse import Warehouse

    settings = Settings.from_env({"ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": rate, "ONEC_MAX_CONNECTIONS": "8",
                                  "ONEC_PAGE_SIZE": page_size, "ONEC_DATA_DIR": data_dir})  # fmt: skip
    warehouse = Warehouse(Path(data_dir), settings.timezone)
    warehouse.initialize()
    end = date.fromordinal(START.toordinal() + DAYS)
    started = time.perf_counter()
    with open_client(settings) as client:
        results = extract_all(client, warehouse, date_from=START, date_to=end, snapshot_date=end,
                              run_id="bench", timezone=settings.timezone)  # fmt: skip
        stats = client.stats.snapshot()
    elapsed = time.perf_counter() - started
    pages = sum(-(-r.records // int(page_size)) for r in results)
    print(json.dumps({"seconds": elapsed, "requests": stats["requests"], "throttled": stats["throttled"],
                      "retries": stats["retries"], "pages": pages}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--documents", type=int, default=12000)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    options = ["--documents", str(args.documents), "--start", START.isoformat(), "--days", str(DAYS),
               "--rate-limit", str(args.rate), "--max-connections", "8", "--latency", "0.02"]  # fmt: skip
    runs = []
    with sandbox_process(*options) as url:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as scratch:
                runs.append(run_child(Path(__file__), [url, str(args.rate), str(args.page_size), scratch], {}))
    for run in runs:
        floor = run["requests"] / args.rate
        print(f"pages {run['pages']:.0f}  requests {run['requests']:.0f}  429s {run['throttled']:.0f}  "
              f"retries {run['retries']:.0f}  wall {run['seconds']:.2f} s  floor {floor:.2f} s  "
              f"ratio {run['seconds'] / floor:.3f}")  # fmt: skip
    ratios = [run["seconds"] / (run["requests"] / args.rate) for run in runs]
    print(f"median wall ÷ floor: {median(ratios):.3f} (target ≤ 1.2); "
          f"429s received in all runs: {sum(r['throttled'] for r in runs):.0f} (target 0)")  # fmt: skip


if __name__ == "__main__":
    main()
