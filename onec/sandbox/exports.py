"""The CSV (§1.4) and UDE XML (§1.5) exports, streamed, in every shape §1.9 allows.

Why streamed generators: real exports reach hundreds of megabytes, and the readers this project builds must be
tested on files that size (benchmarks, the folder-drop path). Each export is a generator of encoded chunks of
about `chunk_size` bytes: the HTTP adapters send them as they come and `write_export_files` writes them to disk,
so neither ever holds a whole export in memory.

Why `ExportVariant`: a reader that only ever saw tidy UTF-8 with commas breaks on the first real 1C file. Each
switch is one thing real bases do (windows-1251, a BOM, `;` with decimal commas, CRLF, Russian headers, `Да/Нет`,
elements in any order), and every variant decodes back to exactly the same holdings.
"""

from __future__ import annotations

import codecs
import csv
import io
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from onec.sandbox.data import Document, Good, Line, SandboxData
from onec.sandbox.render import local_text, plain_number
from onec.schema import DOCUMENT_SLUGS

GOODS_COLUMNS = ("SKU", "Name", "Quantity", "Warehouse", "Unit", "Price", "Id", "Code", "Deleted", "ModifiedAt")
DOCUMENT_COLUMNS = (
    "Id", "Number", "Date", "Status", "Posted", "Counterparty", "Warehouse", "WarehouseTo", "Line", "SKU", "Name",
    "Quantity", "UnitPrice", "Total", "BookQuantity", "Notes", "Deleted", "ModifiedAt",
)  # fmt: skip
RUSSIAN_ALIASES = {
    "SKU": "Артикул",
    "Name": "Наименование",
    "Quantity": "Количество",
    "Warehouse": "Склад",
    "Unit": "ЕдиницаИзмерения",
    "Price": "Цена",
}
NUMERIC_COLUMNS = frozenset({"Quantity", "Price", "UnitPrice", "Total", "BookQuantity"})
CSV_ENCODINGS = ("utf-8", "utf-8-sig", "windows-1251")
XML_ENCODINGS = ("UTF-8", "windows-1251")
BOOLEAN_STYLES = (("true", "false"), ("Да", "Нет"), ("1", "0"))

Text = str | None


@dataclass(frozen=True)
class ExportVariant:
    """How an export looks. The defaults are the tidy form of §1.4/§1.5; `everything()` turns every
    awkwardness on at once, `variations()` gives one variant per switch."""

    csv_encoding: str = "utf-8"
    """utf-8 | utf-8-sig (with a BOM) | windows-1251."""
    declare_charset: bool = True
    """Name the CSV charset in Content-Type (`text/csv; charset=…`), or send a bare `text/csv`."""
    delimiter: str = ","
    decimal_comma: bool | None = None
    """Decimals with a comma; None: when the delimiter is `;`, as a Russian Excel-minded 1C writes them."""
    line_end: str = "\n"
    russian_headers: bool = False
    quote_all: bool = False
    """Quote every CSV cell (RFC 4180 quoting of quotes, separators and line breaks happens either way)."""
    booleans: tuple[str, str] = ("true", "false")
    xml_encoding: str = "UTF-8"
    """UTF-8 | windows-1251, declared in the XML prolog."""
    xml_bom: bool = False
    """A UTF-8 BOM before the prolog."""
    shuffle_elements: bool = False
    """Child elements of each Good, Document and Item in a random (per record, stable) order."""
    seed: int = 0
    chunk_size: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.csv_encoding not in CSV_ENCODINGS or self.xml_encoding not in XML_ENCODINGS:
            raise ValueError(f"encodings: CSV one of {CSV_ENCODINGS}, XML one of {XML_ENCODINGS}")
        if self.delimiter not in (",", ";") or self.line_end not in ("\n", "\r\n"):
            raise ValueError("delimiter must be ',' or ';' and line_end '\\n' or '\\r\\n'")
        if self.booleans not in BOOLEAN_STYLES:
            raise ValueError(f"booleans must be one of {BOOLEAN_STYLES}")
        if self.xml_bom and self.xml_encoding != "UTF-8":
            raise ValueError("a BOM goes with UTF-8 only")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")

    @property
    def comma_decimals(self) -> bool:
        return self.delimiter == ";" if self.decimal_comma is None else self.decimal_comma

    @classmethod
    def everything(cls, seed: int = 0) -> ExportVariant:
        """Every switch on: windows-1251 CSV without a declared charset, `;` with decimal commas, CRLF, quoted
        cells, Russian headers, Да/Нет; UTF-8 XML with a BOM and shuffled elements."""
        return cls(
            csv_encoding="windows-1251",
            declare_charset=False,
            delimiter=";",
            line_end="\r\n",
            russian_headers=True,
            quote_all=True,
            booleans=("Да", "Нет"),
            xml_bom=True,
            shuffle_elements=True,
            seed=seed,
        )

    @classmethod
    def variations(cls) -> dict[str, ExportVariant]:
        """One variant per awkwardness (and a few combinations), by name, for parametrized tests."""
        return {
            "plain": cls(),
            "utf8_bom": cls(csv_encoding="utf-8-sig"),
            "cp1251_declared": cls(csv_encoding="windows-1251"),
            "cp1251_undeclared": cls(csv_encoding="windows-1251", declare_charset=False),
            "semicolon_decimal_comma": cls(delimiter=";"),
            "semicolon_decimal_point": cls(delimiter=";", decimal_comma=False),
            "crlf": cls(line_end="\r\n"),
            "russian_headers": cls(russian_headers=True),
            "quote_all_da_net": cls(quote_all=True, booleans=("Да", "Нет")),
            "booleans_1_0": cls(booleans=("1", "0")),
            "xml_cp1251": cls(xml_encoding="windows-1251"),
            "xml_bom_shuffled": cls(xml_bom=True, shuffle_elements=True),
            "everything": cls.everything(),
            "everything_xml_cp1251": replace(cls.everything(seed=3), xml_encoding="windows-1251", xml_bom=False),
        }

    def csv_content_type(self) -> str:
        charset = "utf-8" if self.csv_encoding == "utf-8-sig" else self.csv_encoding
        return f"text/csv; charset={charset}" if self.declare_charset else "text/csv"


