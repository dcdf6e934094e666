"""One nightly goods landing's lake write with a long goods_history: the write must follow what changed, not the
history kept (goods_history by closed month).

    ./dev bench history_lake_write [--history 1000000]

A warehouse with 20k positions, `--history` closed versions spread over 1000 days before (inserted directly, then
mirrored), and a landing of the next day that changes 1% of the positions: prints the landing's commit and the part
of it spent writing the lake (`lake_mirror.complete_pending`). Small on purpose: the machine is shared.
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

from onec import lake_mirror  # noqa: E402
from onec.lake_check import check_lake  # noqa: E402
from onec.validation import check_goods  # noqa: E402
from onec.warehouse import Warehouse  # noqa: E402

ZONE = "Europe/Moscow"
POSITIONS = 20_000
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
            "modified_at": f"{day.isoformat()}T09:00:00",
        }
        for n in range(POSITIONS)
    ]
    with warehouse.goods_snapshot(day, run_id=run_id, source="json") as landing:
        landing.add(check_goods(records, snapshot_date=day, timezone=ZONE, run_id=run_id))
        return landing.commit().elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="closed versions held before the landing")
    history = parser.parse_args().history
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
        commit = land(warehouse, dt.date(2026, 11, 2), POSITIONS // 100, "nightly")
        rows = warehouse.query("SELECT count(*) FROM goods_history").item()
    write = lake_writes[-1]
    print(f"goods_history {rows:,} rows; the nightly landing's commit {commit:.2f} s, its lake write {write:.2f} s")


if __name__ == "__main__":
    main()
