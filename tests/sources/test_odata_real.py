"""The OData source against real configurations (contract §1.3 "What real bases hold"): the sandbox acting out a
УТ 11 base (`SandboxConfig(odata_configuration="ut11")`: no price register, packaging units, priceless lines,
empty rows, receipts without counterparty) read with the shipped `ut11` model; an older configuration's lines in
units with a `Коэффициент`; goods as 1C returns them; the shipped models and the model's switches.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from onec.config import ConfigError, Settings
from onec.http import OneCSession
from onec.sandbox import SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.sandbox.data import Line, line_total
from onec.sources.odata import OdataSource, odata_root
from onec.sources.odata_model import SHIPPED_MODELS, OdataModel
from onec.sync import extract_all
from onec.warehouse import Warehouse

BASE = "http://sandbox/trade/hs/exchange"
ROOT = "http://sandbox/trade/odata/standard.odata/"
ZONE = "Europe/Moscow"
START, END = date(2026, 1, 1), date(2026, 1, 8)
UT11 = OdataModel.load(Path("ut11"))
PACK_OF_TEN = Decimal(2340)
"""A line of 234 packs of 10: the sandbox's УТ 11 writes it in packs of 10, the largest it fills."""


def _base_with_a_pack_line() -> tuple[SandboxData, str]:
    """A small base plus two posted receipts: one whose only line is 2,340 pieces (234 packs of 10), and one of
    opening balances (no supplier) whose second row a user added and left empty."""
    data = SandboxData.generate(seed=7, documents=80, start=START, days=(END - START).days, timezone=ZONE)
    item = next(i for i in data.nomenclature() if i.unit == "шт" and i.price is not None)
    price, zero = Decimal("12.50"), Decimal("0.00")
    line = Line(1, item.sku, item.name, PACK_OF_TEN, price, line_total(PACK_OF_TEN, price))
    when = datetime(2026, 1, 5, 11, 0, tzinfo=ZoneInfo(ZONE))
    warehouse = data.warehouses[0]
    receipt = data.create_document("goods-receipt", "ПТ-234", when, warehouse, [line], when, "ООО Поставщик")
    opening = [Line(1, item.sku, item.name, Decimal(7), price, line_total(Decimal(7), price)),
               Line(2, None, None, Decimal(0), zero, zero)]  # fmt: skip
    balances = data.create_document("goods-receipt", "ВО-1", when, warehouse, opening, when, None, notes="Ввод")
    for doc in (receipt, balances):
        data.post_document("goods-receipt", doc.id, when)
    return data, item.sku


@pytest.fixture(scope="module")
def pack_base() -> tuple[SandboxData, str]:
    return _base_with_a_pack_line()


def _source(engine: SandboxEngine, model: OdataModel, transport: httpx.BaseTransport | None = None) -> Iterator[Any]:
    settings = Settings(base_url=BASE, rate_limit=1e6, max_retries=3, timezone=ZONE)
    with OneCSession(settings, transport=transport or SandboxTransport(engine), sleep=lambda _: None) as session:
        yield OdataSource(session, root=odata_root(session.settings), model=model, page_size=25)


def _ut11(data: SandboxData) -> Iterator[OdataSource]:
    yield from _source(SandboxEngine(data, SandboxConfig(odata_configuration="ut11")), UT11)


def _records(batches: Iterator[Any]) -> list[dict[str, Any]]:
    return [record for batch in batches for record in batch]


def _get(engine: SandboxEngine, path: str) -> httpx.Response:
    return SandboxTransport(engine).handle_request(httpx.Request("GET", f"{ROOT}{path}"))


# --- the sandbox acts out a УТ 11 base


def test_the_ut11_base_publishes_no_price_register(pack_base: tuple[SandboxData, str]) -> None:
    engine = SandboxEngine(pack_base[0], SandboxConfig(odata_configuration="ut11"))
    names = {row["name"] for row in orjson.loads(_get(engine, "?$format=json").read())["value"]}
    assert not any("ЦеныНоменклатуры" in name for name in names)
    assert {"Catalog_УпаковкиЕдиницыИзмерения", "Document_ПриобретениеТоваровУслуг"} <= names
    assert "ЦеныНоменклатуры" not in _get(engine, "$metadata").text
    assert _get(engine, "InformationRegister_ЦеныНоменклатуры/SliceLast()?$format=json").status_code == 404
    post = httpx.Request("POST", f"{ROOT}Document_ПриобретениеТоваровУслуг", json={"Number": "1"})
    assert SandboxTransport(engine).handle_request(post).status_code == 405, "this mode serves no writes"


