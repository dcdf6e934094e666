"""The UDE XML export (§1.5) as batches of String columns, streamed from files of hundreds of megabytes.

Why columns: validation works on String columns (Polars expressions), so the reader lays each batch out as frames
straight away, one row per good or document and one per line (with its document's row), instead of nesting line
dicts in document dicts that validation would have to flatten and convert again. The columns keep the file's names
(`SKU`, `UnitPrice`; `UDE_KEYS` tells validation where each field is): renaming each field would cost as much as
parsing. Fields are read from attributes or child elements alike, in any order (§1.9); names the contract does not
know become columns too (they show in a rejected record's raw text) and are otherwise ignored. Memory stays flat:
each `Good`/`Document` is cleared as soon as it is read, and a batch holds a bounded number of records.

Why each record is still read into a small dict: the cheapest lxml calls per element are `items()` and iterating
its children (every element proxy and every string is made whichever way they are read), and Polars turns a list
of dicts into columns in one native pass. What else was tried, and measured slower, is in docs/benchmarks.md,
History.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import polars as pl
from lxml import etree

from onec.exchange_columns import DOCUMENT_HEADER_HEADERS, GOODS_HEADERS, LINE_HEADERS
from onec.schema import DOCUMENT_TYPE_BY_SLUG
from onec.sources.typing import ITEM_COUNT, OWNER, SOURCE_LINE, NamedRecords, RecordKeys
from onec.sources.xml_safety import Readable, XmlFileError, checked_stream, root_name, safe_iterparse

GOODS_ENTITY = "goods"
BATCH_RECORDS = 2000
"""Records per batch: bigger batches check with a little less CPU per document, but end to end through
`prefetched` they finish later and peak higher (docs/benchmarks.md, History)."""

ITEMS = "Items"
UNIT_KEYS = {"line_unit": "LineUnit", "unit_coefficient": "UnitCoefficient"}
"""The exchange service sends quantities in base units (§1.3): no UDE file names a line's own unit, so these
keys are never found and the columns land null; they exist so that every canonical line column has a key."""
UDE_KEYS = RecordKeys(
    goods=GOODS_HEADERS, header=DOCUMENT_HEADER_HEADERS, line={**LINE_HEADERS, **UNIT_KEYS}, items=ITEMS
)
"""Columns keep the file's element and attribute names; this is where validation finds each canonical field."""
_KNOWN_NAMES = dict.fromkeys(
    ["Type", *GOODS_HEADERS.values(), *DOCUMENT_HEADER_HEADERS.values(), *UDE_KEYS.line.values()]
)
_CREATED = re.compile(rb"""\bCreated\s*=\s*["'](\d{4}-\d{2}-\d{2})""")


class UdeXmlError(XmlFileError):
    """The file is not a UDE XML export this reader can land."""


class UdeXmlReader:
    """One UDE XML file or export body, read once. `created` is the export's date (root `Created`), when it has
    one."""

    def __init__(self, stream: Readable) -> None:
        self._stream, root = checked_stream(stream)
        if root_name(root) != "DataExchange":
            raise UdeXmlError(f"not a UDE XML export: the root element is <{root_name(root)}>, not <DataExchange>")
        found = _CREATED.search(root)
        self.created: date | None = date.fromisoformat(found.group(1).decode()) if found else None

    def entities(self) -> list[str]:
        """Every entity the file holds ("goods", document type slugs), in order of first appearance; reads each
        record's type only. An unknown document type fails here, naming its line."""
        found: dict[str, None] = {}
        for element in safe_iterparse(self._stream, ("Good", "Document")):
            if element.tag == "Good":
                found[GOODS_ENTITY] = None
            else:
                found[_document_type(_type_of(element), element)] = None
        return list(found)

    def batches(self, entity: str, *, skip_others: bool = False, size: int = BATCH_RECORDS) -> Iterator[NamedRecords]:
        """The records of `entity` in file order, `size` at a time. A record of another entity fails (an export
        of one kind that holds another is not what was asked for, and silently skipping it would lose it), unless
        `skip_others` (the caller reads each entity the file holds in a pass of its own)."""
        columns = _Columns()
        for element in safe_iterparse(self._stream, ("Good", "Document")):
            if element.tag == "Good":
                found = GOODS_ENTITY
                if found == entity:
                    columns.add(_fields(element), element.sourceline)
            else:
                record, item_lists = _header(element)
                found = _document_type(record.get("Type"), element)
                if found == entity:
                    columns.add_document(record, item_lists, element.sourceline)
            if found != entity and not skip_others:
                raise UdeXmlError(f"the export of {entity} also holds {found} records (line {element.sourceline})")
            if len(columns) >= size:
                yield columns.batch()
                columns = _Columns()
        if len(columns):
            yield columns.batch()


