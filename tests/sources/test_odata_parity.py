"""Format parity: for one sandbox base, a sync through `odata` (the standard OData interface, §2) lands what a
sync through `json` (the exchange service, §1) lands, row for row.

Compared on every column of `goods`, `documents` and `document_lines` except `modified_at`: 1C's OData has no
modification time (§2.1), so the OData source lands it null and detects changes by `DataVersion` instead
(`onec.odata_changes`). Everything else, `id`, `code`, `notes` and `snapshot_date` included, must be identical.

The sandbox's exchange service lists every warehouse of an item it stocks, zero or not (and an item without
stock once, with no warehouse), where the contract (§1.3) has a conforming server send only the positions the
balance register holds; so the OData side is asked for that listing too (`zero_stock_positions`). What the OData
source lands by default, 1C's positions and no invented ones, is `test_odata_real.py`'s business.

The OData side runs three ways over the same base: in-process, in-process with read faults (500, 503, dropped and
truncated answers, all retried by the session), and over a real uvicorn server. Drift (documents posted while
reading) is left out here: it changes the base between the two syncs, so they could not agree; paging under
drift is `test_odata_source.py`'s business.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onec.client import OneCClient
from onec.config import Settings
from onec.http import OneCSession
from onec.sandbox import FaultConfig, SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.sandbox.server import running_server
from onec.sources import Source
from onec.sources.odata import OdataSource, odata_root
from onec.sources.odata_model import OdataModel
from onec.sync import extract_all
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
START, END = date(2026, 1, 1), date(2026, 1, 15)
SNAPSHOT = date(2026, 1, 20)
BASE = "http://sandbox/trade/hs/exchange"
PAGE = 30
TABLES = ("goods", "documents", "document_lines")
NOT_CARRIED_BY_ODATA = {"modified_at"}
READ_FAULTS = FaultConfig(error_500=0.04, error_503=0.04, drop=0.04, truncate=0.04)
LISTING = OdataModel(zero_stock_positions=True)
"""Every position, as the sandbox's exchange service lists them (see the module docstring)."""


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=11, documents=400, start=START, days=(END - START).days, timezone=ZONE)


NOTES: dict[str, Counter[str]] = {}
"""Rows landed with a note per rule, by the landing's directory (each sync lands in its own)."""


def _land(source: Source, root: Path) -> Warehouse:
    warehouse = Warehouse(root, ZONE)
    warehouse.initialize()
    results = extract_all(
        source, warehouse, date_from=START, date_to=END, snapshot_date=SNAPSHOT, run_id=source.name, timezone=ZONE
    )
    NOTES[str(root)] = sum((Counter(r.notes) for r in results), Counter())
    return warehouse


def _compared(warehouse: Warehouse, table: str) -> list[str]:
    columns = warehouse.query(f"SELECT * FROM {table} LIMIT 0").columns  # noqa: S608 (table from TABLES)
    return [column for column in columns if column not in NOT_CARRIED_BY_ODATA]


def _rows(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(_compared(warehouse, table))
    return warehouse.query(f"SELECT {columns} FROM {table} ORDER BY {columns}").rows()  # noqa: S608


@contextmanager
def _session(base_url: str, transport: SandboxTransport | None = None) -> Iterator[OneCSession]:
    settings = Settings(base_url=base_url, timezone=ZONE, rate_limit=1e6, page_size=PAGE, max_retries=10)
    with OneCSession(settings, transport=transport, sleep=lambda _: None) as session:
        yield session


@pytest.fixture(scope="module")
def json_landed(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    with _session(BASE, SandboxTransport(SandboxEngine(data, SandboxConfig(awkward=True)))) as session:
        return _land(OneCClient(session, page_size=PAGE), tmp_path_factory.mktemp("json"))


@dataclass(frozen=True)
class OdataRun:
    how: str
    warehouse: Warehouse
    served: dict[str, Any]
    """The sandbox's counters: responses by status, faults by kind."""


def _odata_landing(data: SandboxData, root: Path, how: str) -> OdataRun:
    engine = SandboxEngine(data, SandboxConfig(faults=READ_FAULTS if how == "faults" else FaultConfig(), seed=3))
    if how == "server":
        with running_server(engine) as base_url, _session(base_url) as session:
            source = OdataSource(session, root=odata_root(session.settings), model=LISTING, page_size=PAGE)
            warehouse = _land(source, root)
    else:
        with _session(BASE, SandboxTransport(engine)) as session:
            source = OdataSource(session, root=odata_root(session.settings), model=LISTING, page_size=PAGE)
            warehouse = _land(source, root)
    return OdataRun(how, warehouse, engine.stats.snapshot())


@pytest.fixture(
    scope="module", params=["in-process", "faults", pytest.param("server", marks=pytest.mark.e2e)]
)  # fmt: skip
def odata_landed(
    request: pytest.FixtureRequest, data: SandboxData, tmp_path_factory: pytest.TempPathFactory
) -> OdataRun:
    return _odata_landing(data, tmp_path_factory.mktemp(f"odata-{request.param}"), request.param)


@pytest.mark.parametrize("table", TABLES)
def test_odata_lands_what_json_lands(json_landed: Warehouse, odata_landed: OdataRun, table: str) -> None:
    expected = _rows(json_landed, table)
    assert len(expected) > 200
    assert _rows(odata_landed.warehouse, table) == expected


def test_every_request_parsed_faults_were_met_and_nothing_rejected(
    json_landed: Warehouse, odata_landed: OdataRun
) -> None:
    assert odata_landed.warehouse.query("SELECT count(*) FROM rejected_rows").item() == 0
    assert json_landed.query("SELECT count(*) FROM rejected_rows").item() == 0
    served = odata_landed.served
    assert 400 not in served["responses"], "a 400 is a query 1C could not parse (a `+`, a bad literal)"
    faults = sum(served["faults"].values())
    assert (faults > 0) is (odata_landed.how == "faults"), served["faults"]


def test_real_1c_data_lands_whole_with_the_same_notes(json_landed: Warehouse, odata_landed: OdataRun) -> None:
    """Negative stock and book quantities, items without stock, lines without prices (no Цена, Сумма), empty rows
    (the empty reference), receipts without supplier: OData lands them as JSON does, with the same notes."""
    query = "SELECT count(*) FROM document_lines WHERE doc_type = 'inventory' AND book_quantity < 0"
    assert odata_landed.warehouse.query(query).item() == json_landed.query(query).item() > 0
    json_notes = NOTES[str(json_landed.data_dir)]
    assert {"negative_book_quantity", "negative_stock", "item_without_stock", "line_without_price"} <= set(json_notes)
    assert NOTES[str(odata_landed.warehouse.data_dir)] == json_notes


def test_modified_at_is_what_odata_cannot_carry(json_landed: Warehouse, odata_landed: OdataRun) -> None:
    for table in ("goods", "documents"):
        assert json_landed.query(f"SELECT count(modified_at) FROM {table}").item() > 0  # noqa: S608
        assert odata_landed.warehouse.query(f"SELECT count(modified_at) FROM {table}").item() == 0  # noqa: S608


def test_zero_stock_positions_are_restored(odata_landed: OdataRun, data: SandboxData) -> None:
    """1C's Balance() omits empty positions; asked to, the snapshot lists them, as the exchange service does."""
    zero = sum(1 for g in data.goods_holdings() if g.quantity == 0)
    assert zero > 0
    assert odata_landed.warehouse.query("SELECT count(*) FROM goods WHERE quantity = 0").item() == zero