def test_the_ut11_base_writes_lines_in_packs(pack_base: tuple[SandboxData, str]) -> None:
    data, _ = pack_base
    engine = SandboxEngine(data, SandboxConfig(odata_configuration="ut11"))
    packs = orjson.loads(_get(engine, "Catalog_УпаковкиЕдиницыИзмерения?$format=json").read())["value"]
    sizes = {row["Ref_Key"]: row["Числитель"] / row["Знаменатель"] for row in packs}
    assert {2.0, 5.0, 10.0} <= set(sizes.values())
    receipts = orjson.loads(_get(engine, "Document_ПриобретениеТоваровУслуг?$format=json").read())["value"]
    line = next(r for r in receipts if r["Number"] == "ПТ-234")["Товары"][0]
    assert (line["КоличествоУпаковок"], sizes[line["Упаковка_Key"]], line["Количество"]) == (234, 10, 2340)
    assert line["Цена"] == 125.0, "УТ 11 prices a line per pack"


# --- the done criterion: no price register, priceless and unit-scaled lines, every document in base units


def test_ut11_documents_come_out_in_base_units(pack_base: tuple[SandboxData, str]) -> None:
    data, sku = pack_base
    for source in _ut11(data):
        receipts = _records(source.documents("goods-receipt", START, END))
        transfers = _records(source.documents("transfer", START, END))
    line = next(r for r in receipts if r["number"] == "ПТ-234")["items"][0]
    assert (line["sku"], line["quantity"], line["line_unit"]) == (sku, Decimal("2340.000"), "упак (10 шт)")
    assert (line["unit_coefficient"], line["unit_price"], line["total"]) == (10, Decimal("12.5"), Decimal("29250"))
    assert transfers and all(i["unit_price"] is None and i["total"] is None for t in transfers for i in t["items"])
    assert not [r for r in receipts + transfers if "_unresolved" in r]
    truth = {d.number: d for d in data.documents_holdings("goods-receipt", START, END)}
    for receipt in receipts:
        held = {line.line: line.quantity for line in truth[receipt["number"]].items if line.sku is not None}
        landed = {int(i["line"]): i["quantity"] for i in receipt["items"] if i["sku"] is not None}
        assert landed == held, "every line in base units, whatever pack it was written in"


def test_empty_rows_and_receipts_without_counterparty_are_data_not_errors(pack_base: tuple[SandboxData, str]) -> None:
    for source in _ut11(pack_base[0]):
        receipts = _records(source.documents("goods-receipt", START, END))
    empty = [i for r in receipts for i in r["items"] if i["sku"] is None]
    assert empty and all(i["quantity"] == 0 and i["line_unit"] is None for i in empty)
    assert any(r["counterparty"] is None for r in receipts)
    assert not [r for r in receipts if "_unresolved" in r]


def test_ut11_sync_lands_every_document_in_base_units(pack_base: tuple[SandboxData, str], tmp_path: Path) -> None:
    """Needs validation that accepts null unit_price/total, a null counterparty and empty rows (§1.3)."""
    data, _ = pack_base
    warehouse = Warehouse(tmp_path, ZONE)
    warehouse.initialize()
    for source in _ut11(data):
        extract_all(source, warehouse, date_from=START, date_to=END, snapshot_date=END, run_id="ut11", timezone=ZONE)
    rejected = warehouse.query("SELECT entity, doc_type, reason FROM rejected_rows").rows()
    assert rejected == []
    line = warehouse.query(
        "SELECT quantity, line_unit, unit_coefficient FROM document_lines WHERE number = 'ПТ-234'"
    ).rows()
    assert line == [(Decimal("2340.000"), "упак (10 шт)", Decimal("10.000000"))]
    landed = warehouse.query("SELECT count(*) FROM documents").item()
    assert landed == sum(len(data.documents_holdings(s, START, END)) for s in UT11.documents)


def test_warehouse_orders_map_to_a_type_and_land_priceless(pack_base: tuple[SandboxData, str]) -> None:
    changes = {"documents": {"goods-receipt": {"entity_set": "Document_ПриходныйОрдерНаТовары", "priced": False,
                                               "counterparty": None}}}  # fmt: skip
    model = OdataModel.with_overrides({**_overrides_of("ut11"), **changes})
    for source in _source(SandboxEngine(pack_base[0], SandboxConfig(odata_configuration="ut11")), model):
        orders = _records(source.documents("goods-receipt", START, END))
    assert orders and "counterparty" not in orders[0]
    assert all(i["unit_price"] is None and i["total"] is None for o in orders for i in o["items"])
    line = next(o for o in orders if o["number"] == "ПТ-234")["items"][0]
    assert line["quantity"] == PACK_OF_TEN