class _Columns:
    """One batch being read: a dict per record and per line, and where each record starts in the file."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.source_lines: list[int | None] = []
        self.lines: list[dict[str, Any]] | None = None
        self.line_counts: list[int] = []

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: dict[str, Any], source_line: int | None) -> None:
        self.records.append(record)
        self.source_lines.append(source_line)

    def add_document(self, record: dict[str, Any], item_lists: list[etree._Element], source_line: int | None) -> None:
        if self.lines is None:
            self.lines = []
        lines = self.lines
        before = len(lines)
        for item_list in item_lists:
            lines.extend(map(_fields, item_list.iterchildren("Item")))
        self.line_counts.append(len(lines) - before)
        self.add(record, source_line)

    def batch(self) -> NamedRecords:
        records = _text_frame(self.records).with_columns(pl.Series(SOURCE_LINE, self.source_lines, dtype=pl.Int64))
        if self.lines is None:
            return NamedRecords(records, None, UDE_KEYS)
        counts = pl.Series(ITEM_COUNT, self.line_counts, dtype=pl.Int64)
        line_rows = pl.int_range(len(self.lines), dtype=pl.Int64, eager=True)
        owners = counts.cum_sum().search_sorted(line_rows, side="right").cast(pl.UInt32).alias(OWNER)
        return NamedRecords(records.with_columns(counts), _text_frame(self.lines).with_columns(owners), UDE_KEYS)


def _text_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """All-String columns, one per name any row has (values are text or None: attributes and element texts):
    the contract's names first, in its order, then any others by name, so a rejected record's raw text is the
    same on every run. (A set union of the rows' keys: a third of the cost of collecting them in order.)"""
    found = set().union(*rows)
    names = [name for name in _KNOWN_NAMES if name in found] + sorted(found.difference(_KNOWN_NAMES))
    return pl.from_dicts(rows, schema=dict.fromkeys(names, pl.String)) if rows else pl.DataFrame()


def _fields(element: etree._Element) -> dict[str, Any]:
    """Attributes and child elements alike, under the file's names; a child wins over an attribute of the same
    name. (`items()` and direct iteration: the cheapest lxml calls, since this runs for every record and line.)"""
    record = dict(element.items())
    for child in element:
        record[child.tag] = child.text
    return record


def _header(element: etree._Element) -> tuple[dict[str, Any], list[etree._Element]]:
    """`_fields` of a document's header, and its `Items` elements (read only if the document is wanted)."""
    record = dict(element.items())
    item_lists = []
    for child in element:
        tag = child.tag
        if tag == ITEMS:
            item_lists.append(child)
        else:
            record[tag] = child.text
    return record, item_lists


def _type_of(element: etree._Element) -> str | None:
    """A document's `Type`, an attribute or an element (the element wins, as in `_fields`)."""
    types: list[str | None] = [child.text for child in element.iterchildren("Type")]
    attribute: str | None = element.get("Type")
    return types[-1] if types else attribute


def _document_type(value: str | None, element: etree._Element) -> str:
    """The document's type slug; `element` only to name its line."""
    slug = (value or "").strip()
    if slug not in DOCUMENT_TYPE_BY_SLUG:
        line = element.sourceline
        raise UdeXmlError(
            f"document at line {line} has Type={slug!r}; expected one of: {', '.join(DOCUMENT_TYPE_BY_SLUG)}"
        )
    return slug