# --- CSV


def goods_csv(goods: Iterable[Good], variant: ExportVariant) -> Iterator[bytes]:
    """§1.4 goods: one row per position, the full optional column set."""
    cells = _Cells(variant)
    rows = ([cells.row(GOODS_COLUMNS, _good_row(good))] for good in goods)
    return _csv(GOODS_COLUMNS, rows, variant)


def documents_csv(documents: Iterable[Document], variant: ExportVariant) -> Iterator[bytes]:
    """§1.4 document lines: one row per line with the header fields repeated (a document without lines still
    gets one row, with empty line cells). The header cells are formatted once per document."""
    cells = _Cells(variant)
    return _csv(DOCUMENT_COLUMNS, (cells.document(doc) for doc in documents), variant)


_HEAD, _LINE, _TAIL = DOCUMENT_COLUMNS[:8], DOCUMENT_COLUMNS[8:15], DOCUMENT_COLUMNS[15:]


class _Cells:
    """Values as CSV cells: null is empty, booleans in the variant's style, decimals maybe with a comma."""

    def __init__(self, variant: ExportVariant) -> None:
        self.true, self.false = variant.booleans
        self.comma = variant.comma_decimals

    def document(self, doc: Document) -> list[list[str]]:
        rows = _document_rows(doc)
        head, tail = self.row(_HEAD, rows[0]), self.row(_TAIL, rows[0])
        return [head + self.row(_LINE, row) + tail for row in rows]

    def row(self, columns: Sequence[str], values: dict[str, Any]) -> list[str]:
        return [self.cell(column, values.get(column)) for column in columns]

    def cell(self, column: str, value: Any) -> str:
        if value is None:
            return ""
        if value is True or value is False:
            return self.true if value else self.false
        if self.comma and column in NUMERIC_COLUMNS:
            return str(value).replace(".", ",")
        return str(value)


def _csv(columns: Sequence[str], batches: Iterable[list[list[str]]], variant: ExportVariant) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=variant.delimiter,
        lineterminator=variant.line_end,
        quoting=csv.QUOTE_ALL if variant.quote_all else csv.QUOTE_MINIMAL,
    )
    encoder = codecs.getincrementalencoder(variant.csv_encoding)()
    writer.writerow([RUSSIAN_ALIASES.get(c, c) if variant.russian_headers else c for c in columns])
    for rows in batches:
        writer.writerows(rows)
        if buffer.tell() >= variant.chunk_size:
            yield encoder.encode(_drain(buffer))
    yield encoder.encode(_drain(buffer), final=True)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


# --- UDE XML


def goods_xml(goods: Iterable[Good], variant: ExportVariant, created: datetime) -> Iterator[bytes]:
    """§1.5 with a Goods section only; `Good/@Number` is the row's ordinal in the file."""
    return _xml([("Goods", _goods_elements(goods, variant))], variant, created)


