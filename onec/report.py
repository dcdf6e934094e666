"""The nightly run report: one self-contained HTML page an operator opens instead of reading logs.

What it answers, top to bottom: did every day and entity land (rows per entity per day), what was rejected and why,
what the run cost 1C (requests, retries, 429s per landing, from `load_log.stats`), how stock of the most-moved items
evolved (`stock_balance_daily`), and does our stock agree with 1C (`reconciliation_diffs`). Everything is read with
read-only queries; the page is written to a temporary name and renamed, so a half-written report is never seen.
"""

# ruff: noqa: S608 — SQL text is built only from this module's fixed identifiers; values are bound parameters.

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
import zoneinfo
from html import escape
from pathlib import Path

import polars as pl

from onec import charts
from onec.warehouse import Warehouse

REPORTS_DIR = "reports"
DAYS_SHOWN = 31
TOP_ITEMS = 5
HTTP_FIGURES = ("requests", "retries", "throttled")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def write_run_report(warehouse: Warehouse, run_id: str, *, now: dt.datetime | None = None) -> Path:
    """Write `reports/run-<run_id>.html` under the data directory and return its path."""
    generated = now or dt.datetime.now(dt.UTC)
    page = render_run_report(warehouse, run_id, generated)
    directory = warehouse.data_dir / REPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"run-{_SAFE_NAME.sub('_', run_id)}.html"
    temporary = directory / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def render_run_report(warehouse: Warehouse, run_id: str, generated: dt.datetime) -> str:
    tables = _existing_tables(warehouse)
    sections = [
        _documents_per_day(warehouse),
        _goods_per_snapshot(warehouse),
        _rejected_by_reason(warehouse),
        _http_per_landing(warehouse, run_id),
        _stock_trend(warehouse) if "stock_balance_daily" in tables else charts.line_chart(_TREND_TITLE, [], {}),
        _reconciliation(warehouse) if "reconciliation_diffs" in tables else charts.bar_chart(_RECON_TITLE, []),
    ]
    counts = warehouse.table_counts()
    summary = " · ".join(f"{escape(name)}: {count:,}" for name, count in counts.items())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>onec-etl run {escape(run_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>onec-etl run report</h1><p class=meta>run <code>{escape(run_id)}</code> · generated "
        f"{escape(_in_1c_zone(generated, warehouse.timezone))} · {summary}</p>"
        + "".join(f"<section>{section}</section>" for section in sections)
        + "</body></html>"
    )


def _documents_per_day(warehouse: Warehouse) -> str:
    """Documents and goods differ by orders of magnitude: each gets a chart of its own scale."""
    frame = warehouse.query(
        "WITH counted AS (SELECT doc_type, doc_date AS day, count(*) AS n FROM documents GROUP BY ALL)"
        " SELECT doc_type, day, n FROM counted WHERE day > (SELECT max(day) FROM counted) - ? ORDER BY day, doc_type",
        [DAYS_SHOWN],
    )
    days, series = _pivot(frame, "day", "doc_type", "n")
    return charts.line_chart(f"Documents per day, by type (last {DAYS_SHOWN} days)", days, series)


def _goods_per_snapshot(warehouse: Warehouse) -> str:
    frame = warehouse.query(
        "SELECT CAST(snapshot_date AS VARCHAR) AS day, count(*) AS n FROM goods GROUP BY ALL ORDER BY day DESC LIMIT ?",
        [DAYS_SHOWN],
    ).reverse()
    bars = [(str(day), float(n)) for day, n in frame.rows()]
    return charts.bar_chart(f"Goods positions per snapshot (last {DAYS_SHOWN} snapshots)", bars)


def _rejected_by_reason(warehouse: Warehouse) -> str:
    frame = warehouse.query(
        "SELECT entity || coalesce(' ' || doc_type, '') || ': ' || reason AS label, count(*) AS n FROM rejected_rows"
        " GROUP BY ALL ORDER BY n DESC, label LIMIT 12"
    )
    return charts.bar_chart("Rejected rows by reason", [(str(label), float(n)) for label, n in frame.rows()])


def _http_per_landing(warehouse: Warehouse, run_id: str) -> str:
    """The run's landings; a report made outside an extracting run shows the latest landing of each entity."""
    figures = ", ".join(f"coalesce(CAST(stats->>'{name}' AS BIGINT), 0) AS {name}" for name in HTTP_FIGURES)
    frame = warehouse.query(
        f"WITH ranked AS (SELECT *, row_number() OVER (PARTITION BY entity, doc_type ORDER BY finished_at DESC) AS k"
        f" FROM load_log) SELECT coalesce(doc_type, entity) AS landing, {figures} FROM ranked"
        " WHERE CASE WHEN EXISTS (SELECT 1 FROM load_log WHERE run_id = ?) THEN run_id = ? ELSE k = 1 END"
        " ORDER BY finished_at",
        [run_id, run_id],
    )
    series = {name: [float(v) for v in frame[name]] for name in HTTP_FIGURES}
    return charts.grouped_bar_chart("Requests, retries and 429s per landing", list(frame["landing"]), series)


_TREND_TITLE = f"Stock of the {TOP_ITEMS} most-moved items (all warehouses)"


def _stock_trend(warehouse: Warehouse) -> str:
    frame = warehouse.query(
        "WITH top AS (SELECT sku FROM stock_movements GROUP BY sku ORDER BY sum(abs(quantity)) DESC, sku LIMIT ?),"
        " recent AS (SELECT * FROM stock_balance_daily WHERE day > (SELECT max(day) FROM stock_balance_daily) - ?)"
        " SELECT day, sku, sum(balance) AS balance FROM recent WHERE sku IN (SELECT sku FROM top)"
        " GROUP BY ALL ORDER BY day, sku",
        [TOP_ITEMS, DAYS_SHOWN],
    )
    days, series = _pivot(frame, "day", "sku", "balance")
    return charts.line_chart(_TREND_TITLE, days, series)


_RECON_TITLE = "Reconciliation with 1C: positions compared and differing, per snapshot"


def _reconciliation(warehouse: Warehouse) -> str:
    frame = warehouse.query(
        "WITH pairs AS (SELECT DISTINCT snapshot_date FROM goods WHERE snapshot_date > (SELECT min(snapshot_date)"
        " FROM goods)) SELECT CAST(p.snapshot_date AS VARCHAR) AS snapshot,"
        " (SELECT count(*) FROM goods g WHERE g.snapshot_date = p.snapshot_date) AS compared,"
        " (SELECT count(*) FROM reconciliation_diffs d WHERE d.snapshot_date = p.snapshot_date) AS differing"
        " FROM pairs p ORDER BY p.snapshot_date"
    )
    chart = charts.grouped_bar_chart(
        _RECON_TITLE,
        list(frame["snapshot"]),
        {"compared": [float(v) for v in frame["compared"]], "differing": [float(v) for v in frame["differing"]]},
    )
    largest = warehouse.query(
        "SELECT snapshot_date, sku, warehouse, reported_quantity, computed_quantity, difference"
        " FROM reconciliation_diffs ORDER BY snapshot_date DESC, abs(difference) DESC, sku LIMIT 10"
    )
    return chart + _table("Largest differences (latest snapshots first)", largest)


def _in_1c_zone(instant: dt.datetime, timezone: str) -> str:
    """The report's other times are 1C's; its own stamp is too, with the zone named."""
    local = instant.astimezone(zoneinfo.ZoneInfo(timezone))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} ({timezone})"


def _pivot(frame: pl.DataFrame, x: str, name: str, value: str) -> tuple[list[str], dict[str, list[float]]]:
    """Long rows → x labels and one value list per name (0 where a name has no row for an x)."""
    xs = sorted({str(v) for v in frame[x]})
    position = {label: index for index, label in enumerate(xs)}
    series: dict[str, list[float]] = {}
    for x_value, series_name, number in frame.select(x, name, value).rows():
        series.setdefault(str(series_name), [0.0] * len(xs))[position[str(x_value)]] = float(number)
    return xs, series


def _table(title: str, frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return f"<h3>{escape(title)}</h3><p>None.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in frame.rows())
    return f"<h3>{escape(title)}</h3><table><tr>{head}</tr>{body}</table>"


def _existing_tables(warehouse: Warehouse) -> set[str]:
    return set(warehouse.query("SELECT table_name FROM information_schema.tables")["table_name"])


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:820px}"
    "h1{font-size:22px}.meta{color:#4b5563;font-size:13px}section{margin:20px 0}"
    "figure{margin:0}figcaption{font-weight:600;margin-bottom:6px}svg text{font-size:11px;fill:#374151}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #e5e7eb;padding:3px 6px;text-align:left}"
)
