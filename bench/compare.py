"""onec-etl beside the raw parsers and a generic loader, in one run on one machine: the proof issue 15 asks for.

    ./dev bench compare [--lines 200000 2000000] [--runs 3] [--csv-mb 300] [--xml-mb 500] [--quick] [--no-dlt]

JSON (per size in `--lines`, a sandbox 1C of that many document lines in its own process, page size 1,000, its
pages read once untimed first so that every reader gets them from the sandbox's render cache):
  raw          httpx + `json.loads` of the same pages, one connection, nothing kept (the floor any reader adds to);
  land         the raw floor, plus every record kept as it came, as text: a DuckDB table per entity (appended from
               Arrow) and the same rows written by DuckDB to Parquet partitioned as the lake is, nothing checked or
               deduplicated (the floor of any reader that lands both stores; what onec-etl adds over it is the checks,
               the versions' dedupe and the transactional partition replace);
  dlt-duckdb   dlt's `rest_api` source over the same endpoints → DuckDB (dlt's default destination);
  dlt-parquet  the same source → Parquet loader files on the local filesystem;
  onec-etl     what `onec-etl sync` runs to extract (validate, stage, DuckDB, Parquet lake), marts aside.
Every reader reads the goods snapshot and the six document types of the same 31 days. The runs of a size
alternate the readers (raw, dlt…, onec-etl, raw, …), so a host that drifts between minutes drifts for all of them;
each measurement is a fresh child process: its own peak RSS, imports not timed. Figures are medians over the runs.

Files: every mode of `bench/readers.py` (the windows-1251 `;` CSV and the tidy UTF-8 one against Polars' own
read of the same file, the UDE XML reader against a bare lxml `iterparse`), `--runs` times each.

It prints one table and the issue's targets, each met or not, and writes them with the machine's facts (cores,
memory, CPU, versions) and the exact command to `docs/benchmarks.md` (`--output`; a `--quick` run writes only
where `--output` says). dlt is a bench-only extra (`pip install -e '.[bench]'`, which `./dev bench compare`
does on demand); without it, or with `--no-dlt`, the dlt rows are skipped and said to be.

`--lines` takes SIZE or SIZE:RUNS (e.g. `200000 2000000:1`: three runs at 200k, one at 2M, where dlt into DuckDB
takes about eight minutes a run); `--dlt-lines` limits the sizes dlt runs at.
"""

# ruff: noqa: S608 — the land floor's SQL names only tables named after the fixed endpoints of `_endpoints`.

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import child_peak_rss_mb, median, run_child, sandbox_process  # noqa: E402
from bench.readers import measure_readers  # noqa: E402
from onec.schema import DOCUMENT_SLUGS  # noqa: E402

if TYPE_CHECKING:  # dlt is a bench-only extra: without it (CI) these are Any to the type checker
    from dlt.common.destination import Destination, TLoaderFileFormat
    from dlt.sources.rest_api.typing import EndpointResource, RESTAPIConfig

START, DAYS = date(2026, 1, 1), 31
END = START + timedelta(days=DAYS)
LINES_PER_DOCUMENT = 5.5  # the sandbox generator's average
PAGE_SIZE = 1000
HISTORY_HEADING = "## History"
PROPOSAL = (
    "Issue 15's ratios to the raw parsers leave no room for the work a loader must do (the land floor, which checks"
    " nothing, is itself ~0.24× of the raw floor; the xml-floor, which only reads each value once, ~0.67× of"
    " iterparse). These are the targets proposed instead, each against the least any loader must do in that mode."
)
RAW, LAND, DLT_DUCKDB, DLT_PARQUET, ONEC = "raw", "land", "dlt-duckdb", "dlt-parquet", "onec-etl"
READER_NAMES = {
    RAW: "raw floor: httpx + `json` parse, one connection, nothing kept",
    LAND: "land floor: raw + every record as text into DuckDB and day-partitioned Parquet, no checks",
    DLT_DUCKDB: "dlt `rest_api` → DuckDB",
    DLT_PARQUET: "dlt `rest_api` → Parquet loader files",
    ONEC: "`onec-etl sync` (validate, DuckDB, lake)",
}
DLT_ENV = {"RUNTIME__DLTHUB_TELEMETRY": "false"}  # no network here; and a bench should not phone home
QUICK = {"lines": ["20000:1"], "csv_mb": 10, "xml_mb": 10, "runs": 1}
SANDBOX_START_S = 900.0  # generating 2M lines' documents takes the sandbox a while on a shared host
CHILD_S = 3 * 3600.0  # dlt into DuckDB reads 2M lines at ~4,000 lines/s on a quiet host: 8 minutes, more when shared


