"""`onec-etl`: the demo, the sandbox server, a sync against the configured 1C, SQL on the warehouse, and the check
that the Parquet lake equals the warehouse.

Every failure a user can act on (a `UserFacingError`: bad configuration, a bad file, unreachable 1C, a busy
warehouse, a full disk; bad SQL; a file that cannot be opened) ends as one line on stderr and exit code 1 (2 for a
usage mistake); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from onec import delta_lake
from onec.allocator import pin_mmap_threshold
from onec.analyst_outputs import AnalystOutputs, build_analyst_outputs
from onec.client import OneCClient
from onec.config import AuthMethod, ConfigError, Secret, Settings, SourceKind, load_bases
from onec.connect import open_client, open_session, open_warehouse, sandbox_window
from onec.errors import EXIT_RUNTIME, UsageError, UserFacingError, one_line, storage_error
from onec.exchange_files import load_files
from onec.http.errors import OneCError
from onec.incremental import GOODS, run_warnings, sync_changes
from onec.lake_check import LakeCheck, check_lake
from onec.odata_inspect import inspect as inspect_models
from onec.odata_inspect import read_metadata, report
from onec.progress import Progress
from onec.push.command import add_push_command
from onec.redact import redact_url
from onec.sandbox.certs import make_test_pki
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import ODATA_CONFIGURATIONS, FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import TlsFiles, running_server, serve
from onec.schema import DOCUMENT_SLUGS
from onec.sources import open_source
from onec.sources.odata import odata_root
from onec.sync import ExtractResult, Interrupted, extract_all, local_today
from onec.warehouse import ShrinkRefused, Warehouse
from onec.webhooks.commands import add_webhook_commands

SANDBOX_DEFAULTS = SandboxConfig()
_SUMMARY_SCHEMA = {
    "entity": pl.String,
    **dict.fromkeys(
        ("records", "rows", "lines", "rejected", "duplicates", "requests", "retries", "throttled"), pl.Int64
    ),
    "seconds": pl.Float64,
}
"""The summary's columns, spelled out: a run that landed nothing still prints its (empty) table."""
EXIT_INTERRUPTED = 130
FETCH_THREADS = ("extract", "onec-page", "onec-prefetch")
DIFFERENCES_SHOWN = 20


