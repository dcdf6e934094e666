"""CommerceML 3.1 packages as 1C:УТ 11 sends them to a site (Bitrix folder layout, split files, changes-only files,
orders): the sandbox renders them from its base, and what lands must be exactly what the base holds."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from onec.cli import main
from onec.config import Settings
from onec.exchange_files import INBOX_DIR, load_and_file_away, load_files, scan_inbox
from onec.marts import build_stock_movements
from onec.sandbox import SandboxData
from onec.sandbox.commerceml import write_commerceml_package, write_commerceml_prices
from onec.sources.commerceml import CommerceMLError
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
START = date(2026, 1, 1)
RETAIL = "Розничная"
NS3 = {"c": "urn:1C.ru:commerceml_3"}


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=11, documents=80, start=START, days=6, timezone=ZONE)


@pytest.fixture(scope="module")
def package(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("webdata") / "000000001"
    write_commerceml_package(data, folder, orders=True)
    return folder


def new_warehouse(directory: Path) -> Warehouse:
    store = Warehouse(directory, ZONE)
    store.initialize()
    return store


def stock_truth(data: SandboxData) -> dict[tuple[str, str], tuple[Decimal, Decimal | None, str | None]]:
    """(sku, warehouse) → (quantity, retail price, unit name): every item of the catalog at every warehouse."""
    held = {(g.sku, g.warehouse): g.quantity for g in data.goods_holdings() if g.bad_kind is None}
    return {
        (item.sku, warehouse): (held.get((item.sku, warehouse), Decimal(0)), item.price, item.unit)
        for item in data.nomenclature()
        if item.sku
        for warehouse in data.warehouses
    }


def landed_goods(store: Warehouse, day: date) -> dict[tuple[str, str], tuple[Decimal, Decimal | None, str | None]]:
    rows = store.query("SELECT sku, warehouse, quantity, price, unit FROM goods WHERE snapshot_date = ?", [day]).rows()
    return {(sku, wh): (quantity, None if price is None else price.normalize(), unit) for sku, wh, quantity, price,
            unit in rows}  # fmt: skip


def normalized(
    truth: dict[tuple[str, str], tuple[Decimal, Decimal | None, str | None]],
) -> dict[tuple[str, str], tuple[Decimal, Decimal | None, str | None]]:
    return {key: (q, None if p is None else p.normalize(), u) for key, (q, p, u) in truth.items()}


def test_package_folder_loads_with_onec_etl_load(
    data: SandboxData, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", str(package)]) == 0, capsys.readouterr().err
    store = Warehouse(Path(os.environ["ONEC_DATA_DIR"]), ZONE)
    assert landed_goods(store, START) == normalized(stock_truth(data))
    assert store.query("SELECT count(*) FROM rejected_rows").item() == 0
    skus = set(store.query("SELECT DISTINCT sku FROM goods")["sku"].to_list())
    assert skus == {item.sku for item in data.nomenclature() if item.sku}, "skus are the offers' «Артикул» property"
    units = set(store.query("SELECT DISTINCT unit FROM goods")["unit"].to_list())
    assert units - {None} and not any(u.isdigit() for u in units - {None}), "unit names from the classifier"


def test_orders_land_as_order_documents(data: SandboxData, package: Path, tmp_path: Path) -> None:
    store = new_warehouse(tmp_path)
    load_files([package], store, timezone=ZONE, run_id="orders")
    shipments = [doc for doc in data.documents_holdings("shipment") if doc.bad_kind is None]
    headers = store.query(
        "SELECT number, date, counterparty, warehouse, posted, deleted FROM documents WHERE doc_type = 'order'"
    ).rows()
    assert sorted(headers) == sorted(
        (d.number, d.date, d.counterparty, d.warehouse, d.posted, d.deleted) for d in shipments
    )
    lines = store.query(
        "SELECT number, line, sku, quantity, unit_price, total FROM document_lines WHERE doc_type = 'order'"
    ).rows()
    assert sorted(lines) == sorted(
        (d.number, n, line.sku, line.quantity, line.unit_price, line.total)
        for d in shipments
        for n, line in enumerate(d.items, start=1)
    )
    assert store.query("SELECT count(*) FROM documents WHERE doc_type <> 'order'").item() == 0
    build_stock_movements(store)
    assert store.query("SELECT count(*) FROM stock_movements").item() == 0, "an order moves no stock"


def test_inbox_takes_the_package_file_by_file(data: SandboxData, package: Path, tmp_path: Path) -> None:
    inbox = tmp_path / INBOX_DIR
    inbox.mkdir(parents=True)
    arrival = sorted(package.rglob("*.xml"), key=_protocol_order)
    store = new_warehouse(tmp_path / "data")
    first = 1_000_000.0
    for step, path in enumerate(arrival):
        target = inbox / path.name
        shutil.copy(path, target)
        os.utime(target, (first + step, first + step))
        scan = scan_inbox(inbox, now=first + step + 10, wait_s=900)
        if "rests___" in path.name or "documents___" in path.name:
            assert len(scan.groups) == 1 and not scan.waiting
            load_and_file_away(scan.groups[0], store, Settings(timezone=ZONE), run_id=f"inbox-{step}")
        else:
            assert scan.groups == [], f"{path.name} must wait for the rest of its package"
            (waiting,) = scan.waiting
            assert "waiting for" in waiting.describe() and "rests" in waiting.describe()
    assert landed_goods(store, START) == normalized(stock_truth(data))
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == sorted(p.name for p in arrival)
    orders = store.query("SELECT count(*) FROM documents WHERE doc_type = 'order'").item()
    assert orders == len([d for d in data.documents_holdings("shipment") if d.bad_kind is None])
    guid_skus = store.query("SELECT count(*) FROM document_lines WHERE length(sku) >= 36").item()
    assert guid_skus == 0, "orders that come after their package take its skus"


def test_inbox_gives_up_on_a_package_without_stock(package: Path, tmp_path: Path) -> None:
    inbox = tmp_path / INBOX_DIR
    inbox.mkdir(parents=True)
    for path in package.rglob("*.xml"):
        if not any(part in path.name for part in ("prices___", "rests___", "documents___")):
            shutil.copy(path, inbox / path.name)
            os.utime(inbox / path.name, (1_000_000, 1_000_000))
    waiting = scan_inbox(inbox, now=1_000_000 + 899, wait_s=900)
    assert waiting.groups == [] and "prices and rests" in waiting.waiting[0].describe()
    released = scan_inbox(inbox, now=1_000_000 + 900, wait_s=900)
    assert len(released.groups) == 1 and not released.waiting
    store = new_warehouse(tmp_path / "data")
    with pytest.raises(CommerceMLError, match="no stock"):
        load_and_file_away(released.groups[0], store, Settings(timezone=ZONE), run_id="late")
    reasons = [p for p in (inbox / "failed").iterdir() if p.name.endswith(".reason.txt")]
    assert len(reasons) == 4 and all("no stock" in p.read_text("utf-8") for p in reasons)
    assert store.query("SELECT count(*) FROM goods").item() == 0


def test_import_and_offers_without_rests_are_refused_not_landed_empty(package: Path, tmp_path: Path) -> None:
    parts = [p for p in package.rglob("*.xml") if "rests___" not in p.name and "documents___" not in p.name]
    store = new_warehouse(tmp_path)
    with pytest.raises(CommerceMLError, match="no stock"):
        load_files(parts, store, timezone=ZONE, run_id="partial")
    assert set(store.table_counts().values()) == {0}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.integers(0, 30), st.integers(1, 900_000), min_size=1, max_size=8))
def test_a_later_prices_file_alone_changes_prices_and_nothing_else(changes: dict[int, int], package: Path) -> None:
    data = SandboxData.generate(seed=11, documents=80, start=START, days=6, timezone=ZONE)
    items = [item for item in data.nomenclature() if item.sku and item.price is not None]
    later = datetime(2026, 1, 9, 8, 0, tzinfo=ZoneInfo(ZONE))
    changed = {items[i % len(items)].sku: Decimal(cents) / 100 for i, cents in changes.items()}
    with tempfile.TemporaryDirectory() as scratch:
        store = new_warehouse(Path(scratch) / "data")
        load_files([package], store, timezone=ZONE, run_id="full")
        before = landed_goods(store, START)
        for sku, price in changed.items():
            data.upsert_good(sku, data.warehouses[0], later, {"price": price})
        prices = write_commerceml_prices(data, Path(scratch) / "later", changed, later.replace(tzinfo=None))
        assert 'СодержитТолькоИзменения="true"' in prices.read_text("utf-8-sig")
        load_files([prices], store, timezone=ZONE, run_id="prices")
        after = landed_goods(store, later.date())
        assert landed_goods(store, START) == before, "the earlier snapshot is untouched"
    expected = {
        (sku, wh): (quantity, changed[sku].normalize() if sku in changed else price, unit)
        for (sku, wh), (quantity, price, unit) in before.items()
    }
    assert after == expected


def test_price_type_by_name_or_id_and_the_default(data: SandboxData, package: Path, tmp_path: Path) -> None:
    item = next(i for i in data.nomenclature() if i.sku and i.price is not None)

    def landed_price(env: dict[str, str], name: str) -> Decimal:
        store = new_warehouse(tmp_path / name)
        options = Settings.from_env(env).commerceml
        load_files([package], store, timezone=ZONE, run_id=name, commerceml_options=options)
        price: Decimal = store.query("SELECT any_value(price) FROM goods WHERE sku = ?", [item.sku]).item()
        return price

    assert item.price is not None
    assert landed_price({}, "default") == item.price, f"«{RETAIL}» by default, though declared second"
    wholesale = (item.price * Decimal("0.9")).quantize(Decimal("0.01"))
    assert landed_price({"ONEC_CML_PRICE_TYPE": "оптовая"}, "by-name") == wholesale
    classifier = etree.parse(str(next(package.glob("import___*.xml")))).getroot()
    retail_id = next(
        t.findtext("c:Ид", namespaces=NS3)
        for t in classifier.iterfind(".//c:ТипЦены", NS3)
        if t.findtext("c:Наименование", namespaces=NS3) == RETAIL
    )
    assert landed_price({"ONEC_CML_PRICE_TYPE": retail_id}, "by-id") == item.price
    with pytest.raises(CommerceMLError, match=r"price type 'Закупочная' is not in the package; it declares: Оптовая"):
        landed_price({"ONEC_CML_PRICE_TYPE": "Закупочная"}, "unknown")


def test_changes_only_rests_change_quantities_only(data: SandboxData, package: Path, tmp_path: Path) -> None:
    store = new_warehouse(tmp_path / "data")
    load_files([package], store, timezone=ZONE, run_id="full")
    rests = etree.parse(str(next(package.rglob("rests___*.xml")))).getroot()
    offer = rests.find(".//c:Предложение", NS3)
    offer_id = offer.findtext("c:Ид", namespaces=NS3)
    warehouse_id = offer.findtext("c:Остатки/c:Остаток/c:Склад/c:Ид", namespaces=NS3)
    changed = tmp_path / "rests___later.xml"
    changed.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_3"'
        ' ВерсияСхемы="3.1" ДатаФормирования="2026-01-10T09:00:00"><ПакетПредложений СодержитТолькоИзменения="true">'
        f"<Предложения><Предложение><Ид>{offer_id}</Ид><Остатки><Остаток><Склад><Ид>{warehouse_id}</Ид>"
        "<Количество>-3</Количество></Склад></Остаток></Остатки></Предложение></Предложения>"
        "</ПакетПредложений></КоммерческаяИнформация>",
        "utf-8",
    )
    before = landed_goods(store, START)
    load_files([changed], store, timezone=ZONE, run_id="rests")
    after = landed_goods(store, date(2026, 1, 10))
    (key,) = [k for k in before if after[k] != before[k]]
    assert after[key] == (Decimal("-3.000"), *before[key][1:])
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}


def _protocol_order(path: Path) -> int:
    """The order 1C uploads a package in: classifier, properties, goods, offers, prices, rests, then documents."""
    if path.parent.name not in ("1",):
        return 0
    marks = ("properties", "import___", "offers___", "prices___", "rests___", "documents___")
    return 1 + next(i for i, mark in enumerate(marks) if mark in path.parent.parent.name or mark in path.name)


def test_article_element_then_offer_property_then_good_property_then_id(tmp_path: Path) -> None:
    def values(property_id: str, value: str) -> str:
        inner = f"<ЗначенияСвойства><Ид>{property_id}</Ид><Значение>{value}</Значение></ЗначенияСвойства>"
        return f"<ЗначенияСвойств>{inner}</ЗначенияСвойств>"

    def offer(offer_id: str, article: str | None = None) -> str:
        own = values("p-art", article) if article else ""
        return f"<Предложение><Ид>{offer_id}</Ид>{own}<Количество>1</Количество></Предложение>"

    def good(good_id: str, inner: str = "") -> str:
        return f"<Товар><Ид>{good_id}</Ид><Наименование>{good_id}</Наименование>{inner}</Товар>"

    by_property = values("Артикул", "G-PROP")  # real 3.1 files use a property's name as its Ид too
    path = tmp_path / "set.xml"
    path.write_text(
        '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_3" ВерсияСхемы="3.1">'
        "<Классификатор><Свойства><Свойство><Ид>p-art</Ид><Наименование>Артикул</Наименование></Свойство>"
        "</Свойства></Классификатор><Каталог>"
        f"<Товары>{good('a', '<Артикул>A-EL</Артикул>')}{good('b')}{good('c', by_property)}{good('d')}</Товары>"
        "</Каталог><ПакетПредложений><Предложения>"
        f"{offer('a#1', 'A-OWN')}{offer('b#1', 'B-1')}{offer('b#2', 'B-2')}{offer('c#1')}{offer('d#1')}{offer('d')}"
        "</Предложения></ПакетПредложений></КоммерческаяИнформация>",
        "utf-8",
    )
    store = new_warehouse(tmp_path / "data")
    load_files([path], store, timezone=ZONE, run_id="articles")
    skus = dict(store.query("SELECT id, sku FROM goods").rows())
    assert skus == {"a#1": "A-EL#1", "b#1": "B-1", "b#2": "B-2", "c#1": "G-PROP#1", "d#1": "d#1", "d": "d"}


def test_changes_for_offers_without_a_position_are_rejected_with_why(package: Path, tmp_path: Path) -> None:
    store = new_warehouse(tmp_path / "data")
    load_files([package], store, timezone=ZONE, run_id="full")
    before = landed_goods(store, START)
    changed = tmp_path / "offers___later.xml"
    changed.write_text(
        '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_3" ВерсияСхемы="3.1"'
        ' ДатаФормирования="2026-01-10T09:00:00"><ПакетПредложений СодержитТолькоИзменения="true"><Предложения>'
        "<Предложение><Ид>new-good#1</Ид><Наименование>Новинка</Наименование></Предложение>"
        "<Предложение><Ид>unknown-offer</Ид><Цены><Цена><ИдТипаЦены>x</ИдТипаЦены><ЦенаЗаЕдиницу>5</ЦенаЗаЕдиницу>"
        "</Цена></Цены></Предложение></Предложения></ПакетПредложений></КоммерческаяИнформация>",
        "utf-8",
    )
    (result,) = load_files([changed], store, timezone=ZONE, run_id="new")
    assert (result.rows, result.rejected) == (0, 2)
    reasons = dict(store.query("SELECT record_key, reason FROM rejected_rows WHERE run_id = 'new'").rows())
    assert any("quantity: required" in reason for reason in reasons.values())
    assert landed_goods(store, date(2026, 1, 10)) == before, "nothing else changes"
