"""Check one page of 1C records and split it into canonical frames and rejected rows.

Why here and not in the readers: every source (JSON pages, CSV, XML, OData) must obey the same rules, and a
record that breaks one must land in `rejected_rows` with every reason and exactly what 1C sent, never be
dropped or half-loaded. Uniqueness is not checked here (a page does not see the rest of the extract); the
landing does.

Speed: every rule is a (condition, message) pair; conditions run vectorised over all rows, messages only over
the few rows that failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat
from typing import Any

import polars as pl

from onec.normalize import (
    Check,
    Column,
    Kind,
    failed,
    join_problems,
    parse,
    problems,
    raw_json,
    text_frame,
)
from onec.schema import (
    MONEY,
    PRICE,
    QUANTITY,
    DocumentType,
    document_lines_schema,
    document_type,
    documents_schema,
    goods_schema,
    rejected_rows_schema,
)

TOTAL_TOLERANCE = Decimal("0.005")
"""`total` is rounded to kopecks: a correct total is within half a kopeck of quantity × unit_price."""

STATUSES = ("draft", "posted")

_GOODS_COLUMNS = (
    Column("sku", Kind.TEXT),
    Column("warehouse", Kind.TEXT),
    Column("name", Kind.TEXT),
    Column("quantity", Kind.DECIMAL, QUANTITY),
    Column("unit", Kind.TEXT),
    Column("price", Kind.DECIMAL, PRICE),
    Column("id", Kind.TEXT),
    Column("code", Kind.TEXT),
    Column("deleted", Kind.BOOLEAN, pl.Boolean()),
    Column("modified_at", Kind.INSTANT),
)
_HEADER_COLUMNS = (
    Column("id", Kind.TEXT),
    Column("number", Kind.TEXT),
    Column("date", Kind.INSTANT),
    Column("status", Kind.TEXT),
    Column("posted", Kind.BOOLEAN, pl.Boolean()),
    Column("counterparty", Kind.TEXT),
    Column("warehouse", Kind.TEXT),
    Column("warehouse_to", Kind.TEXT),
    Column("notes", Kind.TEXT),
    Column("deleted", Kind.BOOLEAN, pl.Boolean()),
    Column("modified_at", Kind.INSTANT),
)
_LINE_COLUMNS = (
    Column("line", Kind.INTEGER, pl.Int32()),
    Column("sku", Kind.TEXT),
    Column("name", Kind.TEXT),
    Column("quantity", Kind.DECIMAL, QUANTITY),
    Column("unit_price", Kind.DECIMAL, PRICE),
    Column("total", Kind.DECIMAL, MONEY),
    Column("book_quantity", Kind.DECIMAL, QUANTITY),
)


@dataclass(frozen=True)
class CheckedBatch:
    """One checked page: the canonical frames of the records that passed, and the ones that did not.

    A frame is None when the batch is not about that entity (goods vs documents). `line_document_rows`
    gives, for each row of `lines`, the row of its document in `documents`; the landing needs it only when one
    batch holds the same document number twice (lines cannot then be told apart by number).
    """

    goods: pl.DataFrame | None
    documents: pl.DataFrame | None
    lines: pl.DataFrame | None
    rejected: pl.DataFrame
    line_document_rows: pl.Series | None = None


def check_goods(
    records: Sequence[Mapping[str, Any]],
    *,
    snapshot_date: dt.date,
    timezone: str,
    run_id: str,
    source: str = "json",
) -> CheckedBatch:
    """Goods positions of one snapshot: sku, name, warehouse and a numeric quantity are required."""
    rows, structure = _as_rows(records)
    text = text_frame(rows, {c.name: (c.name,) for c in _GOODS_COLUMNS})
    typed = parse(_with_structure(text, structure), _GOODS_COLUMNS, timezone)
    checks = problems(_GOODS_COLUMNS) + [_required(name) for name in ("sku", "name", "quantity", "warehouse")]
    checked = typed.with_columns(
        pl.col("deleted").fill_null(False),
        pl.lit(snapshot_date, pl.Date).alias("snapshot_date"),
        _failed(checks),
    ).collect()
    bad = _reasons(checked.filter(pl.col("_bad")), checks).select(
        "_i",
        pl.concat_str([pl.col("sku").fill_null(""), pl.col("warehouse").fill_null("")], separator="|").alias(
            "record_key"
        ),
        pl.lit(snapshot_date, pl.Date).alias("partition_date"),
        "_reason",
    )
    return CheckedBatch(
        goods=_conform(checked.filter(~pl.col("_bad")), goods_schema(timezone)),
        documents=None,
        lines=None,
        rejected=_rejected(records, bad, entity="goods", doc_type=None, source=source, run_id=run_id),
    )


def check_documents(
    records: Sequence[Mapping[str, Any]],
    *,
    doc_type: str,
    date_from: dt.date,
    date_to: dt.date,
    timezone: str,
    run_id: str,
    source: str = "json",
) -> CheckedBatch:
    """Documents of one type extracted for [date_from, date_to).

    A document with any bad line is rejected whole (one rejected row, the raw being the whole document): a
    partial document in the warehouse would be worse than none.
    """
    kind = document_type(doc_type)
    rows, structure = _as_rows(records)
    items, owners, item_structure, counts = _flatten_items(rows)
    header, header_checks = _header(rows, structure, counts, kind, (date_from, date_to), timezone)
    lines, line_checks = _lines(items, owners, item_structure, kind)
    bad_docs = lines.filter(pl.col("_bad"))["_i"].unique()
    header = header.with_columns(pl.col("_bad") | pl.col("_i").is_in(bad_docs.implode()))
    good = header.filter(~pl.col("_bad")).with_row_index("_row")
    good_lines = lines.join(
        good.select("_i", "_row", "number", "doc_date"), on="_i", how="inner", maintain_order="left"
    )
    bad = _document_rejects(
        header.filter(pl.col("_bad")),
        lines.filter(pl.col("_bad")),
        header_checks,
        line_checks,
        (date_from, date_to),
    )
    return CheckedBatch(
        goods=None,
        documents=_conform(good.with_columns(pl.lit(doc_type).alias("doc_type")), documents_schema(timezone)),
        lines=_conform(good_lines.with_columns(pl.lit(doc_type).alias("doc_type")), document_lines_schema()),
        rejected=_rejected(records, bad, entity="documents", doc_type=doc_type, source=source, run_id=run_id),
        line_document_rows=good_lines["_row"].cast(pl.Int64).rename("line_document_rows"),
    )


def _header(
    rows: Sequence[dict[str, Any]],
    structure: list[str | None],
    counts: list[int | None],
    kind: DocumentType,
    window: tuple[dt.date, dt.date],
    timezone: str,
) -> tuple[pl.DataFrame, list[Check]]:
    """Typed headers with `_i` (record index), `_bad`, and the checks that explain `_bad`."""
    sources: dict[str, tuple[str, ...]] = {c.name: (c.name,) for c in _HEADER_COLUMNS}
    if kind.counterparty_field:
        sources["counterparty"] = (kind.counterparty_field, "counterparty")
    text = _with_structure(text_frame(rows, sources), structure).with_columns(
        pl.Series("_items", counts, dtype=pl.Int64)
    )
    typed = parse(text, _HEADER_COLUMNS, timezone)
    col = pl.col
    status = col("status").str.to_lowercase()
    known = status.is_in(STATUSES)
    from_posted = pl.when(col("posted")).then(pl.lit("posted")).when(col("posted").not_()).then(pl.lit("draft"))
    typed = typed.with_columns(
        pl.coalesce(pl.when(known).then(status), from_posted).alias("status"),
        pl.coalesce(col("posted"), pl.when(known).then(status == "posted")).alias("posted"),
        col("status").alias("_status_text"),
        col("deleted").fill_null(False),
        col("date").dt.date().alias("doc_date"),
        (col("_items").fill_null(0).cum_sum() - col("_items").fill_null(0)).alias("_first_line"),
    )
    date_from, date_to = window
    checks = [
        *problems([c for c in _HEADER_COLUMNS if c.name != "counterparty"]),
        *(_required(name) for name in ("number", "date", "warehouse")),
        (col("_items").is_null(), pl.lit("items: expected a list of lines")),
        (col("_items") == 0, pl.lit("no lines")),
        (
            col("_status_text").is_not_null() & ~col("_status_text").str.to_lowercase().is_in(STATUSES),
            pl.format("status: must be draft or posted, got '{}'", col("_status_text")),
        ),
        (col("status").is_null() & ~col("posted__bad"), pl.lit("status: required")),
        (
            col("_status_text").is_not_null() & ((col("status") == "posted") != col("posted")),
            pl.format("status '{}' disagrees with posted={}", col("status"), col("posted")),
        ),
        (
            ~col("doc_date").is_between(date_from, date_to, closed="left"),
            pl.format(f"date: day {{}} is outside the requested range [{date_from}, {date_to})", col("doc_date")),
        ),
    ]
    label = kind.counterparty_field or "counterparty"
    checks += _renamed(problems([c for c in _HEADER_COLUMNS if c.name == "counterparty"]), label)
    if kind.counterparty_field:
        checks.append(_required("counterparty", label))
    if kind.slug == "transfer":
        checks.append(_required("warehouse_to", "warehouse_to", " for a transfer"))
        checks.append((col("warehouse_to") == col("warehouse"), pl.lit("warehouse_to: same as warehouse")))
    return typed.with_columns(_failed(checks)).collect(), checks


def _lines(
    items: list[dict[str, Any]], owners: list[int], structure: list[str | None] | None, kind: DocumentType
) -> tuple[pl.DataFrame, list[Check]]:
    """Typed lines with `_i` (their document's record index), `_bad`, and the checks that explain `_bad`."""
    text = _with_structure(text_frame(items, {c.name: (c.name,) for c in _LINE_COLUMNS}), structure)
    text = text.rename({"_i": "_n"}).with_columns(pl.Series("_i", owners, dtype=pl.UInt32))
    typed = parse(text, _LINE_COLUMNS, "UTC")
    col = pl.col
    zero = pl.lit(Decimal(0))
    sign = "≥" if kind.has_book_quantity else ">"
    quantity_ok = col("quantity") >= zero if kind.has_book_quantity else col("quantity") > zero
    product = col("quantity") * col("unit_price")
    checks = [
        *problems(_LINE_COLUMNS),
        *(_required(name) for name in ("line", "sku", "quantity", "unit_price", "total")),
        (col("line") <= 0, pl.lit("line: must be positive")),
        (pl.len().over("_i", "line") > 1, pl.lit("line: number used twice in the document")),
        (~quantity_ok, pl.format(f"quantity: must be {sign} 0, got {{}}", col("quantity"))),
        (col("unit_price") < zero, pl.format("unit_price: must be ≥ 0, got {}", col("unit_price"))),
        (
            (col("total") - product).abs() > pl.lit(TOTAL_TOLERANCE),
            pl.format("total {} ≠ quantity × unit_price = {}", col("total"), product),
        ),
    ]
    if kind.has_book_quantity:
        checks.append(_required("book_quantity", "book_quantity", " for an inventory"))
        checks.append(
            (
                col("book_quantity") < zero,
                pl.format("book_quantity: must be ≥ 0, got {}", col("book_quantity")),
            )
        )
    return typed.with_columns(_failed(checks)).collect(), checks


def _document_rejects(
    header: pl.DataFrame,
    lines: pl.DataFrame,
    header_checks: list[Check],
    line_checks: list[Check],
    window: tuple[dt.date, dt.date],
) -> pl.DataFrame:
    """One row per failing document: its reasons, then each bad line's, prefixed with the line it is about."""
    if header.is_empty():
        return pl.DataFrame(
            schema={"_i": pl.UInt32, "record_key": pl.String, "partition_date": pl.Date, "_reason": pl.String}
        )
    position = pl.col("_n") - pl.col("_first_line") + 1
    line_reasons = (
        _reasons(
            lines.join(header.select("_i", "_first_line"), on="_i", how="inner", maintain_order="left"),
            line_checks,
        )
        .with_columns(
            pl.format(
                "line {}: {}",
                pl.coalesce(pl.col("line__raw").str.strip_chars(), pl.format("#{}", position)),
                pl.col("_reason"),
            ).alias("_reason")
        )
        .group_by("_i", maintain_order=True)
        .agg(pl.col("_reason").str.join("; ").alias("_line_reasons"))
    )
    date_from, _ = window
    return (
        _reasons(header, header_checks)
        .join(line_reasons, on="_i", how="left", maintain_order="left")
        .select(
            "_i",
            pl.col("number").alias("record_key"),
            pl.when(pl.col("doc_date").is_between(*window, closed="left"))
            .then(pl.col("doc_date"))
            .otherwise(pl.lit(date_from, pl.Date))
            .alias("partition_date"),
            pl.concat_str([pl.col("_reason"), pl.col("_line_reasons")], separator="; ", ignore_nulls=True).alias(
                "_reason"
            ),
        )
    )


def _with_structure(text: pl.DataFrame, structure: list[str | None] | None) -> pl.DataFrame:
    """Add the record index and the structural problem (a record that is not an object, …) of each row."""
    problems = pl.lit(None, pl.String) if structure is None else pl.Series(structure, dtype=pl.String)
    return text.with_columns(problems.alias("_structure")).with_row_index("_i")


def _failed(checks: list[Check]) -> pl.Expr:
    return failed([(pl.col("_structure").is_not_null(), pl.col("_structure")), *checks]).alias("_bad")


def _reasons(frame: pl.DataFrame, checks: list[Check]) -> pl.DataFrame:
    """`_reason` for failing rows; a record that is not even an object gets only that, not a list of missing
    fields."""
    return frame.with_columns(pl.coalesce(pl.col("_structure"), join_problems(checks)).alias("_reason"))


def _required(name: str, label: str | None = None, context: str = "") -> Check:
    """`<field>: required` when the value is absent (not merely unreadable: that has its own message)."""
    return (
        pl.col(name).is_null() & ~pl.col(f"{name}__bad"),
        pl.lit(f"{label or name}: required{context}"),
    )


def _renamed(checks: list[Check], label: str) -> list[Check]:
    """Name the counterparty by the field 1C sends it in (supplier, customer)."""
    return [(cond, message.str.replace("counterparty:", f"{label}:", literal=True)) for cond, message in checks]


def _as_rows(records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Plain dicts to read fields from, and a structural problem per record (a page can hold garbage)."""
    rows: list[dict[str, Any]] = []
    problems: list[str | None] = []
    for record in records:
        if type(record) is dict:
            rows.append(record)
            problems.append(None)
        elif isinstance(record, Mapping):
            rows.append(dict(record))
            problems.append(None)
        else:
            rows.append({})
            problems.append(f"record: expected an object, got {type(record).__name__}")
    return rows, problems


def _flatten_items(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[int], list[str | None] | None, list[int | None]]:
    """All lines of all documents with their document's index, a structural problem per line (None when
    every line is an object, the normal case), and the number of lines per document (None when `items` is not
    a list: that is its own problem, not "no lines"). Bulk list operations keep this at C speed."""
    items: list[Any] = []
    owners: list[int] = []
    counts: list[int | None] = []
    for index, row in enumerate(rows):
        lines = row.get("items")
        if lines is None:
            lines = []
        elif type(lines) is not list:
            counts.append(None)
            continue
        items.extend(lines)
        owners.extend(repeat(index, len(lines)))
        counts.append(len(lines))
    if set(map(type, items)) <= {dict}:
        return items, owners, None, counts
    problems = [
        None if isinstance(line, Mapping) else f"expected an object, got {type(line).__name__}" for line in items
    ]
    plain = [line if type(line) is dict else dict(line) if isinstance(line, Mapping) else {} for line in items]
    return plain, owners, problems, counts


def _conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Exactly the canonical columns, in order, with the canonical dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _rejected(
    records: Sequence[Any],
    bad: pl.DataFrame,
    *,
    entity: str,
    doc_type: str | None,
    source: str,
    run_id: str,
) -> pl.DataFrame:
    """Rejected rows with the record exactly as 1C sent it (only the failing records are serialised)."""
    indexes = bad["_i"].to_list()
    return _conform(
        bad.with_columns(
            pl.lit(entity).alias("entity"),
            pl.lit(doc_type, pl.String).alias("doc_type"),
            pl.col("_reason").alias("reason"),
            pl.Series("raw", [raw_json(records[i]) for i in indexes], dtype=pl.String),
            pl.lit(source).alias("source"),
            pl.lit(run_id).alias("run_id"),
            pl.lit(dt.datetime.now(dt.UTC)).alias("rejected_at"),
        ),
        rejected_rows_schema(),
    )
