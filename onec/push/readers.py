"""Read an import file (CSV, Parquet or JSON) into contract-shaped records, exactly as the user wrote them.

Why records of text and not typed frames: validation (onec/validation.py) already reads every spelling the
contract allows (decimal commas, padded strings, `Да/Нет`, empty dates) and rejects a bad value with a reason
instead of failing the file; readers only have to lay the file out as the records 1C's JSON would carry.

Document files come as one row per document line (CSV with the §1.4 header, Parquet with the same columns) or as a
JSON array of documents; goods files as one row per (sku, warehouse) or a JSON array of goods.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from onec.errors import InputDataError
from onec.exchange_columns import DOCUMENT_LINE_HEADERS, GOODS_HEADERS, RUSSIAN_GOODS_HEADERS, by_header
from onec.schema import document_type

GOODS = "goods"
FORMATS = ("csv", "parquet", "json")

DOCUMENT_LINE_COLUMNS: dict[str, str] = by_header(DOCUMENT_LINE_HEADERS)
"""§1.4's document-lines header → contract field."""
HEADER_FIELDS = ("id", "date", "status", "posted", "counterparty", "warehouse", "warehouse_to", "notes", "deleted")
"""Document-level fields repeated on every line of a document: they must agree across its lines."""
LINE_FIELDS = ("line", "sku", "name", "quantity", "unit_price", "total", "book_quantity")

GOODS_COLUMNS: dict[str, str] = by_header(GOODS_HEADERS)
_RUSSIAN_ALIASES = {
    alias: GOODS_HEADERS[column] for column, alias in RUSSIAN_GOODS_HEADERS.items() if column != "price"
}
_PRICE_ALIAS = "Цена"


class InputError(InputDataError, ValueError):
    """The file cannot be read as an import at all (not a single record can be judged)."""


