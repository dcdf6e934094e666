"""Delta lake commits on local disk and on a local S3 server (SeaweedFS): seconds per partition replace, one writer
and `--writers` processes on disjoint bases at once, and how many commits needed a retry.

    ./dev bench delta_commits [--writers 4] [--days 5]

Each commit replaces one base × day partition of 3-41 rows (`onec.delta_lake.replace_frame`): small and short on
purpose (the machine is shared), so the figures are the cost of a commit, not of the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onec.delta_lake import DeltaLake  # noqa: E402
from tests.delta_workload import write_versions  # noqa: E402
from tests.s3_server import running_s3_server  # noqa: E402

FIRST_DAY = dt.date(2025, 1, 1)


def measure(lake: DeltaLake, writers: int, days: int) -> dict[str, float]:
    day_list = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(days)]
    single = write_versions(lake, "single", day_list, 2)
    started = time.monotonic()
    with ProcessPoolExecutor(writers, mp_context=multiprocessing.get_context("spawn")) as pool:
        bases = [f"base{index}" for index in range(writers)]
        results = list(pool.map(write_versions, [lake] * writers, bases, [day_list] * writers, [2] * writers))
    wall = time.monotonic() - started
    concurrent = [commit for result in results for commit in result]
    return {
        "single_median_s": statistics.median(seconds for _, seconds in single[1:]),
        "concurrent_commits": len(concurrent),
        "concurrent_retried": sum(attempts > 1 for attempts, _ in concurrent),
        "concurrent_median_s": statistics.median(seconds for _, seconds in concurrent),
        "concurrent_wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        local = measure(DeltaLake(str(Path(scratch) / "delta")), args.writers, args.days)
        with running_s3_server(Path(scratch) / "seaweedfs") as server:
            s3 = measure(server.lake("bench"), args.writers, args.days)
    print(f"{'':24}{'local':>10}{'s3':>10}")
    for key in local:
        print(f"{key:24}{local[key]:>10.3f}{s3[key]:>10.3f}")


if __name__ == "__main__":
    main()
