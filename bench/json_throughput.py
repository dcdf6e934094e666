"""Rows/s and peak memory of the JSON path, at several sizes, against the raw fetch speed of the same pages.

    ./dev bench json_throughput [--lines 200000 800000 3200000] [--repeat 3]   (about 15 minutes)

For each size a sandbox 1C (unthrottled, no latency, awkward serialization on) runs in its own process and is read
once untimed first (it renders each page on first request and caches it: a cold first pass would time the sandbox,
not us). Two measurements per repeat, each in a fresh child process:
  fetch-only  the same client and paginator, goods and the six document types, pages parsed from JSON, then thrown
              away, one entity after another (the floor our work adds to);
  pipeline    the whole sync as the CLI and Dagster run it (`extract_all`, two entities at a time): pages → normalize
              → validate → staged Parquet → DuckDB transaction → Parquet lake.
Printed: medians of document lines/s for both, their ratio, the pipeline's peak RSS per size beside the fetch-only
peak, and the growth of the pipeline's peak for each step between sizes and overall.

The peak is a sum of parts each bounded by design (DuckDB's commit under its memory cap, the pages in flight,
Polars' batches, glibc's heap): it rises while those parts fill, then stays within a few percent. The runs that
showed it are in docs/benchmarks.md, History.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import deque
from datetime import date
from itertools import pairwise
from pathlib import Path

from harness import child_peak_rss_mb, median, run_child, sandbox_process

START, DAYS = date(2026, 1, 1), 31
LINES_PER_DOCUMENT = 5.5  # the generator's average


def child(mode: str, base_url: str, data_dir: str) -> None:
    from onec.allocator import pin_mmap_threshold
    from onec.config import Settings
    from onec.connect import open_client
    from onec.schema import DOCUMENT_SLUGS
    from onec.sync import extract_all
    from onec.warehouse import Warehouse

    settings = Settings.from_env({"ONEC_BASE_URL": base_url, "ONEC_RATE_LIMIT": "100000", "ONEC_MAX_CONNECTIONS": "4",
                                  "ONEC_PAGE_SIZE": "1000", "ONEC_DATA_DIR": data_dir})  # fmt: skip
    pin_mmap_threshold()  # as the CLI and the Dagster code location do
    end = date.fromordinal(START.toordinal() + DAYS)
    lines = 0
    started = time.perf_counter()
    with open_client(settings) as client:
        if mode == "fetch":
            deque(client.goods(), maxlen=0)  # the goods snapshot is read too, as the pipeline reads it
            for slug in DOCUMENT_SLUGS:
                for page in client.documents(slug, START, end):
                    lines += sum(len(doc.get("items") or ()) for doc in page)
        else:
            warehouse = Warehouse(Path(data_dir), settings.timezone)
            warehouse.initialize()
            results = extract_all(client, warehouse, date_from=START, date_to=end, snapshot_date=end, run_id="bench",
                                  timezone=settings.timezone)  # fmt: skip
            lines = sum(result.lines for result in results)
    elapsed = time.perf_counter() - started
    print(json.dumps({"lines": lines, "seconds": elapsed, "peak_rss_mb": child_peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, nargs="+", default=[200_000, 800_000, 3_200_000])  # 200k: the size
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "DIR"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{'lines':>8} {'fetch-only lines/s':>19} {'pipeline lines/s':>17} {'ratio':>6} {'peak RSS MB':>12}"
          f" {'fetch-only peak':>16}")  # fmt: skip
    peak_by_lines: dict[int, float] = {}
    for target in args.lines:
        documents = round(target / LINES_PER_DOCUMENT)
        with sandbox_process("--documents", str(documents), "--start", START.isoformat(), "--days", str(DAYS)) as url:
            with tempfile.TemporaryDirectory() as scratch:
                run_child(Path(__file__), ["fetch", url, scratch], {})  # warms the sandbox's page cache
            fetch, pipe, peaks, fetch_peaks, lines = [], [], [], [], 0
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as scratch:
                    f = run_child(Path(__file__), ["fetch", url, scratch], {})
                    p = run_child(Path(__file__), ["pipeline", url, scratch], {})
                fetch.append(f["lines"] / f["seconds"])
                pipe.append(p["lines"] / p["seconds"])
                peaks.append(p["peak_rss_mb"])
                fetch_peaks.append(f["peak_rss_mb"])
                lines = int(p["lines"])
        print(f"{lines:>8} {median(fetch):>19,.0f} {median(pipe):>17,.0f} {median(pipe) / median(fetch):>6.2f} "
              f"{median(peaks):>12.1f} {median(fetch_peaks):>16.1f}")  # fmt: skip
        peak_by_lines[lines] = median(peaks)
    sizes = sorted(peak_by_lines)
    steps = list(pairwise(sizes)) + ([(sizes[0], sizes[-1])] if len(sizes) > 2 else [])
    for small, large in steps:
        growth = peak_by_lines[large] / peak_by_lines[small]
        print(f"peak RSS growth from {small:,} to {large:,} lines ({large / small:.1f}x the data): {growth:.2f}x")


if __name__ == "__main__":
    main()