def main(argv: Sequence[str] | None = None) -> int:
    pin_mmap_threshold()
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="onec-etl: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        return int(args.handler(args))
    except Interrupted as exc:
        print(f"onec-etl: {exc} (each entity whole or not at all; re-run to fetch what was discarded)", file=sys.stderr)
        _exit_now_if_fetches_linger(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return _fail("interrupted; nothing half-landed (re-run to continue)", EXIT_INTERRUPTED)
    except Exception as exc:
        error = _user_facing(exc)
        if error is None:
            raise
        return _fail(_labelled(error), error.exit_code)


def _user_facing(exc: Exception) -> UserFacingError | None:
    """The error as a person should read it; None for a bug. DuckDB's errors here are the SQL of `query` or a
    warehouse file it cannot open; an OSError is a file or directory the command was pointed at."""
    if isinstance(exc, UserFacingError):
        return exc
    error = storage_error(exc)
    if error is not None:
        return error
    if isinstance(exc, duckdb.Error):
        return UserFacingError(f"warehouse: {one_line(exc)}")
    if isinstance(exc, OSError):
        return UserFacingError(str(exc))
    return None


def _labelled(error: UserFacingError) -> str:
    label = "configuration: " if isinstance(error, ConfigError) else "1C: " if isinstance(error, OneCError) else ""
    return f"{label}{one_line(error)}"


def _exit_now_if_fetches_linger(code: int) -> None:
    """A page request of a discarded entity may still be waiting on 1C; its result is unwanted, and the interpreter
    would wait for its thread at exit, so leave at once instead (what it staged is removed by the next run)."""
    if any(t.is_alive() and t.name.startswith(FETCH_THREADS) for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _day(text: str) -> date:
    """A YYYY-MM-DD argument, with the reason in plain words when it is not a date."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        reason = str(exc) if "out of range" in str(exc) else "expected YYYY-MM-DD"
        raise argparse.ArgumentTypeError(f"{text!r} is not a date ({reason})") from None


def _base_settings(args: argparse.Namespace) -> Settings:
    """The settings of the base `--base` names; without it, of the only base configured (`main` without a file)."""
    return load_bases().chosen(args.base)


def _fail(message: str, code: int) -> int:
    print(f"onec-etl: error: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onec-etl", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", help="the base of ONEC_BASES_FILE to sync, load, query or check (needed when it lists several)"
    )
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
    sync.add_argument("--from", dest="date_from", type=_day, help="first document date (YYYY-MM-DD)")
    sync.add_argument("--to", dest="date_to", type=_day, help="end of the range, exclusive")
    sync.add_argument("--types", nargs="+", choices=DOCUMENT_SLUGS, default=list(DOCUMENT_SLUGS))
    sync.add_argument(
        "--source", choices=[kind.value for kind in SourceKind], help="way into 1C (default: ONEC_SOURCE, else json)"
    )
    mode = sync.add_mutually_exclusive_group()
    mode.add_argument("--incremental", action="store_true", help="only what changed since each entity's cursor")
    mode.add_argument(
        "--full", action="store_true", help="every document since ONEC_PARTITIONS_START (cursors are not touched)"
    )
    _add_force_replace(sync)
    sync.set_defaults(handler=_sync)

    load = commands.add_parser("load", help="land exchange files (UDE XML, CSV export, CommerceML) into the warehouse")
    load.add_argument(
        "paths", nargs="+", type=Path, help="files or folders; CommerceML files (a package folder) form one package"
    )
    load.add_argument("--type", dest="doc_type", choices=DOCUMENT_SLUGS, help="document type of CSV document lines")
    load.add_argument("--snapshot-date", type=_day, help="goods snapshot day (default: the file's)")
    load.add_argument(
        "--partial-goods",
        action="store_true",
        help="the goods of CSV / UDE XML files are some positions only: merge them into the snapshot"
        " (default: a goods export is 1C's whole list and replaces the snapshot)",
    )
    _add_force_replace(load)
    load.set_defaults(handler=_load)

    odata = commands.add_parser("odata", help="the standard OData interface of the configured 1C")
    odata_commands = odata.add_subparsers(dest="odata_command", required=True)
    inspect = odata_commands.add_parser(
        "inspect", help="read the base's $metadata: which OData model fits (ONEC_ODATA_MODEL) and what is missing"
    )
    inspect.add_argument("--metadata", type=Path, help="a saved $metadata file instead of asking the base")
    inspect.set_defaults(handler=_odata_inspect)

    query = commands.add_parser("query", help="run SQL against data/warehouse.duckdb (read-only)")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(handler=_query)

    check = commands.add_parser(
        "check", help="compare the Parquet lake with the warehouse, partition by partition, and rewrite what differs"
    )
    check.add_argument("--no-repair", action="store_true", help="only compare and report; exit 1 when the lake differs")
    check.set_defaults(handler=_check)

    add_push_command(commands)
    add_webhook_commands(commands)
    return parser


def _add_force_replace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-replace",
        action="store_true",
        help="apply replaces the shrink guard refuses (1C really holds that much less); also ONEC_FORCE_REPLACE=1",
    )


def _add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument(
        "--documents", type=int, default=3000, help="documents generated over the days (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated base (default: %(default)s)")
    parser.add_argument("--start", type=_day, help="first document date (default: --days before today)")
    parser.add_argument(
        "--days", type=int, default=30, help="days the documents are spread over (default: %(default)s)"
    )
    parser.add_argument(
        "--bad-records", type=int, default=0, help="deliberately invalid records to include (default: %(default)s)"
    )
    parser.add_argument(
        "--rate-limit", type=float, help="requests/s per credential; over it: 429 + Retry-After (default: no limit)"
    )
    parser.add_argument("--max-connections", type=int, help="concurrent requests; over it: 429 (default: no limit)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer (default: %(default)s)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests failed: 500/503/drops (default: %(default)s)"
    )
    parser.add_argument(
        "--timezone", default="Europe/Moscow", help="the 1C server's zone: it stamps dates in it (default: %(default)s)"
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="seconds the 1C server's clock runs ahead, negative: behind (default: %(default)s)",
    )
    parser.add_argument(
        "--auth",
        choices=("none", "basic", "bearer", "api_key"),
        default="none",
        help="auth method (default: %(default)s)",
    )
    parser.add_argument(
        "--username", default=SANDBOX_DEFAULTS.username, help="user for basic and bearer (default: %(default)s)"
    )
    parser.add_argument(
        "--password", default=SANDBOX_DEFAULTS.password, help="password for basic and bearer (default: %(default)s)"
    )
    parser.add_argument(
        "--api-key", default=SANDBOX_DEFAULTS.api_key, help="key for api_key, sent as X-API-Key (default: %(default)s)"
    )
    parser.add_argument(
        "--tls-dir", type=Path, help="serve HTTPS with a generated test PKI here, client certs required"
    )
    parser.add_argument(
        "--odata-configuration",
        choices=ODATA_CONFIGURATIONS,
        default="standard",
        help="what the OData interface acts out: the contract's default model, or a real УТ 11 base",
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
        odata_configuration=args.odata_configuration,
    )
    return SandboxEngine(data, config)


def _demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rate, connections = 200.0, 8
    sandbox_args = argparse.Namespace(
        seed=args.seed, documents=args.documents, start=None, days=30, bad_records=6, rate_limit=rate,
        max_connections=connections, latency=0.002, fault_rate=args.fault_rate, auth="basic",
        username=SANDBOX_DEFAULTS.username, password=SANDBOX_DEFAULTS.password, api_key="", tls_dir=None,
        timezone=settings.timezone, clock_offset=0.0, odata_configuration="standard",
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
        results, elapsed, run_id = _timed_sync(settings, date_from, date_to, list(DOCUMENT_SLUGS))
    outputs = _analyst_outputs(settings, run_id)
    _print_summary(settings, results, elapsed)
    _print_outputs(outputs)
    return 0


def _sync(args: argparse.Namespace) -> int:
    settings = _base_settings(args)
    if args.source:
        settings = dataclasses.replace(settings, source=SourceKind(args.source))
    settings = dataclasses.replace(settings, force_replace=settings.force_replace or args.force_replace)
    if args.incremental:
        return _incremental_sync(settings, args.types)
    today = local_today(settings.timezone)
    date_to = args.date_to or today
    full_start = settings.schedule.partitions_start
    date_from = args.date_from or (full_start if args.full else date_to - timedelta(days=3))
    if date_to <= date_from:
        raise UsageError(f"--to ({date_to}) must be after --from ({date_from}); the end is exclusive")
    where = redact_url(settings.base_url) if settings.base_url else "the embedded sandbox (ONEC_BASE_URL is not set)"
    print(f"Syncing {date_from} .. {date_to} (exclusive) from {where}", file=sys.stderr)
    results, elapsed, run_id = _timed_sync(settings, date_from, date_to, args.types)
    outputs = _analyst_outputs(settings, run_id)
    _print_summary(settings, results, elapsed)
    _say_if_no_documents(results, date_from, date_to)
    _print_outputs(outputs)
    return 0


def _incremental_sync(settings: Settings, doc_types: list[str]) -> int:
    """Goods and the chosen types, each from its change cursor (bootstrapped by a full scan the first time).
    Always the JSON exchange service: it is the way into 1C that filters by modification time."""
    warehouse = open_warehouse(settings)
    started = time.perf_counter()
    run_id = f"cli-incremental-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    where = redact_url(settings.base_url) if settings.base_url else "the embedded sandbox"
    print(f"Incremental sync from {where}", file=sys.stderr)
    with open_client(settings) as client, Progress(sys.stderr) as progress:
        results = sync_changes(
            client,
            warehouse,
            run_id=run_id,
            timezone=settings.timezone,
            entities=[GOODS, *doc_types],
            overlap=settings.incremental.overlap,
            tolerance=settings.incremental.clock_tolerance,
            on_records=progress.entity,
            rules=settings.rules,
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
) -> tuple[list[ExtractResult], float, str]:
    warehouse = open_warehouse(settings)
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
            on_records=progress.entity,
            rules=settings.rules,
        )
    return results, time.perf_counter() - started, run_id


def _analyst_outputs(settings: Settings, run_id: str) -> AnalystOutputs:
    print("Building the marts, the reconciliation with 1C and the run report…", file=sys.stderr)
    return build_analyst_outputs(Warehouse(settings.data_dir, settings.timezone, base=settings.base_id), run_id)


def _say_if_no_documents(results: list[ExtractResult], date_from: date, date_to: date) -> None:
    """A range 1C holds nothing in is worth a sentence: a wrong year or a base with no history looks like this."""
    if not any(r.records for r in results if r.doc_type):
        print(f"\n1C holds no documents dated {date_from} .. {date_to} (exclusive) of the types asked for.")


def _print_outputs(outputs: AnalystOutputs) -> None:
    print()
    for mart in outputs.marts:
        print(f"Mart {mart.table}: {mart.rows} rows, in the warehouse and under {mart.lake_path}")
    print(f"Reconciliation with 1C: {outputs.reconciliation.note}")
    print(f"Lake views for DuckDB alone: cd {outputs.views.parent} && duckdb -init {outputs.views.name}")
    print(f"Run report: {outputs.report}")


def _load(args: argparse.Namespace) -> int:
    settings = _base_settings(args)
    warehouse = open_warehouse(settings, force_replace=args.force_replace)
    started = time.perf_counter()
    run_id = f"load-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        results = load_files(
            args.paths,
            warehouse,
            timezone=settings.timezone,
            run_id=run_id,
            doc_type=args.doc_type,
            snapshot_date=args.snapshot_date,
            rules=settings.rules,
            partial_goods=args.partial_goods,
            csv_limits=settings.csv_limits,
            commerceml_options=settings.commerceml,
        )
    except ShrinkRefused as exc:  # only goods replace from a file: documents upsert
        hint = "if a CSV or UDE XML file lists only some goods, load it with --partial-goods"
        raise ShrinkRefused(f"{exc}; {hint}") from None
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
            "noted": r.noted,
            "duplicates": r.duplicates,
            "requests": r.http.get("requests", 0),
            "retries": r.http.get("retries", 0),
            "throttled": r.http.get("throttled", 0),
            "seconds": r.elapsed_s,
        }
        for r in results
    ]
    frame = pl.DataFrame(rows, schema=_SUMMARY_SCHEMA)
    _print_frame(frame.vstack(_totals(frame, elapsed)))
    _print_notes(results)
    data = settings.data_dir
    print(f"\nDone in {elapsed:.1f} s.")
    print(f"Warehouse: {data / 'warehouse.duckdb'} (tables goods, documents, document_lines, rejected_rows)")
    print(f"Parquet lake: {data / 'lake'} (hive partitions, zstd)")
    print("Query it (from the repository, `./dev onec-etl …` does the same as `onec-etl …`):")
    print('  onec-etl query "SELECT doc_type, count(*) AS documents FROM documents GROUP BY ALL ORDER BY 1"')
    print('  onec-etl query "SELECT entity, reason, raw FROM rejected_rows LIMIT 5"')
    print("Or read the lake with only Polars or DuckDB installed:")
    print(f"  python -c \"import polars as pl; print(pl.scan_parquet('{data}/lake/*/goods/**/*.parquet').collect())\"")
    lines_glob = f"{data}/lake/*/document_lines/**/*.parquet"
    print(f"  python -c \"import duckdb; duckdb.read_parquet('{lines_glob}', hive_partitioning=True).show()\"")


def _print_notes(results: list[ExtractResult]) -> None:
    """What landed with a note, per rule: odd but real 1C data (docs/validation.md says why each is allowed)."""
    notes: Counter[str] = Counter()
    for result in results:
        notes.update(result.notes)
    if notes:
        listed = ", ".join(f"{rule} {count}" for rule, count in sorted(notes.items()))
        print(f"Noted (landed; odd but real 1C data, see docs/validation.md): {listed}")


def _totals(frame: pl.DataFrame, elapsed: float) -> pl.DataFrame:
    """Sums of the counts; the seconds are the run's wall time, since entities overlap."""
    sums = frame.drop("entity").sum().with_columns(pl.lit(round(elapsed, 3)).alias("seconds"))
    return pl.concat([pl.DataFrame({"entity": ["total"]}), sums], how="horizontal").select(frame.columns)


def _odata_inspect(args: argparse.Namespace) -> int:
    settings = _base_settings(args)
    if args.metadata is not None:
        edmx = args.metadata.read_bytes()
    else:
        with open_session(settings) as session:
            body = io.BytesIO()
            session.download(odata_root(session.settings) + "$metadata", None, body)
            edmx = body.getvalue()
    metadata = read_metadata(edmx)
    print(report(metadata, inspect_models(metadata, settings.odata_model)), end="")
    return 0


def _query(args: argparse.Namespace) -> int:
    settings = _base_settings(args)
    warehouse = Warehouse(settings.data_dir, settings.timezone, base=settings.base_id)
    if not warehouse.database.exists():
        raise UserFacingError(f"no warehouse at {warehouse.database}: run `onec-etl demo` or `onec-etl sync` first")
    frame = warehouse.query(args.sql)
    writers: dict[str, Callable[[pl.DataFrame], None]] = {
        "table": _print_frame,
        "csv": lambda f: print(f.write_csv(), end=""),
        "json": lambda f: print(f.write_json()),
    }
    writers[args.format](frame)
    return 0


def _check(args: argparse.Namespace) -> int:
    """Repairs by default: the lake is a copy of the committed warehouse, so rewriting a partition that differs
    loses nothing, and a report that only says "your lake has holes" leaves the analyst with them."""
    settings = _base_settings(args)
    warehouse = Warehouse(
        settings.data_dir,
        settings.timezone,
        base=settings.base_id,
        delta=delta_lake.configured_target(settings, settings.base_id),
    )
    result = check_lake(warehouse, repair=not args.no_repair)
    _print_lake_check(warehouse, result)
    if result.lake_equals_warehouse:
        return 0
    if not result.repaired:
        return _fail(f"the lake differs from the warehouse in {len(result.remaining)} partitions", EXIT_RUNTIME)
    return _fail(f"{len(result.remaining)} partitions still differ after the repair", EXIT_RUNTIME)


def _print_lake_check(warehouse: Warehouse, result: LakeCheck) -> None:
    where = (
        f"of base {warehouse.delta.base} in the Delta lake {redact_url(warehouse.delta.lake.root)}"
        if warehouse.delta is not None
        else f"under {warehouse.lake_dir}"
    )
    print(f"Compared {result.partitions} lake partitions {where} with {warehouse.database}.")
    if result.litter_removed:
        print(f"Removed {result.litter_removed} temporary files left in the lake by killed writers.")
    if not result.differences:
        print("The lake equals the warehouse.")
        return
    print(f"{len(result.differences)} partitions differed:")
    for difference in result.differences[:DIFFERENCES_SHOWN]:
        print(f"  {difference.describe()}")
    if len(result.differences) > DIFFERENCES_SHOWN:
        print(f"  … and {len(result.differences) - DIFFERENCES_SHOWN} more")
    if result.repaired and result.lake_equals_warehouse:
        print("Rewrote them from the warehouse: the lake now equals the warehouse.")
    elif result.repaired:
        for difference in result.remaining[:DIFFERENCES_SHOWN]:
            print(f"  still differs: {difference.describe()}")
    else:
        print("Not repaired (--no-repair): run `onec-etl check` to rewrite them from the warehouse.")


def _print_frame(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=100, tbl_cols=30, fmt_str_lengths=60, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=200):  # fmt: skip
        print(frame)


if __name__ == "__main__":
    raise SystemExit(main())