# --- an older configuration: Количество in the line's unit, × the unit's Коэффициент


def _in_units_of(coefficient: float, unit_key: str) -> dict[str, Any]:
    """Wire edits making the §2.1 sandbox an older configuration: each shipment line whose quantity fills whole
    units of `coefficient` base units is written in that unit (`ЕдиницаИзмерения_Key`, `Количество` in it, `Цена`
    per it), the others stay in base units; the unit is added to the catalog."""

    def lines(body: dict[str, Any]) -> None:
        for doc in body["value"]:
            for row in doc["Товары"]:
                if row["Количество"] % coefficient:
                    continue
                row["ЕдиницаИзмерения_Key"] = unit_key
                row["Количество"] = row["Количество"] / coefficient
                row["Цена"] = row["Цена"] * coefficient

    def units(body: dict[str, Any]) -> None:
        body["value"].append({"Ref_Key": unit_key, "Description": f"уп ({coefficient:g})", "Коэффициент": coefficient})
        for row in body["value"]:
            row.setdefault("Коэффициент", 1)

    return {"Document_РасходТовара": lines, "Catalog_ЕдиницыИзмерения": units}


class Edited(httpx.BaseTransport):
    def __init__(self, engine: SandboxEngine, edits: dict[str, Any]) -> None:
        self.engine, self.edits = engine, edits

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = SandboxTransport(self.engine).handle_request(request)
        path = request.url.path
        edit = next((e for name, e in self.edits.items() if name in path and "$count" not in path), None)
        if edit is None or response.status_code != 200:
            return response
        body = orjson.loads(response.read())
        edit(body)
        return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("coefficient", [2, 5, 10])
def test_older_lines_in_units_are_multiplied_by_the_coefficient(
    pack_base: tuple[SandboxData, str], coefficient: int
) -> None:
    data = pack_base[0]
    engine = SandboxEngine(data, SandboxConfig())
    unit = "5f0c2a10-0000-4000-8000-00000000000a"
    for source in _source(engine, OdataModel(), Edited(engine, _in_units_of(coefficient, unit))):
        shipments = _records(source.documents("shipment", START, END))
    truth = {d.number: d for d in data.documents_holdings("shipment", START, END)}
    assert shipments
    units: set[tuple[Any, Any]] = set()
    for shipment in shipments:
        held = truth[shipment["number"]].items
        assert [i["quantity"] for i in shipment["items"]] == [line.quantity for line in held]
        assert [i["unit_price"] for i in shipment["items"]] == [line.unit_price for line in held]
        units.update((i["line_unit"], i["unit_coefficient"]) for i in shipment["items"])
    assert units == {(None, None), (f"уп ({coefficient})", coefficient)}, "lines in packs and in base units"


def test_a_line_of_234_packs_of_ten_is_2340(pack_base: tuple[SandboxData, str]) -> None:
    data = pack_base[0]
    engine = SandboxEngine(data, SandboxConfig())
    unit = "5f0c2a10-0000-4000-8000-00000000000b"

    def two_hundred_thirty_four(body: dict[str, Any]) -> None:
        row = body["value"][0]["Товары"][0]
        row |= {"ЕдиницаИзмерения_Key": unit, "Количество": 234.0}

    edits = {**_in_units_of(10, unit), "Document_РасходТовара": two_hundred_thirty_four}
    for source in _source(engine, OdataModel(), Edited(engine, edits)):
        first = _records(source.documents("shipment", START, END))[0]["items"][0]
    assert (first["quantity"], first["line_unit"], first["unit_coefficient"]) == (Decimal("2340.000"), "уп (10)", 10)


def test_a_unit_without_a_coefficient_rejects_rather_than_guesses(pack_base: tuple[SandboxData, str]) -> None:
    data = pack_base[0]
    engine = SandboxEngine(data, SandboxConfig())
    unit = "5f0c2a10-0000-4000-8000-00000000000c"
    with_coefficient = _in_units_of(10, unit)["Catalog_ЕдиницыИзмерения"]

    def zero(body: dict[str, Any]) -> None:
        with_coefficient(body)
        body["value"][-1]["Коэффициент"] = 0

    def first_line(body: dict[str, Any]) -> None:
        body["value"][0]["Товары"][0]["ЕдиницаИзмерения_Key"] = unit

    edits = {"Document_РасходТовара": first_line, "Catalog_ЕдиницыИзмерения": zero}
    for source in _source(engine, OdataModel(), Edited(engine, edits)):
        shipment = _records(source.documents("shipment", START, END))[0]
    assert shipment["items"][0]["quantity"] is None
    assert any("Коэффициент" in reason for reason in shipment["_unresolved"])