def documents_xml(documents: Iterable[Document], variant: ExportVariant, created: datetime) -> Iterator[bytes]:
    """§1.5 with a Documents section only, lines as Items."""
    return _xml([("Documents", (_document_element(d, variant) for d in documents))], variant, created)


def exchange_xml(
    goods: Iterable[Good], documents: Iterable[Document], variant: ExportVariant, created: datetime
) -> Iterator[bytes]:
    """Both sections in one file, as the folder-drop exchange writes it."""
    sections = [
        ("Goods", _goods_elements(goods, variant)),
        ("Documents", (_document_element(d, variant) for d in documents)),
    ]
    return _xml(sections, variant, created)


def _xml(sections: Sequence[tuple[str, Iterable[str]]], variant: ExportVariant, created: datetime) -> Iterator[bytes]:
    end = variant.line_end
    encoder = codecs.getincrementalencoder(variant.xml_encoding)(errors="xmlcharrefreplace")
    head = "\ufeff" if variant.xml_bom else ""
    head += f'<?xml version="1.0" encoding="{variant.xml_encoding}"?>{end}'
    head += f'<DataExchange FormatVersion="1.0" Created="{local_text(created)}">{end}'
    pending = [head]
    size = len(head)
    for name, elements in sections:
        pending.append(f"  <{name}>{end}")
        for element in elements:
            pending.append(element + end)
            size += len(element)
            if size >= variant.chunk_size:
                yield encoder.encode("".join(pending))
                pending, size = [], 0
        pending.append(f"  </{name}>{end}")
    pending.append(f"</DataExchange>{end}")
    yield encoder.encode("".join(pending), final=True)


def _goods_elements(goods: Iterable[Good], variant: ExportVariant) -> Iterator[str]:
    for number, good in enumerate(goods, 1):
        row = _good_row(good)
        attributes = _attributes({"Number": f"{number:05d}", "SKU": row["SKU"], "Id": row["Id"]})
        children = [
            _child(name, row[name])
            for name in ("Name", "Quantity", "Warehouse", "Unit", "Price", "Code", "Deleted", "ModifiedAt")
        ]
        yield f"    <Good{attributes}>{_children(children, variant, good.id + (good.warehouse or ''))}</Good>"


def _document_element(doc: Document, variant: ExportVariant) -> str:
    rows = _document_rows(doc)
    head = rows[0]
    attributes = _attributes(
        {
            "Type": doc.doc_type,
            "Id": head["Id"],
            "Number": head["Number"],
            "Date": head["Date"],
            "Status": head["Status"],
            "Posted": head["Posted"],
        }
    )
    children = [
        _child(name, head[name])
        for name in ("Counterparty", "Warehouse", "WarehouseTo", "Notes", "Deleted", "ModifiedAt")
    ]
    items = [_item_element(row, variant, f"{doc.id}|{row['Line']}") for row in rows if row.get("Line") is not None]
    children.append(f"<Items>{''.join(items)}</Items>")
    return f"    <Document{attributes}>{_children(children, variant, doc.id)}</Document>"


def _item_element(row: dict[str, Any], variant: ExportVariant, identity: str) -> str:
    names = ("Line", "SKU", "Quantity", "UnitPrice", "Total", "BookQuantity")
    attributes = _attributes({name: row.get(name) for name in names})
    return f"<Item{attributes}>{_children([_child('Name', row.get('Name'))], variant, identity)}</Item>"


def _children(children: list[str], variant: ExportVariant, identity: str) -> str:
    present = [child for child in children if child]
    if variant.shuffle_elements:
        random.Random(f"{variant.seed}|{identity}").shuffle(present)
    return "".join(present)


def _child(name: str, value: Any) -> str:
    """An element with text; a null value is no element at all."""
    if value is None:
        return ""
    return f"<{name}>{_xml_text(value)}</{name}>"


def _attributes(values: dict[str, Any]) -> str:
    return "".join(f' {name}="{_xml_attribute(value)}"' for name, value in values.items() if value is not None)


_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;", '"': "&quot;", "\n": "&#10;", "\t": "&#9;"}
)


def _xml_text(value: Any) -> str:
    """Element text: markup characters escaped, and CR as a reference (a parser would turn a raw one into LF)."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value).translate(_TEXT_ESCAPES)


def _xml_attribute(value: Any) -> str:
    """Attribute text: also quotes, and line breaks and tabs as references (parsers normalise raw ones)."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value).translate(_ATTRIBUTE_ESCAPES)


