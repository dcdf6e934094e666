"""The UDE XML export (§1.5) as contract-shaped records, streamed from files of hundreds of megabytes.

Why records and not frames: UDE XML nests lines inside documents, and the dicts it yields are shaped like the JSON
records of §1.3 (lines nested under `Items`), so validation, rejected rows and landing are the JSON path's, and
format parity holds by construction. The dicts keep the file's names (`SKU`, `UnitPrice`; `UDE_KEYS` tells
validation where each field is): renaming each field would cost as much as parsing. Fields are read from
attributes or child elements alike, in any order (§1.9); names the contract does not know are carried along (they
show in a rejected record's raw text) and ignored. Memory stays flat: each `Good`/`Document` is cleared as soon
as it is read. (Parsing 4 MB chunks in a second thread while the first builds dicts was tried: no faster on two
cores, since the dicts are the larger part and cost more from a tree another core built, and peak memory rose.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

from lxml import etree

from onec.exchange_columns import DOCUMENT_HEADER_HEADERS, GOODS_HEADERS, LINE_HEADERS
from onec.schema import DOCUMENT_TYPE_BY_SLUG
from onec.sources.typing import NamedRecords, RecordKeys
from onec.sources.xml_safety import Readable, XmlFileError, checked_stream, root_name, safe_iterparse

GOODS_ENTITY = "goods"
BATCH_RECORDS = 2000

ITEMS = "Items"
UNIT_KEYS = {"line_unit": "LineUnit", "unit_coefficient": "UnitCoefficient"}
"""The exchange service sends quantities in base units (§1.3): no UDE file names a line's own unit, so these
keys are never found and the columns land null; they exist so that every canonical line column has a key."""
UDE_KEYS = RecordKeys(
    goods=GOODS_HEADERS, header=DOCUMENT_HEADER_HEADERS, line={**LINE_HEADERS, **UNIT_KEYS}, items=ITEMS
)
"""Records keep the file's element and attribute names; this is where validation finds each canonical field."""
_CREATED = re.compile(rb"""\bCreated\s*=\s*["'](\d{4}-\d{2}-\d{2})""")


class UdeXmlError(XmlFileError):
    """The file is not a UDE XML export this reader can land."""


class UdeRecord(NamedTuple):
    """One record: `entity` is "goods" or a document type slug. (A tuple: one is made per record, and a frozen
    dataclass costs several times as much to create.)"""

    entity: str
    record: dict[str, Any]


class UdeXmlReader:
    """One UDE XML file or export body. `created` is the export's date (root `Created`), when it has one."""

    def __init__(self, stream: Readable) -> None:
        self._stream, root = checked_stream(stream)
        if root_name(root) != "DataExchange":
            raise UdeXmlError(f"not a UDE XML export: the root element is <{root_name(root)}>, not <DataExchange>")
        found = _CREATED.search(root)
        self.created: date | None = date.fromisoformat(found.group(1).decode()) if found else None

    def records(self) -> Iterator[UdeRecord]:
        """Every good and document in file order."""
        for element in safe_iterparse(self._stream, ("Good", "Document")):
            if element.tag == "Good":
                yield UdeRecord(GOODS_ENTITY, _fields(element))
            else:
                record = _document(element)
                yield UdeRecord(_document_type(record, element), record)


def batches(records: Iterator[UdeRecord], entity: str, size: int = BATCH_RECORDS) -> Iterator[NamedRecords]:
    """The records of one entity in batches; another entity in the stream is an error (an export of one kind
    that holds another is not what was asked for, and silently skipping it would lose it)."""
    batch: list[dict[str, Any]] = []
    for item in records:
        if item.entity != entity:
            raise UdeXmlError(f"the export of {entity} also holds {item.entity} records")
        batch.append(item.record)
        if len(batch) >= size:
            yield NamedRecords(batch, UDE_KEYS)
            batch = []
    if batch:
        yield NamedRecords(batch, UDE_KEYS)


def _fields(element: etree._Element) -> dict[str, Any]:
    """Attributes and child elements alike, under the file's names; a child wins over an attribute of the same
    name. (`items()` and direct iteration: the cheapest lxml calls, since this runs for every record and line.)"""
    record = dict(element.items())
    for child in element:
        record[child.tag] = child.text
    return record


def _document(element: etree._Element) -> dict[str, Any]:
    """`_fields` of the header, with the lines of its `Items` read in the same pass over its children."""
    record = dict(element.items())
    items: list[dict[str, Any]] = []
    for child in element:
        tag = child.tag
        if tag == ITEMS:
            items.extend(_fields(item) for item in child if item.tag == "Item")
        else:
            record[tag] = child.text
    record[ITEMS] = items
    return record


def _document_type(record: dict[str, Any], element: etree._Element) -> str:
    """The document's `Type` (an attribute or an element, like every field); `element` only to name its line."""
    slug = (record.get("Type") or "").strip()
    if slug not in DOCUMENT_TYPE_BY_SLUG:
        line = element.sourceline
        raise UdeXmlError(
            f"document at line {line} has Type={slug!r}; expected one of: {', '.join(DOCUMENT_TYPE_BY_SLUG)}"
        )
    return slug