@dataclass(frozen=True)
class Size:
    lines: int
    runs: int


@dataclass
class JsonFigures:
    """One reader at one size: medians over its runs."""

    lines: int
    lines_s: float
    peak_mb: float
    runs: int


@dataclass
class Results:
    json: dict[int, dict[str, JsonFigures]] = field(default_factory=dict)
    files: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    page_size: int = PAGE_SIZE


# --- the children: one measurement each, one JSON line out


def child(mode: str, base_url: str, scratch: str, page_size: str) -> None:
    measure = {RAW: _raw_floor, LAND: _land_floor, DLT_DUCKDB: _dlt_duckdb, DLT_PARQUET: _dlt_parquet,
               ONEC: _onec_sync}[mode]  # fmt: skip
    lines, seconds = measure(base_url, Path(scratch), int(page_size))
    print(json.dumps({"lines": lines, "seconds": seconds, "peak_rss_mb": child_peak_rss_mb()}))


def _endpoints() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(name, path, parameters) of what every reader reads: the goods snapshot and each document type's days."""
    yield "goods", "api/v1/goods", {"format": "json"}
    days = {"date_from": f"{START}T00:00:00", "date_to": f"{END}T00:00:00"}
    for slug in DOCUMENT_SLUGS:
        yield slug, f"api/v1/documents/{slug}", days


def _raw_floor(base_url: str, _scratch: Path, page_size: int) -> tuple[int, float]:
    lines = 0
    started = time.perf_counter()
    for _, page in _pages(base_url, page_size):
        lines += sum(len(row.get("items") or ()) for row in page)
    return lines, time.perf_counter() - started


def _pages(base_url: str, page_size: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(endpoint name, records) of every page of every endpoint, in order, over one connection, parsed by `json`."""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=base_url, limits=limits, timeout=60) as client:
        for name, path, parameters in _endpoints():
            offset, total = 0, 1
            while offset < total:
                response = client.get(path, params={**parameters, "limit": page_size, "offset": offset})
                response.raise_for_status()
                page = json.loads(response.content)
                rows, total = page["data"], page["pagination"]["total"]
                if not rows:
                    break
                offset += len(rows)
                yield name, rows


def _land_floor(base_url: str, scratch: Path, page_size: int) -> tuple[int, float]:
    """Each endpoint's records as text columns in one DuckDB table (documents and their lines apart, as the
    warehouse keeps them, a line with its document's number and date), one insert each, then each table copied by
    DuckDB into Parquet partitioned by day: the least work that lands both stores. (It holds an endpoint's records
    in memory: a floor on time, not on memory.)"""
    import duckdb
    import polars as pl

    lines = 0
    started = time.perf_counter()
    (scratch / "lake").mkdir()
    with duckdb.connect(str(scratch / "land.duckdb")) as con:
        for name, pages in groupby(_pages(base_url, page_size), key=lambda named: named[0]):
            headers: list[dict[str, str | None]] = []
            items: list[dict[str, str | None]] = []
            for _, page in pages:
                headers += ({k: _text(v) for k, v in row.items() if k != "items"} for row in page)
                items += ({"number": _text(row.get("number")), "date": _text(row.get("date")),
                           **{k: _text(v) for k, v in item.items()}}
                          for row in page for item in row.get("items") or ())  # fmt: skip
            lines += len(items)
            for table, rows in ((name, headers), (f"{name} lines", items)):
                if rows:
                    con.register("records", pl.DataFrame(rows, infer_schema_length=None))
                    con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM records')
                    con.unregister("records")
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            day = "left(date, 10)" if table != "goods" else "'-'"
            con.execute(
                f'COPY (SELECT *, {day} AS day FROM "{table}" ORDER BY day) TO ?'
                " (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day))",
                [str(scratch / "lake" / table.replace(" ", "_"))],
            )
    return lines, time.perf_counter() - started


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def dlt_config(base_url: str, page_size: int) -> RESTAPIConfig:
    """dlt's `rest_api` source for the contract's paging (§1.2: `limit`/`offset`, `{"data", "pagination":
    {"total"}}`); the sandbox benches run without auth. dlt's defaults otherwise (append, its own normalizer).
    dlt's offset paginator steps by the limit it asked for, not the one 1C answers with (§1.9 lets a server cap
    it): above the sandbox's cap of 1,000 it would skip rows, so `--page-size` stops there."""
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "paginator": {
                "type": "offset", "limit": page_size, "limit_param": "limit", "offset_param": "offset",
                "total_path": "pagination.total",
            },
        },
        "resource_defaults": {"endpoint": {"data_selector": "data"}},
        "resources": [_dlt_resource(name, path, parameters) for name, path, parameters in _endpoints()],
    }  # fmt: skip


