"""The UDE XML reader's columns: every record and line of the file, with the values the file gives, in any batching.

The files are built with lxml's own serializer from generated records (fields as attributes or elements, in any
order, some absent, text with markup characters and Cyrillic), so the expectation is the generated data, not
what the reader happens to do.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from onec.sources.typing import ITEM_COUNT, OWNER, SOURCE_LINE, NamedRecords
from onec.sources.ude_xml import UdeXmlReader
from onec.validation import check_documents

ZONE = "Europe/Moscow"
HEADER_NAMES = ("Id", "Number", "Date", "Status", "Warehouse", "Notes", "Extra")
LINE_NAMES = ("Line", "SKU", "Name", "Quantity", "UnitPrice", "Total", "Odd")
TEXT = st.text(alphabet=st.sampled_from(list("aZ09 -.,<>&\"'ёЖ№\t")), max_size=8)


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    as_element: bool


def fields(names: tuple[str, ...]) -> st.SearchStrategy[list[Field]]:
    """Some of `names`, each once, as an attribute or an element, in any order."""
    one = st.tuples(TEXT, st.booleans())
    return st.dictionaries(st.sampled_from(names), one).flatmap(
        lambda chosen: st.permutations([Field(n, v, e) for n, (v, e) in chosen.items()])
    )


DOCUMENT = st.tuples(fields(HEADER_NAMES), st.lists(fields(LINE_NAMES), max_size=4), st.booleans())


def put(parent: etree._Element, record: list[Field]) -> None:
    for field in record:
        if field.as_element:
            etree.SubElement(parent, field.name).text = field.value
        else:
            parent.set(field.name, field.value)


def export(documents: list[tuple[list[Field], list[list[Field]], bool]]) -> bytes:
    """A UDE file of shipments; a document without lines has an `Items` element or none, as drawn."""
    root = etree.Element("DataExchange", FormatVersion="1.0")
    container = etree.SubElement(root, "Documents")
    for header, lines, with_items in documents:
        document = etree.SubElement(container, "Document", Type="shipment")
        document.tail = "\n"
        put(document, header)
        if lines or with_items:
            items = etree.SubElement(document, "Items")
            for line in lines:
                put(etree.SubElement(items, "Item"), line)
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return body


def expected_text(field: Field) -> str | None:
    """What the file holds: lxml reads an empty element as no text."""
    return None if field.as_element and field.value == "" else field.value


@settings(max_examples=60, deadline=None)
@given(st.lists(DOCUMENT, min_size=1, max_size=7), st.integers(1, 4))
def test_every_record_and_line_comes_out_with_its_values(
    documents: list[tuple[list[Field], list[list[Field]], bool]], size: int
) -> None:
    body = export(documents)
    batches = list(UdeXmlReader(io.BytesIO(body)).batches("shipment", size=size))
    assert all(len(batch) <= size for batch in batches)
    records = pl.concat([b.records for b in batches], how="diagonal_relaxed")
    assert records.height == len(documents)
    lines_seen = 0
    for batch in batches:
        assert batch.lines is not None
        assert batch.lines.height == batch.records[ITEM_COUNT].sum()
        owners = batch.lines[OWNER].to_list()
        assert owners == sorted(owners), "lines come in document order"
        lines_seen += batch.lines.height
    assert lines_seen == sum(len(lines) for _, lines, _ in documents)
    starts = [body[: m.start()].count(b"\n") + 1 for m in re.finditer(rb"<Document[ >/]", body)]
    assert records[SOURCE_LINE].to_list() == starts
    line_rows = [row for batch in batches for row in _lines_by_document(batch)]
    for row, (header, lines, _) in zip(records.iter_rows(named=True), documents, strict=True):
        assert row["Type"] == "shipment"
        for field in header:
            assert row[field.name] == expected_text(field)
        assert {name for name in HEADER_NAMES if row.get(name) is not None} <= {f.name for f in header}
        document_lines = line_rows.pop(0)
        assert len(document_lines) == len(lines)
        for read, line in zip(document_lines, lines, strict=True):
            assert {k: v for k, v in read.items() if v is not None} == {
                f.name: text for f in line if (text := expected_text(f)) is not None
            }


def _lines_by_document(batch: NamedRecords) -> list[list[dict[str, str | None]]]:
    """The line rows of each record of a batch, without the owner column."""
    assert batch.lines is not None
    grouped: list[list[dict[str, str | None]]] = [[] for _ in range(batch.records.height)]
    for row in batch.lines.iter_rows(named=True):
        grouped[row.pop(OWNER)].append(row)
    return grouped


def test_a_child_element_wins_over_an_attribute_of_the_same_name() -> None:
    body = b"""<DataExchange><Documents>
<Document Type="shipment" Number="attr"><Number>element</Number><Items><Item SKU="a"><SKU>b</SKU></Item></Items>
</Document></Documents></DataExchange>"""
    (batch,) = UdeXmlReader(io.BytesIO(body)).batches("shipment")
    assert batch.records["Number"].to_list() == ["element"]
    assert batch.lines is not None and batch.lines["SKU"].to_list() == ["b"]


def test_a_rejected_xml_document_names_its_file_line_and_keeps_what_the_file_held() -> None:
    """The reason says where in the file the document is; the raw text has its fields under the file's names,
    names the contract does not know included, and its lines."""
    body = """<?xml version="1.0" encoding="UTF-8"?>
<DataExchange FormatVersion="1.0"><Documents>
<Document Type="shipment" Number="1" Date="2026-01-05T10:00:00" Status="posted" Posted="true">
  <Warehouse>wh</Warehouse><Counterparty>ООО "Ромашка"</Counterparty>
  <Items><Item Line="1" SKU="P1" Quantity="2" UnitPrice="10" Total="20"><Name>Товар</Name></Item></Items>
</Document>
<Document Type="shipment" Number="2" Date="2026-01-05T11:00:00" Status="posted" Posted="true" Mood="odd">
  <Warehouse>wh</Warehouse><Counterparty>ИП</Counterparty>
  <Items><Item Line="1" SKU="P2" Quantity="два" UnitPrice="10" Total="20"><Name>Ещё</Name></Item></Items>
</Document>
</Documents></DataExchange>""".encode()
    (batch,) = UdeXmlReader(io.BytesIO(body)).batches("shipment")
    checked = check_documents(
        batch, doc_type="shipment", date_from=date(2026, 1, 1), date_to=date(2026, 2, 1), timezone=ZONE,
        run_id="r", source="xml",
    )  # fmt: skip
    assert checked.documents is not None and checked.documents["number"].to_list() == ["1"]
    (rejected,) = checked.rejected.iter_rows(named=True)
    assert rejected["record_key"] == "2"
    assert rejected["reason"].endswith("(file line 7)"), rejected["reason"]
    assert "quantity" in rejected["reason"]
    raw = json.loads(rejected["raw"])
    assert raw["Mood"] == "odd" and raw["Number"] == "2" and raw["Counterparty"] == "ИП"
    assert raw["Items"] == [
        {"Line": "1", "SKU": "P2", "Quantity": "два", "UnitPrice": "10", "Total": "20", "Name": "Ещё"}
    ]
