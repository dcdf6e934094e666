"""What a Delta lake costs to keep fast as nights pile up: files, scan time, compaction and vacuum, per layout.

    ./dev bench delta_maintenance [--bases 4] [--nights 120] [--lines-per-day 20000] [--lookback 3]

Simulates the nightly job on a Delta table of document lines: every night, for every base, the last `lookback` days
are replaced (a predicate overwrite of those days, as the incremental window re-lands them) and one new day is added.
Two layouts are built side by side from the same rows:
  by-day    partitioned by base and day: one small file per base × day, rewritten whole on each replace;
  by-month  partitioned by base and month, the day a column: a replace rewrites the files of that month holding the
            days, so a month accumulates one file per night until compacted.
Printed per layout: the median commit time of a night (one commit per base), the active files, the time to scan the
whole table through `DeltaTable.to_pyarrow_dataset()` (count and sum of a quantity column: what an analyst's query
pays to open every file) and the time to open the table (replaying its log to the file list), then the same after
`optimize.compact()` and `vacuum(retention_hours=0)`, with their times.
The figures feed the capacity plan in docs/scaling.md, which scales them to 10^8-10^9 lines.

Needs `deltalake` (the lake's own dependency); runs on local disk in a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

START = dt.date(2024, 1, 1)


def day_rows(base: str, day: dt.date, lines: int, version: int) -> pa.Table:
    """One base's lines of one day; `version` changes the values so a replace really rewrites them."""
    index = pa.array(range(lines), pa.int64())
    return pa.table(
        {
            "base": pa.array([base] * lines, pa.string()),
            "month": pa.array([day.strftime("%Y-%m")] * lines, pa.string()),
            "partition_date": pa.array([day] * lines, pa.date32()),
            "document_id": pc.cast(pc.divide(index, 5), pa.string()),
            "line": pc.add(pc.remainder(index, 5), 1),
            "quantity": pc.cast(pc.cast(pc.add(pc.remainder(index, 97), version), pa.int32()), pa.decimal128(15, 3)),
        }
    )


def night(uri: str, layout: str, bases: list[str], today: dt.date, lines: int, lookback: int) -> list[float]:
    """Replace the lookback window and add today for every base: one commit per base, timed."""
    days = [day for back in range(lookback, -1, -1) if (day := today - dt.timedelta(days=back)) >= START]
    timings = []
    for base in bases:
        rows = pa.concat_tables([day_rows(base, day, lines, today.toordinal()) for day in days])
        predicate = f"base = '{base}' AND partition_date >= '{days[0].isoformat()}' AND partition_date <= '{today}'"
        partition_by = ["base", "partition_date"] if layout == "by-day" else ["base", "month"]
        exists = (Path(uri) / "_delta_log").exists()
        started = time.perf_counter()
        write_deltalake(uri, rows, partition_by=partition_by, mode="overwrite" if exists else "error",
                        predicate=predicate if exists else None)  # fmt: skip
        timings.append(time.perf_counter() - started)
    return timings


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def scan(uri: str) -> tuple[int, Any]:
    dataset = DeltaTable(uri).to_pyarrow_dataset()
    table = dataset.to_table(columns=["quantity"])
    return table.num_rows, pc.sum(table.column("quantity")).as_py()


def measure(root: Path, layout: str, bases: list[str], nights: int, lines: int, lookback: int) -> dict[str, Any]:
    uri = str(root / layout)
    commits: list[float] = []
    for offset in range(nights):
        commits.extend(night(uri, layout, bases, START + dt.timedelta(days=offset), lines, lookback))
    open_time, files = timed(lambda: DeltaTable(uri).file_uris())
    files_before = len(files)
    scan_before, (rows, total) = timed(lambda: scan(uri))
    compact_time, compacted = timed(lambda: DeltaTable(uri).optimize.compact())
    vacuum_time, removed = timed(
        lambda: DeltaTable(uri).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    )
    files_after = len(DeltaTable(uri).file_uris())
    scan_after, (rows_after, total_after) = timed(lambda: scan(uri))
    if (rows_after, total_after) != (rows, total):
        changed = f"({rows}, {total}) -> ({rows_after}, {total_after})"
        raise AssertionError(f"{layout}: compaction changed the table {changed}")
    return {
        "layout": layout,
        "rows": rows,
        "commit_median_s": statistics.median(commits),
        "commits": len(commits),
        "open_s": open_time,
        "files_before": files_before,
        "scan_before_s": scan_before,
        "compact_s": compact_time,
        "compact_files_removed": compacted.get("numFilesRemoved"),
        "vacuum_s": vacuum_time,
        "vacuum_files_deleted": len(removed),
        "files_after": files_after,
        "scan_after_s": scan_after,
        "bytes": sum(path.stat().st_size for path in Path(uri).rglob("*.parquet")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=4)
    parser.add_argument("--nights", type=int, default=120)
    parser.add_argument("--lines-per-day", type=int, default=20_000)
    parser.add_argument("--lookback", type=int, default=3)
    arguments = parser.parse_args()
    bases = [f"base{number:02d}" for number in range(arguments.bases)]
    root = Path(tempfile.mkdtemp(prefix="delta-maintenance-"))
    try:
        print(f"{arguments.bases} bases x {arguments.nights} nights x {arguments.lines_per_day:,} lines a day,"
              f" lookback {arguments.lookback} days")  # fmt: skip
        header = ("layout", "rows", "commits", "commit s", "open s", "files", "scan s", "compact s", "vacuum s",
                  "files after", "scan after s", "MB")  # fmt: skip
        print(" | ".join(header))
        for layout in ("by-day", "by-month"):
            result = measure(root, layout, bases, arguments.nights, arguments.lines_per_day, arguments.lookback)
            cells = (layout, f"{result['rows']:,}", f"{result['commits']:,}", f"{result['commit_median_s']:.3f}",
                     f"{result['open_s']:.3f}", f"{result['files_before']:,}", f"{result['scan_before_s']:.2f}",
                     f"{result['compact_s']:.1f}", f"{result['vacuum_s']:.1f}", f"{result['files_after']:,}",
                     f"{result['scan_after_s']:.2f}", f"{result['bytes'] / 1e6:.0f}")  # fmt: skip
            print(" | ".join(cells))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