def file_format(path: Path) -> str:
    """The format from the file name's extension."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InputError(f"{path.name}: unknown format {suffix!r}; expected a .csv, .parquet or .json file")
    return suffix


def read_records(path: Path, kind: str) -> list[dict[str, Any]]:
    """Documents (with `items`) of type `kind`, or goods rows when `kind` is "goods", from one file."""
    return [record for chunk in read_record_chunks(path, kind, sys.maxsize) for record in chunk]


def read_record_chunks(
    path: Path, kind: str, documents: int, first: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """`read_records` in chunks of about `documents` documents (the first of `first`, so that the first request
    can leave sooner), in date order (see `chunk_ids`), so an import can send the first documents while it still
    turns later ones into records and checks them.

    Every chunk holds *all* records of its numbers (lines of one document may be anywhere in a CSV; a number may
    repeat in a JSON array), so a chunk can be validated alone and judged exactly as the whole file would be.
    Records without a number come in the last chunk. The file is read and split here, before the first chunk is
    asked for, so an unreadable file fails at once. Goods files come in one chunk (their rule of one row per
    (sku, warehouse) spans the file, and they need no grouping).
    """
    if kind != GOODS:
        document_type(kind)
    fmt = file_format(path)
    sizes = (documents, documents if first is None else first)
    if fmt == "json":
        records = _json_records(path, kind)
        if kind == GOODS:
            return iter([records])
        keys = pl.Series([key_text(r.get("number")) if isinstance(r, dict) else None for r in records], dtype=pl.String)
        dates = [r.get("date") if isinstance(r, dict) else None for r in records]
        chunks = chunk_ids(keys, pl.Series([d if isinstance(d, str) else None for d in dates], dtype=pl.String), *sizes)
        return _json_chunks(records, chunks)
    columns = GOODS_COLUMNS if kind == GOODS else DOCUMENT_LINE_COLUMNS
    frame = _csv_frame(path, columns) if fmt == "csv" else _parquet_frame(path, columns)
    if kind == GOODS:
        return iter([frame.to_dicts()])
    keys = frame["number"].str.strip_chars().replace("", None)
    return _line_chunks(frame, chunk_ids(keys, frame["date"], *sizes))


def chunk_ids(keys: pl.Series, dates: pl.Series, documents: int, first: int) -> pl.DataFrame:
    """Per record, `_chunk` and `_place`: `first` distinct keys in the first chunk and `documents` in each
    later one, keys placed in date order, every record with its key, records without a key (null) in one chunk
    after all others. Records go out sorted by place (a stable sort: a document's lines keep their file order).

    Why date order: an import verifies what it sent by reading 1C back one date range at a time while later
    documents are still being sent (onec/push/verify.py), which only pays when documents go out by date. A key's
    date is its first record's text: the ISO dates validation accepts sort as they read; keys without one go
    last, and ties keep file order. Only the order depends on this; every record is still judged by validation
    alone."""
    records = pl.DataFrame({"_key": keys, "_date": dates}).with_row_index("_row")
    places = (
        records.filter(pl.col("_key").is_not_null())
        .group_by("_key", maintain_order=True)
        .agg(pl.col("_date").first().str.strip_chars().str.replace_all(" ", "T", literal=True), pl.col("_row").first())
        .sort(pl.col("_date").is_null(), "_date", "_row")
        .with_row_index("_place")
        .select("_key", pl.col("_place").cast(pl.Int64))
    )
    place = pl.col("_place").fill_null(places.height)
    chunk = pl.when(place < first).then(0).otherwise(1 + (place - first) // documents)
    return records.join(places, on="_key", how="left", maintain_order="left").select(
        pl.when(pl.col("_key").is_null()).then(chunk.max() + 1).otherwise(chunk).alias("_chunk"), place
    )


def _json_chunks(records: list[Any], chunks: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    grouped: dict[int, list[Any]] = {}
    order = chunks.with_row_index("_row").sort("_place", maintain_order=True).select("_row", "_chunk").rows()
    for row, chunk in order:
        grouped.setdefault(chunk, []).append(records[row])
    for chunk in sorted(grouped):
        yield grouped[chunk]


def _line_chunks(frame: pl.DataFrame, chunks: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    parts = (
        frame.hstack(chunks)
        .sort("_place", maintain_order=True)
        .drop("_place")
        .partition_by("_chunk", as_dict=True, include_key=False, maintain_order=True)
    )
    for key in sorted(parts):
        yield group_lines(parts[key])


def key_text(value: Any) -> str | None:
    """A key field as text: padding ignored, empty means absent (a number 1C or a file gave as a JSON number
    is its text)."""
    return value.strip() or None if isinstance(value, str) else (str(value) if value is not None else None)


def group_lines(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """One document per number (padding ignored), its lines in file order; header fields come from its first
    line. Grouped by Polars: in Python this was the slowest step of an import's checking.

    A line without a number cannot belong to any document: it becomes a document of its own, which validation
    then rejects for the missing number. Header fields that differ between a document's lines are reported
    in `_header_conflicts` (validation ignores unknown keys; the plan turns it into a rejection).
    """
    key = pl.col("number").str.strip_chars()
    has_key = (key.str.len_chars() > 0).fill_null(False)
    documents = (
        rows.filter(has_key)
        .with_columns(key)
        .group_by("number", maintain_order=True)
        .agg(
            *(pl.col(name).first() for name in HEADER_FIELDS),
            pl.struct(*LINE_FIELDS).alias("items"),
            pl.any_horizontal(_blank_text(name).n_unique() > 1 for name in HEADER_FIELDS).alias("_conflicted"),
        )
    )
    records = documents.drop("_conflicted").to_dicts()
    conflicted = set(documents.filter("_conflicted")["number"].to_list())
    for record in records:
        if record["number"] in conflicted:
            record["_header_conflicts"] = _header_conflicts(rows.filter(key == record["number"]))
    loose = [
        {**{name: row[name] for name in HEADER_FIELDS}, "number": row["number"],
         "items": [{name: row[name] for name in LINE_FIELDS}]}
        for row in rows.filter(~has_key).iter_rows(named=True)
    ]  # fmt: skip
    return [*records, *loose]


def _header_conflicts(lines: pl.DataFrame) -> dict[str, set[str]]:
    """The header fields that differ between one document's lines, each with the values seen."""
    return {
        name: {_shown(value) for value in lines[name].to_list()}
        for name in HEADER_FIELDS
        if lines.select(_blank_text(name).n_unique()).item() > 1
    }


def _blank_text(name: str) -> pl.Expr:
    """`_blank` for a text column."""
    return pl.col(name).str.strip_chars().replace("", None)


def _json_records(path: Path, kind: str) -> list[dict[str, Any]]:
    try:
        parsed = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path.name}: not valid JSON ({exc})") from None
    if isinstance(parsed, dict):
        parsed = parsed.get("goods" if kind == GOODS else "documents")
    if not isinstance(parsed, list):
        what = "goods" if kind == GOODS else "documents"
        raise InputError(f"{path.name}: expected a JSON array of {what} (or an object with a '{what}' array)")
    return parsed


