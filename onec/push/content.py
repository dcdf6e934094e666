"""What a document *is*, independent of how it was spelled: its content hash, its totals, the body we send.

Why from the canonical frames: the file we import and the copy 1C returns go through the same validation
(onec/validation.py), so they arrive here in the same typed shape (trimmed text, fixed-scale decimals, dates in
the 1C zone), and equal documents hash equally however either side spelled them. The hash covers what the
import decides: header (number, date, warehouses, counterparty, notes) and every line's sku and figures. It
leaves out what 1C fills in itself (ids, line names from its catalog, status, modification time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import orjson
import polars as pl

from onec.schema import DocumentType

_UNIT = "\x1f"
_RECORD = "\x1e"
_LOCAL_TIME = "%Y-%m-%dT%H:%M:%S"
_HASHED_HEADER = ("number", "date", "warehouse", "warehouse_to", "counterparty", "notes")
_HASHED_LINE = ("line", "sku", "quantity", "unit_price", "total", "book_quantity")


@dataclass(frozen=True)
class DocumentContent:
    """One document's identity and figures, as the ledger, the chunker and the verification need them."""

    number: str
    content_hash: str
    lines: int
    quantity: Decimal
    total: Decimal
    date: dt.datetime | None = None
    """The document's date and time in 1C's zone (what its read-back by date range selects on)."""


@dataclass(frozen=True)
class OutgoingDocument:
    """A valid document ready to send: its content and its serialized JSON body (sent byte for byte)."""

    content: DocumentContent
    body: bytes

    @property
    def number(self) -> str:
        return self.content.number


def document_contents(documents: pl.DataFrame, lines: pl.DataFrame) -> dict[str, DocumentContent]:
    """Content per document number from canonical frames (numbers are unique within the frames)."""
    line_text = pl.concat_str([_text(name) for name in _HASHED_LINE], separator=_UNIT)
    per_document = (
        lines.sort("number", "line")
        .group_by("number", maintain_order=True)
        .agg(
            line_text.str.join(_RECORD).alias("_lines_text"),
            pl.len().alias("_lines"),
            pl.col("quantity").sum().alias("_quantity"),
            pl.col("total").sum().alias("_total"),
        )
    )
    header_text = pl.concat_str([_text(name) for name in _HASHED_HEADER], separator=_UNIT)
    joined = documents.select("number", header_text.alias("_header_text"), "date").join(
        per_document, on="number", how="left", maintain_order="left"
    )
    contents: dict[str, DocumentContent] = {}
    for number, header, moment, body, count, quantity, total in joined.iter_rows():
        digest = hashlib.sha256(f"{header}{_RECORD * 2}{body or ''}".encode()).hexdigest()
        zero = Decimal(0)
        contents[number] = DocumentContent(number, digest, count or 0, quantity or zero, total or zero, moment)
    return contents


def outgoing_documents(kind: DocumentType, documents: pl.DataFrame, lines: pl.DataFrame) -> Iterator[OutgoingDocument]:
    """Request bodies in the contract's shape (§1.3), from canonical values: decimals as exact JSON numbers,
    the date as 1C's local time without offset, the counterparty under its type's field name."""
    contents = document_contents(documents, lines)
    header = documents.select(
        "number",
        pl.col("date").dt.strftime(_LOCAL_TIME).alias("date"),
        "warehouse",
        "warehouse_to",
        "counterparty",
        "notes",
    )
    line_columns = ["line", "sku", "name", "quantity", "unit_price", "total"]
    if kind.has_book_quantity:
        line_columns.append("book_quantity")
    items = dict(
        lines.sort("number", "line")
        .group_by("number", maintain_order=True)
        .agg(_line_json(lines.select(line_columns).schema).str.join(","))
        .iter_rows()
    )
    for row in header.iter_rows(named=True):
        body: dict[str, object] = {"number": row["number"], "date": row["date"], "warehouse": row["warehouse"]}
        if kind.slug == "transfer":
            body["warehouse_to"] = row["warehouse_to"]
        if kind.counterparty_field is not None:
            body[kind.counterparty_field] = row["counterparty"]
        if row["notes"] is not None:
            body["notes"] = row["notes"]
        body["items"] = orjson.Fragment(b"[" + items.get(row["number"], "").encode() + b"]")
        yield OutgoingDocument(contents[row["number"]], orjson.dumps(body))


def _line_json(schema: pl.Schema) -> pl.Expr:
    """Each line as a JSON object of its present fields, built by Polars (per line in Python this was the
    slowest step of planning): numbers and decimals as their exact digits, text JSON-escaped by Polars' own
    encoder, absent fields left out."""
    fields = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype.is_numeric():
            value = column.cast(pl.String)
        else:  # '{"<name>":<escaped text>}' → '<escaped text>'
            value = pl.struct(column).struct.json_encode().str.slice(len(name) + 4).str.head(-1)
        fields.append(pl.when(column.is_not_null()).then(pl.concat_str(pl.lit(f'"{name}":'), value)))
    return pl.concat_str(pl.lit("{"), pl.concat_str(fields, separator=",", ignore_nulls=True), pl.lit("}"))


def _text(name: str) -> pl.Expr:
    column = pl.col(name)
    if name == "date":
        column = column.dt.strftime(_LOCAL_TIME)
    return column.cast(pl.String).fill_null("\x00")
