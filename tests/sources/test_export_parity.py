"""Format parity: a sync through the CSV and the UDE XML exports lands exactly what a sync through JSON lands.

The exports have every §1.9 variation switched on at once (windows-1251 without a declared charset, `;` with
decimal commas, CRLF, Russian headers, Да/Нет, quoting, shuffled XML elements, a BOM), and the data includes
deliberately bad records, so rejected rows are compared too (by key and entity: the raw text differs by format).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onec.config import Settings, SourceKind
from onec.http import OneCSession
from onec.sandbox import SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
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


def _land(kind: SourceKind, config: SandboxConfig, data: SandboxData, root: Path) -> Warehouse:
    settings = Settings(base_url=BASE, timezone=ZONE, rate_limit=1e6, page_size=70, source=kind)
    engine = SandboxEngine(data, config)
    warehouse = Warehouse(root, ZONE)
    warehouse.initialize()
    with OneCSession(settings, transport=SandboxTransport(engine)) as session:
        source = open_source(settings, session)
        assert source.name == kind.value
        extract_all(
            source, warehouse, date_from=START, date_to=END, snapshot_date=SNAPSHOT, run_id=kind.value, timezone=ZONE
        )
    return warehouse


@pytest.fixture(scope="module")
def landed(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Warehouse]]:
    yield {name: _land(kind, config, data, tmp_path_factory.mktemp(name)) for name, (kind, config) in VARIANTS.items()}


def _rows(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    columns = COMPARED[table]
    return warehouse.query(f"SELECT {columns} FROM {table} ORDER BY {columns}").rows()  # noqa: S608


@pytest.mark.parametrize("name", ["csv", "xml", "xml-1251"])
@pytest.mark.parametrize("table", sorted(COMPARED))
def test_export_lands_what_json_lands(landed: dict[str, Warehouse], name: str, table: str) -> None:
    expected = _rows(landed["json"], table)
    assert len(expected) > (0 if table == "rejected_rows" else 100)
    assert _rows(landed[name], table) == expected


def test_the_exports_really_were_awkward() -> None:
    variant = AWKWARD.export
    assert variant.csv_encoding == "windows-1251" and not variant.declare_charset
    assert variant.delimiter == ";" and variant.comma_decimals and variant.quote_all
    assert variant.russian_headers and variant.line_end == "\r\n" and variant.shuffle_elements and variant.xml_bom
