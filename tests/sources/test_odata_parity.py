"""Format parity: a sync through `odata` lands what a sync through `json` lands for the same 1C data.

Compared on every column both interfaces carry. Not compared: `modified_at` (OData has none: change detection
there reads `DataVersion`, kept as `_data_version`). Everything else, `id`, `code` and `notes` included, must be
identical row for row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from onec.client import OneCClient
from onec.config import Settings
from onec.http import OneCSession
from onec.sandbox import SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.sources import Source
from onec.sources.odata import OdataSource, odata_root
from onec.sync import extract_all
from onec.warehouse import Warehouse
from tests.sources.odata_fake import FakeOdata

ZONE = "Europe/Moscow"
START, END = date(2026, 1, 1), date(2026, 1, 15)
SNAPSHOT = date(2026, 1, 20)
BASE = "http://1c.test/trade/hs/exchange"
COMPARED = {
    "goods": "sku, warehouse, name, quantity, unit, price, id, code, deleted",
    "documents": "doc_type, id, number, date, doc_date, status, posted, counterparty, warehouse, warehouse_to, "
    "notes, deleted",
    "document_lines": "doc_type, number, doc_date, line, sku, name, quantity, unit_price, total, book_quantity",
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=11, documents=400, start=START, days=(END - START).days, timezone=ZONE)


def _land(source: Source, root: Path) -> Warehouse:
    warehouse = Warehouse(root, ZONE)
    warehouse.initialize()
    extract_all(
        source, warehouse, date_from=START, date_to=END, snapshot_date=SNAPSHOT, run_id=source.name, timezone=ZONE
    )
    return warehouse


def _rows(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    columns = COMPARED[table]
    return warehouse.query(f"SELECT {columns} FROM {table} ORDER BY {columns}").rows()  # noqa: S608


@pytest.fixture(scope="module")
def landed(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, Warehouse]]:
    settings = Settings(base_url=BASE, timezone=ZONE, rate_limit=1e6, page_size=70)
    engine = SandboxEngine(data, SandboxConfig(awkward=True))
    with OneCSession(settings, transport=SandboxTransport(engine)) as session:
        json_warehouse = _land(OneCClient(session, page_size=70), tmp_path_factory.mktemp("json"))
    with OneCSession(settings, transport=httpx.MockTransport(FakeOdata(data))) as session:
        odata = OdataSource(session, root=odata_root(settings), page_size=70)
        odata_warehouse = _land(odata, tmp_path_factory.mktemp("odata"))
    yield json_warehouse, odata_warehouse


@pytest.mark.parametrize("table", sorted(COMPARED))
def test_odata_lands_what_json_lands(landed: tuple[Warehouse, Warehouse], table: str) -> None:
    json_warehouse, odata_warehouse = landed
    expected = _rows(json_warehouse, table)
    assert len(expected) > 100
    assert _rows(odata_warehouse, table) == expected


def test_zero_stock_positions_are_restored(landed: tuple[Warehouse, Warehouse], data: SandboxData) -> None:
    """1C's Balance() omits empty positions; the snapshot still lists them, as the exchange service does."""
    zero = sum(1 for g in data.goods_holdings() if g.quantity == 0)
    assert zero > 0
    _, odata_warehouse = landed
    landed_zero = odata_warehouse.query("SELECT count(*) FROM goods WHERE quantity = 0").item()
    assert landed_zero == zero


def test_nothing_rejected(landed: tuple[Warehouse, Warehouse]) -> None:
    _, odata_warehouse = landed
    assert odata_warehouse.query("SELECT count(*) FROM rejected_rows").item() == 0
