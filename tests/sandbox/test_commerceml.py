"""CommerceML 2.07 and 3.1 files written from the base: read back with lxml, they hold exactly the catalog, the
prices and the stock per warehouse; and the XPaths that read the real samples read them too."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from onec.sandbox.commerceml import write_commerceml, write_commerceml_package, write_commerceml_prices
from onec.sandbox.data import SandboxData

SAMPLES = Path("/work/shared/samples/commerceml")
NS2 = {"c": "urn:1C.ru:commerceml_2"}
NS3 = {"c": "urn:1C.ru:commerceml_3"}


def parse(path: Path) -> Any:
    return etree.parse(str(path)).getroot()


def number(text: str) -> Decimal:
    return Decimal(text.strip().replace(",", "."))


def offers_207(root: Any) -> dict[str, dict[str, Any]]:
    """What a 2.07 reader takes from offers.xml: per offer id, its sku, price and stock per warehouse name."""
    warehouses = {
        w.findtext("c:Ид", namespaces=NS2): w.findtext("c:Наименование", namespaces=NS2)
        for w in root.iterfind(".//c:Склады/c:Склад", NS2)
    }
    offers = {}
    for offer in root.iterfind(".//c:Предложения/c:Предложение", NS2):
        price = offer.findtext("c:Цены/c:Цена/c:ЦенаЗаЕдиницу", namespaces=NS2)
        offers[offer.findtext("c:Ид", namespaces=NS2)] = {
            "sku": offer.findtext("c:Артикул", namespaces=NS2),
            "price": None if price is None else number(price),
            "quantity": number(offer.findtext("c:Количество", namespaces=NS2) or "0"),
            "stock": {
                warehouses.get(s.get("ИдСклада"), s.get("ИдСклада")): number(s.get("КоличествоНаСкладе"))
                for s in offer.iterfind("c:Склад", NS2)
            },
        }
    return offers


@pytest.fixture(scope="module")
def data() -> SandboxData:
    base = SandboxData.generate(documents=150, seed=9, bad_records=7)
    marked = base.goods_holdings()[-1]
    assert marked.warehouse is not None
    base.upsert_good(
        marked.sku, marked.warehouse, datetime(2026, 2, 1, tzinfo=ZoneInfo(base.timezone)), {"deleted": True}
    )
    return base


def stock_truth(data: SandboxData) -> dict[str, dict[str | None, Decimal]]:
    stock: dict[str, dict[str | None, Decimal]] = {}
    for good in data.goods_holdings():
        if good.bad_kind is None:
            stock.setdefault(good.sku, {})[good.warehouse] = good.quantity
    return stock


@pytest.mark.parametrize("awkward", [False, True])
def test_207_holds_the_catalog_prices_and_stock(data: SandboxData, tmp_path: Path, awkward: bool) -> None:
    paths = write_commerceml(data, tmp_path, "2.07", awkward=awkward)
    assert [p.name for p in paths] == ["import.xml", "offers.xml"]
    assert all(p.read_bytes().startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>') for p in paths)
    catalog = parse(tmp_path / "import.xml")
    assert catalog.tag == "{urn:1C.ru:commerceml_2}КоммерческаяИнформация" and catalog.get("ВерсияСхемы") == "2.07"
    groups = {g.findtext("c:Ид", namespaces=NS2) for g in catalog.iterfind(".//c:Группы/c:Группа", NS2)}
    goods = catalog.findall(".//c:Каталог/c:Товары/c:Товар", NS2)
    items = {item.id: item for item in data.nomenclature() if item.sku}
    assert {g.findtext("c:Ид", namespaces=NS2) for g in goods} == set(items)
    for good in goods:
        item = items[good.findtext("c:Ид", namespaces=NS2)]
        assert good.findtext("c:Артикул", namespaces=NS2) == item.sku
        assert good.findtext("c:Наименование", namespaces=NS2) == item.name
        assert good.findtext("c:Группы/c:Ид", namespaces=NS2) in groups
        assert (good.get("Статус") == "Удален") == item.deleted
        unit = good.find("c:БазоваяЕдиница", NS2)
        assert (unit is None and item.unit is None) or unit.text == item.unit
    offers = offers_207(parse(tmp_path / "offers.xml"))
    stock = stock_truth(data)
    assert set(offers) == set(items)
    for offer_id, offer in offers.items():
        item = items[offer_id]
        assert offer["sku"] == item.sku and offer["price"] == item.price
        assert offer["stock"] == {wh: stock[item.sku].get(wh, Decimal(0)) for wh in data.warehouses}
        assert offer["quantity"] == sum(offer["stock"].values())
    text = (tmp_path / "offers.xml").read_text("utf-8-sig")
    assert ('Код="796 "' in text) == awkward, "unit codes padded as in the samples"
    assert bool(re.search(r'КоличествоНаСкладе="\d+,\d+"', text)) == awkward, "decimal commas"
    assert any(good.get("Статус") == "Удален" for good in goods), "a deleted item is marked"


def test_31_splits_offers_prices_and_rests(data: SandboxData, tmp_path: Path) -> None:
    paths = write_commerceml(data, tmp_path, "3.1")
    assert [p.name for p in paths] == ["import.xml", "offers.xml", "prices.xml", "rests.xml"]
    roots = {p.name: parse(p) for p in paths}
    assert all(r.tag == "{urn:1C.ru:commerceml_3}КоммерческаяИнформация" for r in roots.values())
    warehouses = {
        w.findtext("c:Ид", namespaces=NS3): w.findtext("c:Наименование", namespaces=NS3)
        for w in roots["offers.xml"].iterfind(".//c:Склады/c:Склад", NS3)
    }
    items = {item.id: item for item in data.nomenclature() if item.sku}
    prices = {
        o.findtext("c:Ид", namespaces=NS3): number(o.findtext("c:Цены/c:Цена/c:ЦенаЗаЕдиницу", namespaces=NS3))
        for o in roots["prices.xml"].iterfind(".//c:Предложение", NS3)
    }
    assert prices == {i: item.price for i, item in items.items() if item.price is not None}
    stock = stock_truth(data)
    for offer in roots["rests.xml"].iterfind(".//c:Предложение", NS3):
        item = items[offer.findtext("c:Ид", namespaces=NS3)]
        rests = {
            warehouses[s.findtext("c:Ид", namespaces=NS3)]: number(s.findtext("c:Количество", namespaces=NS3))
            for s in offer.iterfind("c:Остатки/c:Остаток/c:Склад", NS3)
        }
        assert rests == {wh: stock[item.sku].get(wh, Decimal(0)) for wh in data.warehouses}
    assert roots["offers.xml"].find(".//c:Предложение/c:Цены", NS3) is None, "3.1 offers carry no prices"


def test_the_reader_of_the_real_samples_reads_ours(data: SandboxData, tmp_path: Path) -> None:
    real = offers_207(parse(SAMPLES / "cml207_1c_export_dobromyslov" / "offers0_1.xml"))
    assert real and all(o["sku"] and o["stock"] for o in real.values())
    write_commerceml(data, tmp_path, "2.07")
    ours = offers_207(parse(tmp_path / "offers.xml"))
    assert ours and all(o["sku"] and set(o["stock"]) == set(data.warehouses) for o in ours.values())


def test_package_in_the_bitrix_layout_holds_the_base(data: SandboxData, tmp_path: Path) -> None:
    paths = write_commerceml_package(data, tmp_path, orders=True)
    layout = sorted(re.sub(r"___[0-9a-f-]{36}", "___<id>", str(p.relative_to(tmp_path))) for p in paths)
    assert layout == [
        "documents/1/documents___<id>.xml",
        "goods/1/import___<id>.xml",
        "goods/1/offers___<id>.xml",
        "goods/1/prices___<id>.xml",
        "goods/1/rests___<id>.xml",
        "import___<id>.xml",
        "properties/1/import___<id>.xml",
    ]
    roots = {re.sub(r"___.*", "", str(p.relative_to(tmp_path))): parse(p) for p in paths}
    assert all(r.tag == "{urn:1C.ru:commerceml_3}КоммерческаяИнформация" for r in roots.values())
    assert all(r.get("ВерсияСхемы") == "3.1" for r in roots.values())
    classifier = roots["import"].find("c:Классификатор", NS3)
    units = {
        u.findtext("c:Код", namespaces=NS3).strip(): u.findtext("c:НаименованиеКраткое", namespaces=NS3)
        for u in classifier.iterfind("c:ЕдиницыИзмерения/c:ЕдиницаИзмерения", NS3)
    }
    price_types = {
        t.findtext("c:Наименование", namespaces=NS3): t.findtext("c:Ид", namespaces=NS3)
        for t in classifier.iterfind("c:ТипыЦен/c:ТипЦены", NS3)
    }
    assert list(price_types) == ["Оптовая", "Розничная"], "the retail type is not the first declared"
    warehouses = {
        w.findtext("c:Ид", namespaces=NS3): w.findtext("c:Наименование", namespaces=NS3)
        for w in classifier.iterfind("c:Склады/c:Склад", NS3)
    }
    assert sorted(warehouses.values()) == sorted(data.warehouses)
    properties = {
        p.findtext("c:Наименование", namespaces=NS3): p.findtext("c:Ид", namespaces=NS3)
        for p in roots["properties/1/import"].iterfind("c:Классификатор/c:Свойства/c:Свойство", NS3)
    }
    items = {item.id: item for item in data.nomenclature() if item.sku}
    goods = roots["goods/1/import"].findall("c:Каталог/c:Товары/c:Товар", NS3)
    assert {g.findtext("c:Ид", namespaces=NS3) for g in goods} == set(items)
    for good in goods:
        item = items[good.findtext("c:Ид", namespaces=NS3)]
        assert good.find("c:Артикул", NS3) is None, "the article lives in the offer's property"
        code = good.findtext("c:БазоваяЕдиница", namespaces=NS3)
        assert (code is None and item.unit is None) or units[code.strip()] == item.unit
    for offer in roots["goods/1/offers"].iterfind(".//c:Предложения/c:Предложение", NS3):
        item = items[offer.findtext("c:Ид", namespaces=NS3)]
        values = {
            v.findtext("c:Ид", namespaces=NS3): v.findtext("c:Значение", namespaces=NS3)
            for v in offer.iterfind("c:ЗначенияСвойств/c:ЗначенияСвойства", NS3)
        }
        assert offer.find("c:Артикул", NS3) is None and values[properties["Артикул"]] == item.sku
        assert offer.find("c:Цены", NS3) is None and offer.find("c:Остатки", NS3) is None
    for offer in roots["goods/1/prices"].iterfind(".//c:Предложение", NS3):
        item = items[offer.findtext("c:Ид", namespaces=NS3)]
        by_type = {
            p.findtext("c:ИдТипаЦены", namespaces=NS3): number(p.findtext("c:ЦенаЗаЕдиницу", namespaces=NS3))
            for p in offer.iterfind("c:Цены/c:Цена", NS3)
        }
        assert by_type[price_types["Розничная"]] == item.price
    stock = stock_truth(data)
    for offer in roots["goods/1/rests"].iterfind(".//c:Предложение", NS3):
        item = items[offer.findtext("c:Ид", namespaces=NS3)]
        rests = {
            warehouses[s.findtext("c:Ид", namespaces=NS3)]: number(s.findtext("c:Количество", namespaces=NS3))
            for s in offer.iterfind("c:Остатки/c:Остаток/c:Склад", NS3)
        }
        assert rests == {wh: stock[item.sku].get(wh, Decimal(0)) for wh in data.warehouses}
    orders = roots["documents/1/documents"].findall("c:Контейнер/c:Документ", NS3)
    shipments = {d.number: d for d in data.documents_holdings("shipment") if d.bad_kind is None}
    assert {o.findtext("c:Номер", namespaces=NS3) for o in orders} == set(shipments)
    for order in orders:
        doc = shipments[order.findtext("c:Номер", namespaces=NS3)]
        assert order.findtext("c:ХозОперация", namespaces=NS3) == "Заказ товара"
        buyer = order.find("c:Контрагенты/c:Контрагент", NS3)
        assert (buyer.findtext("c:Наименование", namespaces=NS3), buyer.findtext("c:Роль", namespaces=NS3)) == (
            doc.counterparty,
            "Покупатель",
        )
        lines = [
            (items[t.findtext("c:Ид", namespaces=NS3)].sku, number(t.findtext("c:Количество", namespaces=NS3)))
            for t in order.iterfind("c:Товары/c:Товар", NS3)
        ]
        assert lines == [(line.sku, line.quantity) for line in doc.items]


def test_a_later_changes_only_prices_file(data: SandboxData, tmp_path: Path) -> None:
    skus = [item.sku for item in data.nomenclature() if item.sku and item.price is not None][:3]
    path = write_commerceml_prices(data, tmp_path, skus, datetime(2026, 2, 2, 9, 0))
    root = parse(path)
    package = root.find("c:ПакетПредложений", NS3)
    assert package.get("СодержитТолькоИзменения") == "true" and root.get("ДатаФормирования") == "2026-02-02T09:00:00"
    by_id = {item.id: item.sku for item in data.nomenclature()}
    assert sorted(by_id[o.findtext("c:Ид", namespaces=NS3)] for o in package.iterfind(".//c:Предложение", NS3)) == (
        sorted(skus)
    )


def test_rejects_unknown_versions(data: SandboxData, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_commerceml(data, tmp_path, "2.10")
