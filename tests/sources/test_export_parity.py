"""Format parity: a sync through the CSV and the UDE XML exports lands exactly what a sync through JSON lands.

The exports have every §1.9 variation switched on at once (windows-1251 without a declared charset, `;` with
decimal commas, CRLF, Russian headers, Да/Нет, quoting, shuffled XML elements, a BOM), and the data includes
deliberately bad records, so rejected rows are compared too (by key and entity: the raw text differs by format).
It also holds what real 1C bases hold (negative stock and book quantities, items without stock, lines without
prices, empty rows, receipts without supplier): every path lands all of it, with the same notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onec.config import Settings, SourceKind
from onec.http import OneCSession
from onec.sandbox import SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.schema import DOCUMENT_SLUGS
from onec.sources import open_source
from onec.sync import extract_all
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
START, END = date(2026, 1, 1), date(2026, 1, 15)
SNAPSHOT = date(2026, 1, 20)
BASE = "http://1c.test/trade/hs/exchange"
COMPARED = {
    "goods": "sku, warehouse, name, quantity, unit, price, id, code, deleted, modified_at",
    "documents": "doc_type, id, number, date, doc_date, status, posted, counterparty, warehouse, warehouse_to, "
    "notes, deleted, modified_at",
    "document_lines": "doc_type, number, doc_date, line, sku, name, quantity, unit_price, total, book_quantity",
    "rejected_rows": "entity, doc_type, partition_date, record_key",
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(
        seed=7, documents=300, start=START, days=(END - START).days, timezone=ZONE, bad_records=6
    )


AWKWARD = SandboxConfig.awkward_exports(seed=3)
VARIANTS = {
    "json": (SourceKind.JSON, AWKWARD),
    "csv": (SourceKind.CSV, AWKWARD),
    "xml": (SourceKind.XML, AWKWARD),
    "xml-1251": (
        SourceKind.XML,
        replace(AWKWARD, export=replace(AWKWARD.export, xml_encoding="windows-1251", xml_bom=False)),
    ),
}


@dataclass(frozen=True)
class Landed:
    warehouse: Warehouse
    notes: Counter[str]
    """Rows landed with a note, per rule, over every extraction of the sync."""


def _land(kind: SourceKind, config: SandboxConfig, data: SandboxData, root: Path) -> Landed:
    settings = Settings(base_url=BASE, timezone=ZONE, rate_limit=1e6, page_size=70, source=kind)
    engine = SandboxEngine(data, config)
    warehouse = Warehouse(root, ZONE)
    warehouse.initialize()
    with OneCSession(settings, transport=SandboxTransport(engine)) as session:
        source = open_source(settings, session)
        assert source.name == kind.value
        results = extract_all(
            source, warehouse, date_from=START, date_to=END, snapshot_date=SNAPSHOT, run_id=kind.value, timezone=ZONE
        )
    return Landed(warehouse, sum((Counter(r.notes) for r in results), Counter()))


@pytest.fixture(scope="module")
def landed(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Landed]]:
    yield {name: _land(kind, config, data, tmp_path_factory.mktemp(name)) for name, (kind, config) in VARIANTS.items()}


def _rows(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    columns = COMPARED[table]
    return warehouse.query(f"SELECT {columns} FROM {table} ORDER BY {columns}").rows()  # noqa: S608


@pytest.mark.parametrize("name", ["csv", "xml", "xml-1251"])
@pytest.mark.parametrize("table", sorted(COMPARED))
def test_export_lands_what_json_lands(landed: dict[str, Landed], name: str, table: str) -> None:
    expected = _rows(landed["json"].warehouse, table)
    assert len(expected) > (0 if table == "rejected_rows" else 100)
    assert _rows(landed[name].warehouse, table) == expected


def real_1c_notes(data: SandboxData) -> Counter[str]:
    """What a sync of the whole sandbox must land with a note, counted from the sandbox's own records."""
    goods = [g for g in data.goods_holdings() if g.bad_kind is None]
    docs = [d for slug in DOCUMENT_SLUGS for d in data.documents_holdings(slug) if d.bad_kind is None]
    lines = [line for d in docs for line in d.items]
    items = [line for line in lines if line.sku is not None]
    counts = Counter(
        negative_stock=sum(1 for g in goods if g.quantity < 0),
        item_without_stock=sum(1 for g in goods if g.warehouse is None),
        zero_price=sum(1 for g in goods if g.price == 0) + sum(1 for line in items if line.unit_price == 0),
        negative_book_quantity=sum(1 for line in lines if line.book_quantity is not None and line.book_quantity < 0),
        empty_line=len(lines) - len(items),
        line_without_price=sum(1 for line in items if line.unit_price is None),
        no_counterparty=sum(1 for d in docs if d.counterparty is None and d.doc_type in ("goods-receipt", "shipment")),
    )
    return +counts


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_real_1c_data_lands_whole_with_its_notes(landed: dict[str, Landed], data: SandboxData, name: str) -> None:
    """Negative book quantities and stock, items without stock, priceless lines, empty rows, receipts without
    supplier: nothing of it is rejected (only the deliberately bad records are), and each is counted."""
    warehouse = landed[name].warehouse
    assert warehouse.query("SELECT count(*) FROM rejected_rows").item() == len(data.bad_record_keys())
    negative_books = warehouse.query(
        "SELECT count(DISTINCT number) FROM document_lines WHERE doc_type = 'inventory' AND book_quantity < 0"
    ).item()
    assert negative_books > 0
    expected = real_1c_notes(data)
    assert set(expected) == {
        "negative_stock", "item_without_stock", "negative_book_quantity", "empty_line", "line_without_price",
        "no_counterparty", "zero_price",
    }, "the sandbox holds every kind"  # fmt: skip
    assert landed[name].notes == expected


def test_the_exports_really_were_awkward() -> None:
    variant = AWKWARD.export
    assert variant.csv_encoding == "windows-1251" and not variant.declare_charset
    assert variant.delimiter == ";" and variant.comma_decimals and variant.quote_all
    assert variant.russian_headers and variant.line_end == "\r\n" and variant.shuffle_elements and variant.xml_bom
