"""Peak memory of `onec-etl load` on a CSV with one huge field: bounded by the record limit, not by the field.

    .venv/bin/python bench/huge_field.py [--mb 300] [--spelling quoted unquoted] [--old]

Writes a shipments CSV (document lines, §1.4 headers) of a few ordinary documents, one line whose Notes field is
`--mb` MB (quoted, or unquoted), and more ordinary documents after it; runs the command line on it in a child
process with a fresh data directory, and prints the child's own peak RSS (`os.wait4`) beside the file size, the
exit code, what landed and the rejected row's reason. Not a timed test: the figure to watch is the peak, which must
stay under 500 MB with the default limits (ONEC_CSV_MAX_FIELD_BYTES 1 MB, ONEC_CSV_MAX_RECORD_BYTES 4 MB).

Its runs, before and after the record limit, are in docs/benchmarks.md, History.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
HEADER = "Number,Date,Status,Counterparty,Warehouse,Line,SKU,Quantity,UnitPrice,Total,Notes\n"
ORDINARY = 50


def write_file(path: Path, megabytes: int, spelling: str) -> None:
    """Ordinary lines, the huge one (document H-1), ordinary lines; the huge value is written in 1 MB pieces."""
    piece = "ж" * (512 * 1024)  # 1 MB of UTF-8
    quote = '"' if spelling == "quoted" else ""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for n in range(ORDINARY):
            handle.write(_line(f"A-{n}", n))
        handle.write(f"H-1,2026-01-10T10:00:00,posted,ООО Ромашка,wh-main,1,P1,1,10.00,10.00,{quote}")
        for _ in range(megabytes):
            handle.write(piece)
        handle.write(f"{quote}\n")
        for n in range(ORDINARY):
            handle.write(_line(f"B-{n}", n))


def _line(number: str, n: int) -> str:
    return f"{number},2026-01-{1 + n % 28:02d}T10:00:00,posted,ООО Ромашка,wh-main,1,P1,2,10.00,20.00,ok\n"


def measure(path: Path, data_dir: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MB, last line of stderr) of `onec-etl load PATH` in a child process."""
    env = {**os.environ, "ONEC_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "onec.cli", "load", str(path), "--type", "shipment"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        last = (err.read().decode(errors="replace").strip().splitlines() or [""])[-1]
    return process.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024, last


def landed(data_dir: Path) -> tuple[int, list[tuple[str, str]]]:
    """Documents in the warehouse, and the rejected rows (key, reason)."""
    database = data_dir / "warehouse.duckdb"
    if not database.exists():
        return 0, []
    with duckdb.connect(str(database), read_only=True) as con:
        documents = con.execute("SELECT count(*) FROM documents").fetchone()
        rejected = con.execute("SELECT record_key, reason FROM rejected_rows ORDER BY record_key").fetchall()
    return int(documents[0]) if documents else 0, [(str(k), str(r)) for k, r in rejected]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=300, help="size of the huge field in MB")
    parser.add_argument("--spelling", nargs="+", choices=("quoted", "unquoted"), default=["quoted", "unquoted"])
    args = parser.parse_args()
    print(f"{'spelling':<9} {'file MB':>8} {'exit':>4} {'seconds':>8} {'peak RSS MB':>11} {'documents':>9}  rejected")
    for spelling in args.spelling:
        with tempfile.TemporaryDirectory(prefix="huge-field-") as scratch:
            path = Path(scratch) / "shipment-huge.csv"
            write_file(path, args.mb, spelling)
            code, seconds, peak, last = measure(path, Path(scratch) / "data")
            documents, rejected = landed(Path(scratch) / "data")
            shown = "; ".join(reason[:110] for _, reason in rejected) or f"none ({last[:120]})"
            size = path.stat().st_size / 1e6
            print(f"{spelling:<9} {size:>8.0f} {code:>4} {seconds:>8.1f} {peak:>11.0f} {documents:>9}  {shown}")


if __name__ == "__main__":
    main()