# --- goods: what 1C returns


def test_goods_are_the_balance_and_one_row_per_item_without_stock() -> None:
    data, _ = _base_with_a_pack_line()
    sold_out = data.nomenclature()[0]
    for good in data.goods_holdings():
        if good.sku == sold_out.sku:
            good.quantity = Decimal(0)
    data.revision += 1
    engine = SandboxEngine(data, SandboxConfig())
    balance = orjson.loads(_get(engine, "AccumulationRegister_ТоварыНаСкладах/Balance()?$format=json").read())
    for source in _source(engine, OdataModel()):
        goods = _records(source.goods())
    with_warehouse = [g for g in goods if g["warehouse"] is not None]
    assert len(with_warehouse) == len(balance["value"]), "no invented item × warehouse rows"
    assert all(g["quantity"] != 0 for g in with_warehouse)
    stocked = {g["sku"] for g in with_warehouse}
    nowhere = {g["sku"]: g["quantity"] for g in goods if g["warehouse"] is None}
    assert nowhere == {item.sku: 0 for item in data.nomenclature() if item.sku not in stocked}
    assert sold_out.sku in nowhere


def test_ut11_goods_need_no_price_register(pack_base: tuple[SandboxData, str]) -> None:
    data = pack_base[0]
    for source in _ut11(data):
        goods = _records(source.goods())
    held = {(g.sku, g.warehouse): g.quantity for g in data.goods_holdings() if g.quantity != 0}
    assert {(g["sku"], g["warehouse"]): g["quantity"] for g in goods if g["warehouse"]} == held
    assert all(g["price"] is None for g in goods)
    assert {g["unit"] for g in goods} <= {i.unit for i in data.nomenclature()}


# --- the models


def _overrides_of(name: str) -> dict[str, Any]:
    return tomllib.loads((SHIPPED_MODELS / f"{name}.toml").read_text("utf-8"))


def test_shipped_models_load_by_name() -> None:
    settings = Settings.from_env({"ONEC_SOURCE": "odata", "ONEC_ODATA_MODEL": "ut11"})
    assert settings.odata_model == SHIPPED_MODELS / "ut11.toml"
    with pytest.raises(ConfigError, match="not a readable file"):
        Settings.from_env({"ONEC_SOURCE": "odata", "ONEC_ODATA_MODEL": "ut12"})
    assert UT11.prices is None and UT11.line_unit == "Упаковка_Key" and UT11.line_quantity_in_base_units
    assert UT11.documents["inventory"].entity_set == "Document_ПересчетТоваров"
    bp30 = OdataModel.load(Path("bp30"))
    assert bp30.stock is None and bp30.line_unit is None
    assert bp30.documents["goods-receipt"].entity_set == "Document_ПоступлениеТоваровУслуг"


def test_a_model_without_stock_register_refuses_goods(pack_base: tuple[SandboxData, str]) -> None:
    for source in _source(SandboxEngine(pack_base[0], SandboxConfig()), OdataModel(stock=None)):
        with pytest.raises(ConfigError, match="no stock register"):
            _records(source.goods())


def test_prices_and_line_prices_switch_off(tmp_path: Path) -> None:
    as_json = tmp_path / "model.json"
    as_json.write_text(json.dumps({"prices": None, "line_price": None, "line_total": None}), encoding="utf-8")
    model = OdataModel.load(as_json)
    assert (model.prices, model.line_price, model.line_total) == (None, None, None)
    as_toml = tmp_path / "model.toml"
    as_toml.write_text("prices = false\n[documents.shipment]\npriced = false\ncounterparty = false\n", "utf-8")
    model = OdataModel.load(as_toml)
    assert model.prices is None and model.documents["shipment"].counterparty is None
    assert model.documents["shipment"].priced is False
    with pytest.raises(ConfigError, match="priced must be a non-empty bool"):
        OdataModel.with_overrides({"documents": {"shipment": {"priced": "no"}}})


def test_no_price_register_means_no_slice_request(pack_base: tuple[SandboxData, str]) -> None:
    engine = SandboxEngine(pack_base[0], SandboxConfig(odata_configuration="ut11"))
    seen: list[str] = []

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            return SandboxTransport(engine).handle_request(request)

    for source in _source(engine, UT11, Recording()):
        assert _records(source.goods())
    assert not [path for path in seen if "SliceLast" in path]
