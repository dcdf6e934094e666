"""`./dev bench compare`'s plumbing at toy sizes (no speed is asserted: speed is the benchmark's business): it
runs end to end, every reader reads every line, and the page it writes states each of issue 15's targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.compare import (  # noqa: E402
    DLT_DUCKDB,
    DLT_PARQUET,
    LAND,
    ONEC,
    RAW,
    JsonFigures,
    Results,
    Size,
    measure_json,
    proposed_targets,
    targets,
)

TARGETS = (
    "≥ 0.5× raw", "≥ 20× dlt-duckdb", "≥ 5× dlt-parquet", "peak RSS at the large size",
    "CSV end to end (windows-1251 `;`)", "CSV end to end (tidy UTF-8)", "UDE XML reader ≥ 0.7×",
    "UDE XML end to end ≥ 0.5×", "UDE XML peak RSS < 300 MB",
)  # fmt: skip


@pytest.mark.e2e
def test_the_comparison_runs_end_to_end_and_writes_its_page(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    history = "\n## History\n\n### A run that chose a design\n\nkept | as | written\n"
    page.write_text("# An older run's page\n\n| stale | figures |\n" + history, encoding="utf-8")
    arguments = ["--lines", "1100:1", "--page-size", "25", "--csv-mb", "1", "--xml-mb", "1", "--no-dlt",
                 "--output", str(page)]  # fmt: skip
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compare.py"), *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    text = page.read_text(encoding="utf-8")
    assert "./dev bench compare " + " ".join(arguments) in text
    assert "Every reader read the same document lines at each size" in text
    assert "| `onec-etl sync` (validate, DuckDB, lake) | 1 |" in text
    targets = text.split("## Targets")[1]
    for target in TARGETS:
        assert target in targets
    assert "| JSON at 1,100 lines ≥ 20× dlt-duckdb | — | not measured |" in targets
    assert "Skipped in this run: dlt (--no-dlt)." in text
    assert "| JSON at 1,100 lines ≥ 1.5× the land floor |" in text.split("## Proposed targets")[1]
    assert "stale" not in text
    assert text.endswith("Skipped in this run: dlt (--no-dlt).\n" + history), "the History section is kept whole"


@pytest.mark.e2e
def test_dlt_reads_every_line_the_raw_floor_reads() -> None:
    """dlt's paginator is configured from the contract's paging, not from what onec's client does: with pages of
    25 records (two or more per document type) it must walk every page of every endpoint, or the comparison would
    time less work than ours."""
    pytest.importorskip("dlt")
    failures: dict[str, str] = {}
    figures = measure_json(Size(lines=1100, runs=1), [RAW, DLT_DUCKDB, DLT_PARQUET], page_size=25, failures=failures)
    assert failures == {}
    lines = {reader: f.lines for reader, f in figures.items()}
    assert lines[RAW] > 1000
    assert lines == dict.fromkeys(lines, lines[RAW])


def test_each_target_is_met_exactly_at_its_threshold_and_not_below() -> None:
    """The issue's thresholds as the page states them: at the threshold is met, a hair under is not, a target
    this run did not measure says so instead of passing."""
    at = _results(json_ratio=0.5, dlt_ratio=20.0, parquet_ratio=5.0, rss_ratio=1.2, file_ratio=0.7, xml_peak=299)
    under = _results(json_ratio=0.49, dlt_ratio=19.9, parquet_ratio=4.9, rss_ratio=1.21, file_ratio=0.49, xml_peak=300)
    assert [t.met for t in targets(at)] == [True] * 12
    assert [t.met for t in targets(under)] == [False] * 12
    small = _results(json_ratio=1, dlt_ratio=1, parquet_ratio=1, rss_ratio=1, file_ratio=1, xml_peak=1, xml_mb=499)
    assert targets(small)[-1].met is None


def test_each_proposed_target_is_met_exactly_at_its_threshold_against_its_floor() -> None:
    at = _results(json_ratio=1, dlt_ratio=1, parquet_ratio=1, rss_ratio=1, file_ratio=1, xml_peak=1, land_ratio=1.5,
                  floor_ratios={"csv-e2e": 0.3, "tidy-e2e": 0.35, "xml-reader": 0.8, "xml-e2e": 0.6})  # fmt: skip
    under = _results(json_ratio=1, dlt_ratio=1, parquet_ratio=1, rss_ratio=1, file_ratio=1, xml_peak=1,
                     land_ratio=1.49, floor_ratios={"csv-e2e": 0.29, "tidy-e2e": 0.34, "xml-reader": 0.79,
                                                    "xml-e2e": 0.59})  # fmt: skip
    assert [t.met for t in proposed_targets(at)] == [True] * 6
    assert [t.met for t in proposed_targets(under)] == [False] * 6


def _results(
    *, json_ratio: float, dlt_ratio: float, parquet_ratio: float, rss_ratio: float, file_ratio: float,
    xml_peak: float, xml_mb: float = 500, land_ratio: float = 1.0, floor_ratios: dict[str, float] | None = None,
) -> Results:  # fmt: skip
    """Two sizes where onec-etl reads 1,000 lines/s, and files where every mode is `file_ratio` of its raw parser
    (the XML reader's target is 0.7, the others' 0.5: `file_ratio` 0.7 meets all, 0.49 none). The floors run at
    100 MB/s, and a mode named in `floor_ratios` at that ratio of its floor (the proposed targets' measure)."""

    def size(peak: float) -> dict[str, JsonFigures]:
        speeds = {RAW: 1000 / json_ratio, LAND: 1000 / land_ratio, DLT_DUCKDB: 1000 / dlt_ratio,
                  DLT_PARQUET: 1000 / parquet_ratio, ONEC: 1000}  # fmt: skip
        return {reader: JsonFigures(lines=10, lines_s=speed, peak_mb=peak, runs=1) for reader, speed in speeds.items()}

    raw = {"mb": xml_mb, "mb_s": 100.0, "peak_mb": xml_peak, "rows": 1.0}
    ours = {**raw, "mb_s": 100.0 * file_ratio}
    files = {"csv-raw": raw, "csv-e2e": ours, "tidy-raw": raw, "tidy-e2e": ours, "tidy-floor": raw}
    files |= {"xml-raw": raw, "xml-floor": raw, "xml-reader": ours, "xml-e2e": ours}
    files |= {mode: {**raw, "mb_s": 100.0 * ratio} for mode, ratio in (floor_ratios or {}).items()}
    return Results(json={200_000: size(100.0), 2_000_000: size(100.0 * rss_ratio)}, files=files)
