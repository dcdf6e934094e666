"""`onec-etl`: the demo, the sandbox server, a sync against the configured 1C, and SQL on the warehouse.

Every failure a user can cause (bad configuration, unreachable 1C, bad SQL, a busy warehouse) ends as one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from onec.allocator import pin_mmap_threshold
from onec.client import OneCClient
from onec.config import AuthMethod, ConfigError, Secret, Settings, SourceKind
from onec.connect import open_client, open_session, sandbox_window
from onec.exchange_files import load_files
from onec.http.errors import OneCError
from onec.incremental import GOODS, clock_tolerance_from_env, overlap_from_env, run_warnings, sync_changes
from onec.progress import Progress
from onec.push.command import add_push_command
from onec.sandbox.certs import make_test_pki
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import TlsFiles, running_server, serve
from onec.schema import DOCUMENT_SLUGS
from onec.sources import open_source
from onec.sync import ExtractResult, extract_all, local_today
from onec.warehouse import Warehouse
from onec.webhooks.commands import add_webhook_commands

SANDBOX_DEFAULTS = SandboxConfig()
EXIT_RUNTIME = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    pin_mmap_threshold()
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="onec-etl: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        return _fail(f"configuration: {exc}", EXIT_USAGE)
    except OneCError as exc:
        return _fail(f"1C: {exc}", EXIT_RUNTIME)
    except duckdb.Error as exc:
        return _fail(f"warehouse: {exc}".splitlines()[0], EXIT_RUNTIME)
    except (ValueError, OSError) as exc:
        return _fail(str(exc), EXIT_RUNTIME)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing half-landed (re-run to continue)", 130)


def _fail(message: str, code: int) -> int:
    print(f"onec-etl: error: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onec-etl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="start a sandbox 1C, run the full sync into data/, print a summary")
    demo.add_argument("--documents", type=int, default=3000, help="documents the sandbox generates (default 3000)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--fault-rate", type=float, default=0.03, help="share of requests the sandbox fails")
    demo.set_defaults(handler=_demo)

    sandbox = commands.add_parser("sandbox", help="serve the sandbox 1C over HTTP")
    _add_sandbox_options(sandbox)
    sandbox.set_defaults(handler=_sandbox)

    sync = commands.add_parser("sync", help="extract from the configured 1C (ONEC_*) into the warehouse")
    sync.add_argument("--from", dest="date_from", type=date.fromisoformat, help="first document date (YYYY-MM-DD)")
    sync.add_argument("--to", dest="date_to", type=date.fromisoformat, help="end of the range, exclusive")
    sync.add_argument("--types", nargs="+", choices=DOCUMENT_SLUGS, default=list(DOCUMENT_SLUGS))
    sync.add_argument(
        "--source", choices=[kind.value for kind in SourceKind], help="way into 1C (default: ONEC_SOURCE, else json)"
    )
    mode = sync.add_mutually_exclusive_group()
    mode.add_argument("--incremental", action="store_true", help="only what changed since each entity's cursor")
    mode.add_argument(
        "--full", action="store_true", help="every document since ONEC_PARTITIONS_START (cursors are not touched)"
    )
    sync.set_defaults(handler=_sync)

    load = commands.add_parser("load", help="land exchange files (UDE XML, CSV export, CommerceML) into the warehouse")
    load.add_argument("paths", nargs="+", type=Path, help="files; CommerceML import + offers files form one set")
    load.add_argument("--type", dest="doc_type", choices=DOCUMENT_SLUGS, help="document type of CSV document lines")
    load.add_argument("--snapshot-date", type=date.fromisoformat, help="goods snapshot day (default: the file's)")
    load.set_defaults(handler=_load)

    query = commands.add_parser("query", help="run SQL against data/warehouse.duckdb (read-only)")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(handler=_query)

    add_push_command(commands)
    add_webhook_commands(commands)
    return parser


def _add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, help="first document date (default: 30 days ago)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--bad-records", type=int, default=0, help="deliberately invalid records to include")
    parser.add_argument("--rate-limit", type=float, help="requests/s per credential; over it: 429 + Retry-After")
    parser.add_argument("--max-connections", type=int, help="concurrent requests; over it: 429")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests failed (500/503/drops)")
    parser.add_argument("--timezone", default="Europe/Moscow", help="the 1C server's zone: it stamps dates in it")
    parser.add_argument(
        "--clock-offset", type=float, default=0.0, help="seconds the 1C server's clock runs ahead (negative: behind)"
    )
    parser.add_argument("--auth", choices=("none", "basic", "bearer", "api_key"), default="none")
    parser.add_argument("--username", default="обмен")
    parser.add_argument("--password", default="пароль")
    parser.add_argument("--api-key", default="sk-test-1c")
    parser.add_argument(
        "--tls-dir", type=Path, help="serve HTTPS with a generated test PKI here, client certs required"
    )


def _sandbox(args: argparse.Namespace) -> int:
    engine = _sandbox_engine(args)
    tls = None
    if args.tls_dir is not None:
        pki = make_test_pki(args.tls_dir)
        tls = TlsFiles(certfile=pki.server_cert, keyfile=pki.server_key, ca_certs=pki.ca_cert, require_client_cert=True)
        print(
            f"client certificate: {pki.client_cert}  key: {pki.client_key}  CA: {pki.ca_cert}",
            file=sys.stderr,
        )
    scheme = "https" if tls else "http"
    print(f"sandbox 1C at {scheme}://127.0.0.1:{args.port}{engine.config.base_path}", file=sys.stderr)
    serve(engine, host="127.0.0.1", port=args.port, tls=tls)
    return 0


def _sandbox_engine(args: argparse.Namespace) -> SandboxEngine:
    start = args.start or local_today(args.timezone) - timedelta(days=args.days)
    data = SandboxData.generate(
        seed=args.seed,
        documents=args.documents,
        start=start,
        days=args.days,
        bad_records=args.bad_records,
        timezone=args.timezone,
    )
    rate = args.fault_rate
    faults = FaultConfig(error_500=rate / 3, error_503=rate / 3, drop=rate / 6, truncate=rate / 6)
    config = SandboxConfig(
        auth=args.auth,
        username=args.username,
        password=args.password,
        api_key=args.api_key,
        rate_limit=args.rate_limit,
        max_connections=args.max_connections,
        latency_s=args.latency,
        faults=faults,
        seed=args.seed,
        clock_offset_s=args.clock_offset,
    )
    return SandboxEngine(data, config)


def _demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rate, connections = 200.0, 8
    sandbox_args = argparse.Namespace(
        seed=args.seed, documents=args.documents, start=None, days=30, bad_records=6, rate_limit=rate,
        max_connections=connections, latency=0.002, fault_rate=args.fault_rate, auth="basic",
        username=SANDBOX_DEFAULTS.username, password=SANDBOX_DEFAULTS.password, api_key="", tls_dir=None,
        timezone=settings.timezone, clock_offset=0.0,
    )  # fmt: skip
    engine = _sandbox_engine(sandbox_args)
    date_from, date_to = sandbox_window(settings.timezone, days=30)
    print(f"Starting a sandbox 1C with {args.documents} documents ({date_from} .. {date_to}), "
          f"{rate:.0f} requests/s, {args.fault_rate:.0%} of requests failing on purpose.")  # fmt: skip
    with running_server(engine) as base_url:
        settings = dataclasses.replace(
            settings, base_url=base_url, auth=AuthMethod.BASIC, username=SANDBOX_DEFAULTS.username,
            password=Secret(SANDBOX_DEFAULTS.password), page_size=100,
            rate_limit=rate, max_connections=connections,
        )  # fmt: skip
        results, elapsed = _timed_sync(settings, date_from, date_to, list(DOCUMENT_SLUGS))
    _print_summary(settings, results, elapsed)
    return 0


def _sync(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.source:
        settings = dataclasses.replace(settings, source=SourceKind(args.source))
    if args.incremental:
        return _incremental_sync(settings, args.types)
    today = local_today(settings.timezone)
    date_to = args.date_to or today
    full_start = date.fromisoformat(os.environ.get("ONEC_PARTITIONS_START", "2025-01-01"))
    date_from = args.date_from or (full_start if args.full else date_to - timedelta(days=3))
    if date_to <= date_from:
        raise ValueError(f"--to ({date_to}) must be after --from ({date_from}); the end is exclusive")
    where = settings.base_url or "the embedded sandbox (ONEC_BASE_URL is not set)"
    print(f"Syncing {date_from} .. {date_to} (exclusive) from {where}", file=sys.stderr)
    results, elapsed = _timed_sync(settings, date_from, date_to, args.types)
    _print_summary(settings, results, elapsed)
    return 0


def _incremental_sync(settings: Settings, doc_types: list[str]) -> int:
    """Goods and the chosen types, each from its change cursor (bootstrapped by a full scan the first time).
    Always the JSON exchange service: it is the way into 1C that filters by modification time."""
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    warehouse.initialize()
    started = time.perf_counter()
    run_id = f"cli-incremental-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    print(f"Incremental sync from {settings.base_url or 'the embedded sandbox'}", file=sys.stderr)
    with open_client(settings) as client, Progress(sys.stderr) as progress:
        results = sync_changes(
            client,
            warehouse,
            run_id=run_id,
            timezone=settings.timezone,
            entities=[GOODS, *doc_types],
            overlap=overlap_from_env(),
            tolerance=clock_tolerance_from_env(),
            on_records=progress.advance,
        )
    for result in results:
        since = result.window.since.isoformat() if result.window.since else "the beginning (first run)"
        cursor = result.cursor.isoformat() if result.cursor else "none yet (1C sent no modified_at)"
        print(f"  {result.entity}: changes since {since}, cursor {cursor}", file=sys.stderr)
    _print_summary(settings, [r.extract for r in results], time.perf_counter() - started)
    for warning in run_warnings(results):
        print(f"WARNING {warning}", file=sys.stderr)
    return 0


def _timed_sync(
    settings: Settings, date_from: date, date_to: date, doc_types: list[str]
) -> tuple[list[ExtractResult], float]:
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    warehouse.initialize()
    started = time.perf_counter()
    run_id = f"cli-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    with open_session(settings) as session, Progress(sys.stderr) as progress:
        if settings.source is not SourceKind.ODATA:
            OneCClient(session).version()
        results = extract_all(
            open_source(settings, session),
            warehouse,
            date_from=date_from,
            date_to=date_to,
            snapshot_date=local_today(settings.timezone),
            run_id=run_id,
            timezone=settings.timezone,
            doc_types=doc_types,
            on_records=progress.advance,
        )
    return results, time.perf_counter() - started


def _load(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    warehouse.initialize()
    started = time.perf_counter()
    run_id = f"load-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    results = load_files(
        args.paths,
        warehouse,
        timezone=settings.timezone,
        run_id=run_id,
        doc_type=args.doc_type,
        snapshot_date=args.snapshot_date,
    )
    _print_summary(settings, results, time.perf_counter() - started)
    return 0


def _print_summary(settings: Settings, results: list[ExtractResult], elapsed: float) -> None:
    rows = [
        {
            "entity": r.doc_type or r.entity,
            "records": r.records,
            "rows": r.rows,
            "lines": r.lines,
            "rejected": r.rejected,
            "duplicates": r.duplicates,
            "requests": r.http.get("requests", 0),
            "retries": r.http.get("retries", 0),
            "throttled": r.http.get("throttled", 0),
            "seconds": r.elapsed_s,
        }
        for r in results
    ]
    frame = pl.DataFrame(rows)
    _print_frame(frame.vstack(_totals(frame)))
    data = settings.data_dir
    print(f"\nDone in {elapsed:.1f} s.")
    print(f"Warehouse: {data / 'warehouse.duckdb'} (tables goods, documents, document_lines, rejected_rows)")
    print(f"Parquet lake: {data / 'lake'} (hive partitions, zstd)")
    print("Query it (from the repository, `./dev onec-etl …` does the same as `onec-etl …`):")
    print('  onec-etl query "SELECT doc_type, count(*) AS documents FROM documents GROUP BY ALL ORDER BY 1"')
    print('  onec-etl query "SELECT entity, reason, raw FROM rejected_rows LIMIT 5"')
    print("Or read the lake with only Polars or DuckDB installed:")
    print(f"  python -c \"import polars as pl; print(pl.scan_parquet('{data}/lake/goods/**/*.parquet').collect())\"")
    lines_glob = f"{data}/lake/document_lines/**/*.parquet"
    print(f"  python -c \"import duckdb; duckdb.read_parquet('{lines_glob}', hive_partitioning=True).show()\"")


def _totals(frame: pl.DataFrame) -> pl.DataFrame:
    sums = frame.drop("entity").sum().with_columns(pl.col("seconds").round(3))
    return pl.concat([pl.DataFrame({"entity": ["total"]}), sums], how="horizontal").select(frame.columns)


def _query(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    if not warehouse.database.exists():
        raise ValueError(f"no warehouse at {warehouse.database}: run `onec-etl demo` or `onec-etl sync` first")
    frame = warehouse.query(args.sql)
    writers: dict[str, Callable[[pl.DataFrame], None]] = {
        "table": _print_frame,
        "csv": lambda f: print(f.write_csv(), end=""),
        "json": lambda f: print(f.write_json()),
    }
    writers[args.format](frame)
    return 0


def _print_frame(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=100, tbl_cols=30, fmt_str_lengths=60, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=200):  # fmt: skip
        print(frame)


if __name__ == "__main__":
    raise SystemExit(main())
