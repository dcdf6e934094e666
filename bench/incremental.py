"""Requests and wall time of incremental runs against a full extract of the same sandbox 1C, measured in one run.

    ./dev bench incremental [--documents 20000] [--changes 50] [--repeat 3] [--latency 0.02]

The sandbox runs in-process (so this script can mutate it between runs) with `latency` seconds per answer, as a
real 1C takes 50–500 ms a page. Printed: the full extract (goods snapshot + six types over the whole base) as the
baseline, the incremental bootstrap, an incremental run after a quiet day (no changes), and after a day of
`changes` mixed changes (edits to month-old documents, deletion marks, moves, new documents, price changes);
medians of `repeat` runs, with the ratio to the full extract.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from harness import median

from onec.config import Settings
from onec.connect import open_client
from onec.incremental import sync_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sync import extract_all, local_today
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
DAYS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    data = SandboxData.generate(seed=1, documents=args.documents, start=local_today(ZONE) - timedelta(days=DAYS),
                                days=DAYS, timezone=ZONE)  # fmt: skip
    engine = SandboxEngine(data, SandboxConfig(latency_s=args.latency))
    zone = ZoneInfo(ZONE)
    mutator = SandboxMutator(data, seed=2, clock=lambda: datetime.now(zone) - timedelta(seconds=1))
    with tempfile.TemporaryDirectory() as root:
        settings = Settings(timezone=ZONE, data_dir=Path(root), page_size=500, rate_limit=10_000, max_connections=8)
        full = _full(engine, settings, data, Path(root) / "full")
        warehouse = Warehouse(Path(root) / "incremental", ZONE)
        warehouse.initialize()
        rows = [
            ("full extract (baseline)", *full),
            ("incremental bootstrap", *_incremental(engine, settings, warehouse)),
        ]
        quiet = [_incremental(engine, settings, warehouse) for _ in range(args.repeat)]
        rows.append(("incremental, quiet day", *_medians(quiet)))
        busy = []
        for _ in range(args.repeat):
            mutator.random_changes(args.changes)
            busy.append(_incremental(engine, settings, warehouse))
        rows.append((f"incremental, {args.changes} changes", *_medians(busy)))
    latency_ms = args.latency * 1000
    print(f"{args.documents} documents over {DAYS} days, {latency_ms:.0f} ms per answer, medians of {args.repeat}")
    print(f"{'run':32} {'requests':>9} {'× full':>8} {'rows':>8} {'seconds':>8} {'× full':>8}")
    for name, requests, landed, seconds in rows:
        print(
            f"{name:32} {requests:9.0f} {requests / full[0]:8.4f} {landed:8.0f} {seconds:8.2f} {seconds / full[2]:8.4f}"
        )


def _full(engine: SandboxEngine, settings: Settings, data: SandboxData, directory: Path) -> tuple[float, float, float]:
    warehouse = Warehouse(directory, ZONE)
    warehouse.initialize()
    started = time.perf_counter()
    with open_client(settings, engine=engine) as client:
        results = extract_all(client, warehouse, date_from=data.start, date_to=data.start + timedelta(days=DAYS),
                              snapshot_date=local_today(ZONE), run_id="full", timezone=ZONE)  # fmt: skip
    requests = sum(r.http.get("requests", 0) for r in results)
    return requests, sum(r.rows for r in results), time.perf_counter() - started


def _incremental(engine: SandboxEngine, settings: Settings, warehouse: Warehouse) -> tuple[float, float, float]:
    started = time.perf_counter()
    with open_client(settings, engine=engine) as client:
        results = sync_changes(client, warehouse, run_id="bench", timezone=ZONE)
    requests = sum(r.extract.http.get("requests", 0) for r in results)
    return requests, sum(r.extract.rows for r in results), time.perf_counter() - started


def _medians(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return median([r[0] for r in runs]), median([r[1] for r in runs]), median([r[2] for r in runs])


if __name__ == "__main__":
    main()