# --- records as cells (shared by CSV and XML; a bad record's raw values win)


def _good_row(good: Good) -> dict[str, Any]:
    row: dict[str, Any] = {
        "SKU": good.sku,
        "Name": good.name,
        "Quantity": plain_number(good.quantity),
        "Warehouse": good.warehouse,
        "Unit": good.unit,
        "Price": _money(good.price),
        "Id": good.id,
        "Code": good.code,
        "Deleted": good.deleted,
        "ModifiedAt": _instant(good.modified_at),
    }
    return _override(row, good.overrides, _GOOD_FIELDS)


def _document_rows(doc: Document) -> list[dict[str, Any]]:
    header: dict[str, Any] = {
        "Id": doc.id,
        "Number": doc.number,
        "Date": local_text(doc.date),
        "Status": doc.status,
        "Posted": doc.posted,
        "Counterparty": doc.counterparty,
        "Warehouse": doc.warehouse,
        "WarehouseTo": doc.warehouse_to,
        "Notes": doc.notes,
        "Deleted": doc.deleted,
        "ModifiedAt": _instant(doc.modified_at),
    }
    header = _override(header, doc.overrides, _DOCUMENT_FIELDS)
    if not doc.items:
        return [header]
    return [{**header, **_line_cells(line)} for line in doc.items]


def _line_cells(line: Line) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Line": str(line.line),
        "SKU": line.sku,
        "Name": line.name,
        "Quantity": plain_number(line.quantity),
        "UnitPrice": _money(line.unit_price),
        "Total": _money(line.total),
        "BookQuantity": None if line.book_quantity is None else plain_number(line.book_quantity),
    }
    return _override(row, line.overrides, _LINE_FIELDS)


_GOOD_FIELDS = {"sku": "SKU", "name": "Name", "quantity": "Quantity", "price": "Price"}
_DOCUMENT_FIELDS = {"number": "Number"}
_LINE_FIELDS = {"sku": "SKU", "quantity": "Quantity", "unit_price": "UnitPrice", "total": "Total"}


def _override(row: dict[str, Any], overrides: dict[str, Any] | None, columns: dict[str, str]) -> dict[str, Any]:
    for field, value in (overrides or {}).items():
        if field in columns:
            row[columns[field]] = None if value is None else str(value)
    return row


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, ".2f")


def _instant(value: datetime | None) -> str | None:
    return None if value is None else local_text(value)


# --- files


Export = Callable[[], Iterator[bytes]]


def write_export_files(
    data: SandboxData,
    directory: Path,
    variant: ExportVariant | None = None,
    formats: Sequence[str] = ("csv", "xml"),
    created: datetime | None = None,
    combined: bool = False,
) -> list[Path]:
    """Write the exports as files, chunk by chunk (hundreds of megabytes never sit in memory):
    `goods.csv`, `documents-<type>.csv` per document type, and the same names with `.xml`; with `combined`,
    also `exchange.xml` holding goods and every document type in one file. Returns the paths.

    The records are read live: do not write to `data` meanwhile.
    """
    variant = variant or ExportVariant()
    created = created or datetime.combine(data.start, datetime.min.time())
    directory.mkdir(parents=True, exist_ok=True)
    exports: dict[str, Export] = {}
    if "csv" in formats:
        exports["goods.csv"] = lambda: goods_csv(data.goods_holdings(), variant)
        for slug in DOCUMENT_SLUGS:
            exports[f"documents-{slug}.csv"] = _bind(documents_csv, data.documents_holdings(slug), variant)
    if "xml" in formats:
        exports["goods.xml"] = lambda: goods_xml(data.goods_holdings(), variant, created)
        for slug in DOCUMENT_SLUGS:
            exports[f"documents-{slug}.xml"] = _bind_xml(data.documents_holdings(slug), variant, created)
    if combined:
        everything = [doc for slug in DOCUMENT_SLUGS for doc in data.documents_holdings(slug)]
        exports["exchange.xml"] = lambda: exchange_xml(data.goods_holdings(), everything, variant, created)
    paths = []
    for name, export in exports.items():
        path = directory / name
        with path.open("wb") as file:
            for chunk in export():
                file.write(chunk)
        paths.append(path)
    return paths


def _bind(
    export: Callable[[Iterable[Document], ExportVariant], Iterator[bytes]],
    documents: list[Document],
    variant: ExportVariant,
) -> Export:
    return lambda: export(documents, variant)


def _bind_xml(documents: list[Document], variant: ExportVariant, created: datetime) -> Export:
    return lambda: documents_xml(documents, variant, created)
