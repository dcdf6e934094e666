"""One nightly goods landing's lake write with a long goods_history: the write must follow what changed, not the
history kept (goods_history by closed month).

    ./dev bench history_lake_write [--history 1000000] [--runs 3]

A warehouse with 20k positions, `--history` closed versions spread over 1000 days before (inserted directly, then
mirrored), and a landing of the next day that changes 1% of the positions: prints the landing's commit and the part
of it spent writing the lake (`lake_mirror.complete_pending`), beside the same landing over no old versions, measured
in the same run: the ratio should stay near 1 however long the history. Small on purpose: the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import median  # noqa: E402
from onec import lake_mirror  # noqa: E402
from onec.lake_check import check_lake  # noqa: E402
from onec.validation import check_goods  # noqa: E402
from onec.warehouse import Warehouse  # noqa: E402

ZONE = "Europe/Moscow"
POSITIONS = 20_000
UNCHANGED_SINCE = dt.date(2026, 10, 1)
"""1C's modified_at of the positions a landing does not change (it is one of the attributes history follows)."""
OLD_VERSIONS = (
    "INSERT INTO goods_history (sku, warehouse, name, quantity, deleted, modified_at, valid_from, valid_to, run_id)"
    " SELECT 'OLD-' || (i % 50000), 'wh-main', 'Товар', (i % 100)::DECIMAL(18,3), false, ts, ts, ts + INTERVAL 1 DAY,"
    " 'bench' FROM (SELECT i, TIMESTAMPTZ '2024-01-01 00:00:00+00' + (i % 1000) * INTERVAL 1 DAY AS ts"
    " FROM range(?) t(i))"
)


def land(warehouse: Warehouse, day: dt.date, changed: int, run_id: str) -> float:
    records = [
        {
            "sku": f"SKU-{n}",
            "name": "Товар",
            "quantity": n % 50 + (7 if n < changed else 0),
            "warehouse": "wh-main",
            "modified_at": f"{(day if n < changed else UNCHANGED_SINCE).isoformat()}T09:00:00",
        }
        for n in range(POSITIONS)
    ]
    with warehouse.goods_snapshot(day, run_id=run_id, source="json") as landing:
        landing.add(check_goods(records, snapshot_date=day, timezone=ZONE, run_id=run_id))
        return landing.commit().elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="closed versions held before the landing")
    parser.add_argument("--runs", type=int, default=3, help="runs per size, medians taken")
    args = parser.parse_args()
    figures = {size: [measure(size) for _ in range(args.runs)] for size in (0, args.history)}
    for size, runs in figures.items():
        rows = runs[0][0]
        commit, write = median([run[1] for run in runs]), median([run[2] for run in runs])
        print(f"{size:>10,} old versions: goods_history {rows:,} rows; commit {commit:.2f} s, lake write {write:.2f} s")
    base, long = (median([run[2] for run in figures[size]]) for size in (0, args.history))
    print(f"lake write with {args.history:,} old versions is {long / base:.2f}x the one with none (medians)")


def measure(history: int) -> tuple[int, float, float]:
    """(goods_history rows, the nightly landing's commit s, its lake write s) over `history` old closed versions."""
    lake_writes: list[float] = []
    complete = lake_mirror.complete_pending

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return complete(*args, **kwargs)
        finally:
            lake_writes.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as directory:
        warehouse = Warehouse(Path(directory) / "data", ZONE)
        warehouse.initialize()
        land(warehouse, dt.date(2026, 11, 1), 0, "first")
        with warehouse.writer() as con:
            con.execute(OLD_VERSIONS, [history])
        check_lake(warehouse, repair=True)
        lake_mirror.complete_pending = timed
        try:
            commit = land(warehouse, dt.date(2026, 11, 2), POSITIONS // 100, "nightly")
        finally:
            lake_mirror.complete_pending = complete
        rows = int(warehouse.query("SELECT count(*) FROM goods_history").item())
    return rows, commit, lake_writes[-1]


if __name__ == "__main__":
    main()