def _csv_frame(path: Path, columns: Mapping[str, str]) -> pl.DataFrame:
    """All-text frame from a CSV in any of §1.9's shapes: UTF-8 with or without BOM or windows-1251, `,` or
    `;`, CRLF, RFC 4180 quoting, Russian header aliases."""
    utf8 = _utf8(path.read_bytes())
    first_line = utf8.split(b"\n", 1)[0]
    separator = ";" if first_line.count(b";") > first_line.count(b",") else ","
    try:
        frame = pl.read_csv(utf8, separator=separator, infer_schema=False, quote_char='"')
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path.name}: not a readable CSV ({exc})") from None
    return _canonical_columns(frame, columns, path.name)


def _parquet_frame(path: Path, columns: Mapping[str, str]) -> pl.DataFrame:
    """Parquet with the CSV's columns, typed or not: every value becomes its text (dates as ISO, booleans as
    true/false, decimals with their digits), so one validation reads both."""
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path.name}: not a readable Parquet file ({exc})") from None
    texts = [
        pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S")
        if isinstance(dtype, pl.Datetime | pl.Date)
        else pl.col(name).cast(pl.String)
        for name, dtype in frame.schema.items()
    ]
    return _canonical_columns(frame.select(texts), columns, path.name)


def _canonical_columns(frame: pl.DataFrame, columns: Mapping[str, str], file_name: str) -> pl.DataFrame:
    """Rename the file's headers to contract fields (case and padding ignored); unknown columns are dropped."""
    by_header = {header.lower(): field for header, field in columns.items()}
    aliases = {**_RUSSIAN_ALIASES, _PRICE_ALIAS: "UnitPrice" if "UnitPrice" in columns else "Price"}
    renamed: dict[str, str] = {}
    for name in frame.columns:
        header = name.strip().lstrip("\ufeff")
        field = by_header.get(aliases.get(header, header).lower())
        if field is not None and field not in renamed.values():
            renamed[name] = field
    required = ("sku", "warehouse") if "sku" in columns.values() and "number" not in columns.values() else ("number",)
    missing = [field for field in required if field not in renamed.values()]
    if missing:
        expected = ",".join(columns)
        raise InputError(f"{file_name}: no column for {', '.join(missing)}; expected a header like {expected}")
    present = frame.select(pl.col(source).alias(field) for source, field in renamed.items())
    return present.with_columns(pl.lit(None, pl.String).alias(f) for f in columns.values() if f not in renamed.values())


def _utf8(raw: bytes) -> bytes:
    """The file as UTF-8 without a BOM: UTF-8 (BOM or not) as it is, else windows-1251 re-encoded (the two
    encodings 1C files come in). Bytes, because Polars reads them three times faster than a str."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251").encode("utf-8")
    return raw


def _blank(value: Any) -> Any:
    """Header values compared as a person reads them: padding ignored, empty means absent."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _shown(value: Any) -> str:
    return "empty" if _blank(value) is None else repr(_blank(value))