def _dlt_resource(name: str, path: str, parameters: dict[str, str]) -> EndpointResource:
    return {"name": name, "endpoint": {"path": path, "params": dict(parameters)}}


def _dlt_duckdb(base_url: str, scratch: Path, page_size: int) -> tuple[int, float]:
    import dlt

    destination = dlt.destinations.duckdb(str(scratch / "dlt.duckdb"))
    return _dlt_run(base_url, scratch, page_size, destination, None)


def _dlt_parquet(base_url: str, scratch: Path, page_size: int) -> tuple[int, float]:
    import dlt

    destination = dlt.destinations.filesystem(bucket_url=str(scratch / "lake"))
    return _dlt_run(base_url, scratch, page_size, destination, "parquet")


def _dlt_run(
    base_url: str,
    scratch: Path,
    page_size: int,
    destination: Destination[Any, Any],
    file_format: TLoaderFileFormat | None,
) -> tuple[int, float]:
    """One `pipeline.run`, timed whole (extract, normalize, load); the lines are the rows dlt normalized into the
    documents' `items` child tables, so a paginator that missed pages shows as fewer lines."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench", pipelines_dir=str(scratch / "pipelines"), destination=destination, dataset_name="onec"
    )
    source = rest_api_source(dlt_config(base_url, page_size))
    if file_format is None:  # the destination's own default
        pipeline.run(source)
    else:
        pipeline.run(source, loader_file_format=file_format)
    seconds = time.perf_counter() - started
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    assert normalized is not None, "dlt's run left no normalize info"
    counts = normalized.row_counts
    return sum(count for table, count in counts.items() if table.endswith("__items")), seconds


def _onec_sync(base_url: str, scratch: Path, page_size: int) -> tuple[int, float]:
    from onec.allocator import pin_mmap_threshold
    from onec.cli import _timed_sync
    from onec.config import Settings

    settings = Settings.from_env({
        "ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(scratch), "ONEC_PAGE_SIZE": str(page_size),
        "ONEC_RATE_LIMIT": "100000", "ONEC_MAX_CONNECTIONS": "4",
    })  # fmt: skip
    pin_mmap_threshold()  # as `onec-etl` does first
    results, seconds, _ = _timed_sync(settings, START, END, list(DOCUMENT_SLUGS))
    return sum(result.lines for result in results), seconds


# --- the parent: sizes, runs, the table, the targets, the page


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.child:
        child(*args.child)
        return
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    runs = args.runs or 3
    sizes = [_size(spec, runs) for spec in args.lines or ["200000", "2000000"]]
    results = Results(page_size=args.page_size)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    dlt_readers = _dlt_readers(args.no_dlt, results.skipped)
    dlt_sizes = set(args.dlt_lines) if args.dlt_lines is not None else {size.lines for size in sizes}
    for size in sizes:
        readers = [RAW, LAND, *(dlt_readers if size.lines in dlt_sizes else ()), ONEC]
        if dlt_readers and size.lines not in dlt_sizes:
            results.skipped.append(f"dlt at {size.lines:,} lines (not in --dlt-lines)")
        failures: dict[str, str] = {}
        results.json[size.lines] = measure_json(size, readers, args.page_size, failures)
        results.skipped.extend(failures.values())
        _print_json(size.lines, results.json[size.lines])
    results.files = measure_readers(args.csv_mb or 300, args.xml_mb or 500, runs)
    page = render(results, _facts(started, load_before), _command(argv))
    print(page)
    output = args.output or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if output is not None:
        Path(output).write_text(page + kept_history(Path(output)), encoding="utf-8")
        print(f"written to {output}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "URL", "DIR", "PAGE_SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--lines", nargs="+", metavar="SIZE[:RUNS]", help="document lines (default 200000 2000000)")
    parser.add_argument("--runs", type=int, help="runs per measurement, medians taken (default 3)")
    parser.add_argument("--dlt-lines", type=int, nargs="*", help="the sizes dlt runs at (default: all of --lines)")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt even when it is installed")
    parser.add_argument("--page-size", type=_page_size, default=PAGE_SIZE, help="records per page (default 1000)")
    parser.add_argument("--csv-mb", type=int, help="CSV files of about this size (default 300)")
    parser.add_argument("--xml-mb", type=int, help="UDE XML file of about this size (default 500)")
    parser.add_argument("--quick", action="store_true", help="20k lines, 10 MB files, one run; writes no page")
    parser.add_argument("--output", type=Path, help="where the page goes (default docs/benchmarks.md)")
    return parser


def _page_size(text: str) -> int:
    size = int(text)
    if not 1 <= size <= PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"{size} is not within 1..{PAGE_SIZE} (the sandbox caps pages at {PAGE_SIZE})")
    return size


def _size(spec: str, runs: int) -> Size:
    lines, _, size_runs = spec.partition(":")
    return Size(int(lines), int(size_runs) if size_runs else runs)


def _dlt_readers(no_dlt: bool, skipped: list[str]) -> list[str]:
    if no_dlt:
        skipped.append("dlt (--no-dlt)")
        return []
    try:
        metadata.version("dlt")
    except metadata.PackageNotFoundError:
        skipped.append("dlt (not installed: pip install -e '.[bench]', or run ./dev bench compare)")
        return []
    return [DLT_DUCKDB, DLT_PARQUET]


def measure_json(size: Size, readers: list[str], page_size: int, failures: dict[str, str]) -> dict[str, JsonFigures]:
    """Medians of `size.runs` runs of each reader; a reader that fails (dlt is someone else's code) is named in
    `failures` and left out, so one failure does not cost the rest of a long run."""
    documents = round(size.lines / LINES_PER_DOCUMENT)
    script = Path(__file__)
    options = ("--documents", str(documents), "--start", START.isoformat(), "--days", str(DAYS))
    with sandbox_process(*options, timeout_s=SANDBOX_START_S) as url:
        # The sandbox renders each page once, then serves it from its cache: this read is not timed.
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
            run_child(script, [RAW, url, scratch, str(page_size)], {})
        measured: dict[str, list[dict[str, float]]] = {reader: [] for reader in readers}
        for _ in range(size.runs):
            for reader in [reader for reader in readers if reader not in failures]:
                with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
                    env = {**DLT_ENV, "DLT_DATA_DIR": scratch} if reader.startswith("dlt") else {}
                    try:
                        run = run_child(script, [reader, url, scratch, str(page_size)], env, timeout_s=CHILD_S)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        failures[reader] = f"{reader} at {size.lines:,} lines failed: {_last_line(exc)}"
                        continue
                    measured[reader].append(run)
    return {
        reader: JsonFigures(
            lines=int(min(run["lines"] for run in runs)),  # a run that read fewer lines shows here
            lines_s=median([run["lines"] / run["seconds"] for run in runs]),
            peak_mb=median([run["peak_rss_mb"] for run in runs]),
            runs=len(runs),
        )
        for reader, runs in measured.items()
        if reader not in failures
    }


def _last_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _print_json(lines: int, figures: dict[str, JsonFigures]) -> None:
    for reader, f in figures.items():
        print(f"{lines:>9,} lines  {reader:<12} {f.lines_s:>10,.0f} lines/s  peak {f.peak_mb:>6.0f} MB  "
              f"({f.runs} run{'s' if f.runs > 1 else ''}, {f.lines:,} lines read)", flush=True)  # fmt: skip


def _command(argv: Sequence[str] | None) -> str:
    return shlex.join(["./dev", "bench", "compare", *(sys.argv[1:] if argv is None else argv)])


def _facts(started: datetime, load_before: tuple[float, float, float]) -> dict[str, str]:
    return {
        "date": f"{started:%Y-%m-%d %H:%M} UTC, {(datetime.now(UTC) - started).total_seconds() / 60:.0f} min in all",
        "onec-etl commit": _commit(),
        "cores": str(os.cpu_count()),
        "memory": f"{_meminfo_gib():.1f} GiB",
        "CPU": _cpu_model(),
        "load average (1 min) at start / end": f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}",
        "Python": platform.python_version(),
        **{name: _version(name) for name in ("polars", "duckdb", "pyarrow", "lxml", "httpx", "dlt")},
    }


def _commit() -> str:
    """The code measured: HEAD, marked when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- the page


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool | None  # None: not measured in this run


def render(results: Results, facts: dict[str, str], command: str) -> str:
    """The page `docs/benchmarks.md` holds: the command, the machine, the tables, the targets."""
    out = [
        "# Benchmarks: onec-etl beside the raw parsers and dlt",
        "",
        "Written by `bench/compare.py` (issue 15's proof); every figure below comes from one run of",
        "",
        f"    {command}",
        "",
        "on one machine, ratios within that run. Medians over the runs shown; peak RSS is each child process's own",
        "(JSON: median of the runs; files: highest of the runs). The machine is shared: see the load average.",
        "",
        "How: per JSON size a sandbox 1C (`onec-etl sandbox`, its own process, no auth, no faults or latency) serves",
        f"the goods snapshot and six document types of {DAYS} days; its pages are read once untimed first, so every",
        "reader gets them from its render cache. Each measurement is a fresh child process (imports not timed); the",
        "readers alternate within each run. dlt runs its `rest_api` source with an offset paginator on `limit` /",
        "`offset` / `pagination.total` and its defaults otherwise; `onec-etl` runs what `onec-etl sync` runs to",
        "extract (marts aside), 4 connections. The files are `bench/readers.py`'s: the sandbox's exports replicated",
        "to size; `*-raw` is Polars' `read_csv` (all strings) or a bare lxml `iterparse` of the same file;",
        "`tidy-floor` is Polars alone, casts and no checks, into Parquet; `xml-floor` is the `iterparse` plus every",
        "element's attributes and text read once into Python (the ceiling of any reader over lxml).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        f"## JSON pages (sandbox 1C, page size {results.page_size:,}, pages cached)",
        "",
        "| lines | reader | runs | lines/s | peak RSS MB | onec-etl is |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for figures in results.json.values():
        onec = figures.get(ONEC)
        for reader, f in figures.items():
            ratio = "—" if reader == ONEC or onec is None else f"{onec.lines_s / f.lines_s:.2f}×"
            out.append(f"| {f.lines:,} | {READER_NAMES[reader]} | {f.runs} | {f.lines_s:,.0f} | {f.peak_mb:.0f} "
                       f"| {ratio} |")  # fmt: skip
    out += ["", _same_lines(results.json), "", "## Exchange files (`bench/readers.py` modes)", ""]
    out += ["| mode | file MB | MB/s | vs its raw parser | peak RSS MB | rows |", "|---|---:|---:|---:|---:|---:|"]
    for mode, file in results.files.items():
        raw = results.files[mode.split("-")[0] + "-raw"]["mb_s"]
        out.append(f"| {mode} | {file['mb']:.0f} | {file['mb_s']:.1f} | {file['mb_s'] / raw:.2f}×"
                   f" | {file['peak_mb']:.0f} | {file['rows']:,.0f} |")  # fmt: skip
    out += ["", "## Targets (issue 15)", "", "| target | measured | |", "|---|---|---|"]
    out += [f"| {t.what} | {t.measured} | {_verdict(t.met)} |" for t in targets(results)]
    out += ["", "## Proposed targets (against floors measured in this run)", "", PROPOSAL, ""]
    out += ["| target | measured | |", "|---|---|---|"]
    out += [f"| {t.what} | {t.measured} | {_verdict(t.met)} |" for t in proposed_targets(results)]
    if results.skipped:
        out += ["", "Skipped in this run: " + "; ".join(results.skipped) + "."]
    return "\n".join(out) + "\n"


def kept_history(page: Path) -> str:
    """The page's History section as it is: the measurements behind the code's choices, which this run does not
    redo and must not erase."""
    if not page.exists():
        return ""
    text = page.read_text(encoding="utf-8")
    start = text.find(f"\n{HISTORY_HEADING}\n")
    return text[start:] if start >= 0 else ""


def _same_lines(json_figures: dict[int, dict[str, JsonFigures]]) -> str:
    """Whether every reader read every line: a reader that skipped pages would look faster than it is."""
    differing = {size: {r: f.lines for r, f in figures.items()} for size, figures in json_figures.items()
                 if len({f.lines for f in figures.values()}) > 1}  # fmt: skip
    if differing:
        return f"**The readers read different numbers of lines**: {differing}; their speeds do not compare."
    return "Every reader read the same document lines at each size (the lines column)."


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**not met**"


def targets(results: Results) -> list[Target]:
    """Issue 15's "done when", each against this run's figures."""
    found: list[Target] = []
    for lines, figures in results.json.items():
        onec = figures.get(ONEC)
        for reader, at_least in ((RAW, 0.5), (DLT_DUCKDB, 20.0), (DLT_PARQUET, 5.0)):
            what = f"JSON at {lines:,} lines ≥ {at_least:g}× {reader}"
            other = figures.get(reader)
            if onec is None or other is None:
                found.append(Target(what, "—", None))
            else:
                found.append(_ratio_target(what, onec.lines_s, other.lines_s, at_least))
    sizes = sorted(size for size, figures in results.json.items() if ONEC in figures)
    if len(sizes) > 1:
        small, large = results.json[sizes[0]][ONEC].peak_mb, results.json[sizes[-1]][ONEC].peak_mb
        found.append(Target(f"onec-etl peak RSS at {sizes[-1]:,} ≤ 1.2× at {sizes[0]:,} lines",
                            f"{large:.0f} / {small:.0f} MB = {large / small:.2f}×", large <= 1.2 * small))  # fmt: skip
    else:
        found.append(Target("onec-etl peak RSS at the large size ≤ 1.2× at the small", "one size only", None))
    files = results.files
    found += _file_targets(
        files,
        ("CSV end to end (windows-1251 `;`) ≥ 0.5× Polars' read", "csv-e2e", "csv-raw", 0.5),
        ("CSV end to end (tidy UTF-8) ≥ 0.5× Polars' read", "tidy-e2e", "tidy-raw", 0.5),
        ("UDE XML reader ≥ 0.7× bare iterparse", "xml-reader", "xml-raw", 0.7),
        ("UDE XML end to end ≥ 0.5× bare iterparse", "xml-e2e", "xml-raw", 0.5),
    )
    peak, size_mb = max(files["xml-reader"]["peak_mb"], files["xml-e2e"]["peak_mb"]), files["xml-e2e"]["mb"]
    measured = f"{peak:.0f} MB on {size_mb:.0f} MB (reader and end to end)"
    found.append(Target("UDE XML peak RSS < 300 MB on a 500 MB file", measured, peak < 300 if size_mb >= 500 else None))
    return found


def proposed_targets(results: Results) -> list[Target]:
    """The targets proposed in issue 15's notes, each against the floor of the same work measured in this run."""
    found: list[Target] = []
    for lines, figures in results.json.items():
        onec, land = figures.get(ONEC), figures.get(LAND)
        what = f"JSON at {lines:,} lines ≥ 1.5× the land floor"
        found.append(_ratio_target(what, onec.lines_s, land.lines_s, 1.5) if onec and land else Target(what, "—", None))
    return found + _file_targets(
        results.files,
        ("CSV end to end (windows-1251 `;`) ≥ 0.3× Polars' read", "csv-e2e", "csv-raw", 0.3),
        ("CSV end to end (tidy UTF-8) ≥ 0.35× Polars alone (tidy-floor)", "tidy-e2e", "tidy-floor", 0.35),
        ("UDE XML reader ≥ 0.8× the xml-floor", "xml-reader", "xml-floor", 0.8),
        ("UDE XML end to end ≥ 0.6× the xml-floor", "xml-e2e", "xml-floor", 0.6),
    )


def _file_targets(files: dict[str, dict[str, float]], *wanted: tuple[str, str, str, float]) -> list[Target]:
    """(what, mode, the mode it is measured against, the least ratio) → each target against this run's files."""
    return [
        _ratio_target(what, files[mode]["mb_s"], files[against]["mb_s"], at_least)
        for what, mode, against, at_least in wanted
    ]


def _ratio_target(what: str, ours: float, theirs: float, at_least: float) -> Target:
    return Target(what, f"{ours / theirs:.2f}×", ours >= at_least * theirs)


if __name__ == "__main__":
    main()
