"""Exchange-file readers: MB/s and peak memory, each beside the raw parser on the same file.

    .venv/bin/python bench/readers.py [--csv-mb 300] [--xml-mb 500] [--runs 3]

The files are the sandbox's own exports with every §1.9 variation on (windows-1251 CSV with `;`, decimal commas,
CRLF, quoting, Russian headers; UDE XML with a BOM and shuffled elements), replicated (each copy renumbered, so
documents stay unique) up to the size asked for. Every measurement runs in a fresh child process, so each peak
RSS is its own. The CSV is also measured in its tidy §1.4 form (UTF-8, `,`, LF, quoting only where needed:
`tidy-*` modes) from the same documents. Figures are medians over `--runs`; the ratio shows the reader's
overhead over the raw parser of the same file:
- CSV raw: `pl.read_csv` with an explicit all-String schema (utf8-lossy: Polars cannot decode windows-1251);
  CSV end to end: `CsvExportReader` → `check_documents_text` → documents and lines written to Parquet, the
  next chunk read while the current one is checked (`onec.prefetch`, as the sources and file loads do).
- CSV floor (tidy file only): what Polars alone does with no checks at all, `scan_csv` → the canonical dtypes
  (plain casts: they round and accept exponents, which is why the pipeline checks) → `sink_parquet`; no record can
  be rejected, so no line numbers or raw text are kept. The ceiling for any end-to-end CSV load on this machine.
- XML raw: lxml `iterparse` (tag-filtered, clearing as it goes, no dicts); XML floor: the same, plus every
  element's attributes and text read once into Python (the ceiling of any reader over lxml); XML reader:
  `UdeXmlReader.batches` (String frames of documents and lines, ready for validation); XML end to end: batches →
  `check_documents` → Parquet, prefetched the same way.
Their history (what was tried, and why the readers look as they do) is in docs/benchmarks.md, History.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from bench.harness import child_peak_rss_mb, median, run_child  # noqa: E402
from onec.validation import CheckedBatch  # noqa: E402

ZONE = "Europe/Moscow"
DOC_TYPE = "shipment"
PREFIX = "РС-"  # shipment numbers; each copy gets its own prefix
START, DAYS = date(2026, 1, 1), 28
MODES = {  # mode → the file it reads
    "csv-raw": "csv",
    "csv-e2e": "csv",
    "tidy-raw": "tidy",
    "tidy-e2e": "tidy",
    "tidy-floor": "tidy",
    "xml-raw": "xml",
    "xml-floor": "xml",
    "xml-reader": "xml",
    "xml-e2e": "xml",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    parser.add_argument("--csv-mb", type=int, default=300)
    parser.add_argument("--xml-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        mode, path = args.child
        print(json.dumps(_measure(mode, Path(path))))
        return
    _report(measure_readers(args.csv_mb, args.xml_mb, args.runs))


def measure_readers(csv_mb: int, xml_mb: int, runs: int) -> dict[str, dict[str, float]]:
    """Every mode of `MODES` on files of about the sizes asked for, `runs` times each in a fresh child process:
    the median MB/s and the highest peak RSS per mode (`bench compare` reports these beside the JSON path)."""
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        files = _files(Path(tmp), csv_mb, xml_mb)
        figures = {}
        for mode, file in MODES.items():
            measured = [run_child(Path(__file__), [mode, str(files[file])], {}) for _ in range(runs)]
            figures[mode] = {
                "mb": measured[0]["mb"],
                "mb_s": median([m["mb_s"] for m in measured]),
                "peak_mb": max(m["peak_mb"] for m in measured),
                "rows": measured[0]["rows"],
            }
        return figures


def _report(figures: dict[str, dict[str, float]]) -> None:
    print(f"{'mode':<11} {'file MB':>8} {'MB/s':>8} {'vs raw':>7} {'peak MB':>8} {'rows':>10}")
    for mode, f in figures.items():
        raw = figures[mode.split("-")[0] + "-raw"]["mb_s"]
        ratio = f["mb_s"] / raw
        print(f"{mode:<11} {f['mb']:>8.0f} {f['mb_s']:>8.1f} {ratio:>7.2f} {f['peak_mb']:>8.0f} {f['rows']:>10.0f}")
    csv, xml = figures["csv-e2e"], figures["xml-reader"]
    tidy, floor = figures["tidy-e2e"], figures["tidy-floor"]
    print(f"\nCSV end to end into Parquet: {csv['mb_s']:.0f} MB/s with every §1.9 variation on,")
    print(f"  {tidy['mb_s']:.0f} MB/s for the tidy §1.4 form (UTF-8, commas, LF, quoting only where needed);")
    print(f"  Polars alone with no checks (tidy-floor): {floor['mb_s']:.0f} MB/s")
    print(f"XML reader: {xml['mb_s']:.0f} MB/s, peak {xml['peak_mb']:.0f} MB on {xml['mb']:.0f} MB")
    e2e = figures["xml-e2e"]
    print(f"XML end to end into Parquet: {e2e['mb_s']:.0f} MB/s, peak {e2e['peak_mb']:.0f} MB")


# --- the files


def _files(directory: Path, csv_mb: int, xml_mb: int) -> dict[str, Path]:
    from onec.sandbox import SandboxData
    from onec.sandbox.exports import ExportVariant, documents_csv, documents_xml

    data = SandboxData.generate(seed=1, documents=6000, start=START, days=DAYS, timezone=ZONE)
    documents = data.documents_holdings(DOC_TYPE)
    variant, tidy = ExportVariant.everything(seed=1), ExportVariant()
    csv_body = b"".join(documents_csv(documents, variant))
    tidy_body = b"".join(documents_csv(documents, tidy))
    xml_body = b"".join(documents_xml(documents, variant, data_created()))
    return {
        "csv": _replicate_csv(csv_body, directory / "documents.csv", csv_mb, variant.csv_encoding),
        "tidy": _replicate_csv(tidy_body, directory / "tidy.csv", csv_mb, tidy.csv_encoding),
        "xml": _replicate_xml(xml_body, directory / "documents.xml", xml_mb),
    }


def data_created() -> datetime:
    return datetime(2026, 2, 1, 2, 0)


def _copies(body: bytes, encoding: str, size_mb: int) -> Iterator[bytes]:
    needed = size_mb * 1024 * 1024 // max(1, len(body)) + 1
    prefix = PREFIX.encode(encoding)
    for copy in range(needed):
        yield body.replace(prefix, f"R{copy:04}-".encode(encoding))


def _replicate_csv(body: bytes, path: Path, size_mb: int, encoding: str) -> Path:
    header, _, rows = body.partition(b"\n")
    with path.open("wb") as out:
        out.write(header + b"\n")
        for copy in _copies(rows, encoding, size_mb):
            out.write(copy)
    return path


def _replicate_xml(body: bytes, path: Path, size_mb: int) -> Path:
    start = body.index(b"<Documents>") + len(b"<Documents>")
    end = body.rindex(b"</Documents>")
    with path.open("wb") as out:
        out.write(body[:start])
        for copy in _copies(body[start:end], "utf-8", size_mb):
            out.write(copy)
        out.write(body[end:])
    return path


# --- the measurements (child process)


def _measure(mode: str, path: Path) -> dict[str, float]:
    import lxml.etree  # noqa: F401  (imports are not what is measured)
    import polars  # noqa: F401

    import onec.sources.csv_export
    import onec.sources.ude_xml
    import onec.validation  # noqa: F401

    size_mb = path.stat().st_size / 1024 / 1024
    measure = {
        "csv-raw": _csv_raw, "csv-e2e": _csv_e2e, "tidy-raw": _csv_raw, "tidy-e2e": _csv_e2e, "tidy-floor": _csv_floor,
        "xml-raw": _xml_raw, "xml-floor": _xml_floor, "xml-reader": _xml_reader, "xml-e2e": _xml_e2e,
    }[mode]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-readers-out-") as out:  # what the end-to-end modes write
        started = time.perf_counter()
        rows = measure(path, Path(out))
        elapsed = time.perf_counter() - started
    return {"mb": size_mb, "mb_s": size_mb / elapsed, "peak_mb": child_peak_rss_mb(), "rows": rows}


def _csv_raw(path: Path, _out: Path) -> int:
    import polars as pl

    with path.open("rb") as handle:
        header = handle.readline()
    separator = ";" if header.count(b";") > header.count(b",") else ","
    schema = {f"c{i}": pl.String for i in range(header.count(separator.encode()) + 1)}
    frame = pl.read_csv(path, separator=separator, has_header=False, skip_rows=1, schema=schema, encoding="utf8-lossy")
    return frame.height


def _csv_e2e(path: Path, out: Path) -> int:
    from onec.prefetch import prefetched
    from onec.sources.csv_export import CsvEntity, CsvExportReader
    from onec.validation import check_documents_text

    lines = 0
    with path.open("rb") as handle:
        reader = CsvExportReader(CsvEntity.DOCUMENT_LINES)
        chunks = iter(lambda: handle.read(8 * 1024 * 1024), b"")
        for n, records in enumerate(prefetched(reader.read(chunks))):
            batch = check_documents_text(
                records, doc_type=DOC_TYPE, date_from=START, date_to=date(2026, 2, 1), timezone=ZONE,
                run_id="bench", source="csv",
            )  # fmt: skip
            lines += _write_batch(batch, out, n)
    return lines


def _csv_floor(path: Path, out: Path) -> int:
    from onec.exchange_columns import DOCUMENT_LINE_HEADERS
    from onec.schema import document_lines_schema, documents_schema

    with path.open("rb") as handle:
        header = handle.readline().decode().strip().split(",")
    dtypes = {**documents_schema(ZONE), **document_lines_schema()}
    casts = {DOCUMENT_LINE_HEADERS[name]: dtype for name, dtype in dtypes.items() if name in DOCUMENT_LINE_HEADERS}
    frame = pl.scan_csv(path, schema=dict.fromkeys(header, pl.String)).with_columns(
        _cast(pl.col(column), dtype) for column, dtype in casts.items()
    )
    frame.sink_parquet(out / "lines.parquet", compression="lz4")
    rows: int = pl.scan_parquet(out / "lines.parquet").select(pl.len()).collect().item()
    return rows


def _cast(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        local = column.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False)
        return local.dt.replace_time_zone(dtype.time_zone, ambiguous="earliest", non_existent="null")
    if isinstance(dtype, pl.Boolean):
        return column == "true"
    return column.cast(dtype, strict=False)


def _write_batch(batch: CheckedBatch, out: Path, n: int) -> int:
    """Land one checked batch as Parquet (what "end to end" means here); returns its lines."""
    assert batch.documents is not None and batch.lines is not None
    batch.documents.write_parquet(out / f"documents-{n}.parquet", compression="lz4")
    batch.lines.write_parquet(out / f"lines-{n}.parquet", compression="lz4")
    return batch.lines.height


def _xml_raw(path: Path, _out: Path) -> int:
    from lxml import etree

    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag="Document", resolve_entities=False):
        count += 1
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count


def _xml_floor(path: Path, _out: Path) -> int:
    """The raw parse, plus reading every value of every element once into Python (its attributes and text), as
    any reader built on lxml must: the ceiling of such a reader, whatever it does with the values."""
    from lxml import etree

    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag="Document", resolve_entities=False):
        count += 1
        for node in element.iter():
            node.items()
            _ = node.text
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count


def _xml_reader(path: Path, _out: Path) -> int:
    from onec.sources.ude_xml import UdeXmlReader

    with path.open("rb") as handle:
        return sum(len(batch) for batch in UdeXmlReader(handle).batches(DOC_TYPE))


def _xml_e2e(path: Path, out: Path) -> int:
    from onec.prefetch import prefetched
    from onec.sources.ude_xml import UdeXmlReader
    from onec.validation import check_documents

    lines = 0
    with path.open("rb") as handle:
        for n, records in enumerate(prefetched(UdeXmlReader(handle).batches(DOC_TYPE))):
            batch = check_documents(
                records, doc_type=DOC_TYPE, date_from=START, date_to=date(2026, 2, 1), timezone=ZONE,
                run_id="bench", source="xml",
            )  # fmt: skip
            lines += _write_batch(batch, out, n)
    return lines


if __name__ == "__main__":
    main()
