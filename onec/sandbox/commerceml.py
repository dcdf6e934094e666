"""CommerceML exchange files (§3) written from the sandbox base, shaped like the real 1C files in
`shared/samples/commerceml/`.

Why: the CommerceML reader must be tested against files whose truth is known. The samples prove the reader copes
with real structure; these files prove it lands exactly what the base holds: every item of the catalog, its price,
and its stock per warehouse. Version 2.07 writes `import.xml` (classifier with groups, catalog of goods) and
`offers.xml` (price types, warehouses, one offer per item with price, total quantity and
`<Склад ИдСклада=… КоличествоНаСкладе=…/>` per warehouse); 3.1 splits the offers into `offers.xml` (the offers
themselves), `prices.xml` and `rests.xml` (stock as `Остатки/Остаток/Склад` elements), in the
`urn:1C.ru:commerceml_3` namespace.

As real 1C does, the files are UTF-8 with a BOM, and `awkward=True` adds what the samples show: unit codes padded
with spaces (`Код="796 "`) and decimal commas in numbers. Goods rows without a sku (bad records) are left out;
deleted items carry `Статус="Удален"`.

`write_commerceml_package` writes a 3.1 package as 1C:УТ 11 hands it to a Bitrix site, in its folder layout
(`webdata/…` of the exchange, as the sites that unpack it name the files): the classifier `import___<id>.xml` at
the top (groups, units, price types, warehouses), `properties/1/import___<id>.xml` (the properties), and
`goods/1/import___`, `offers___`, `prices___`, `rests___<id>.xml`; with `orders=True`, the base's shipments as the
customer orders 1C exports (`documents/1/documents___<id>.xml`, 3.1 `Контейнер/Документ`). What it takes from real
3.1 files (FREESPORT-B2B's УТ 11 fixtures, the Bitrix upload names): the unit as its bare code
(`<БазоваяЕдиница>796 </БазоваяЕдиница>`) with names only in the classifier's `ЕдиницыИзмерения`; price types and
warehouses in the classifier, referred to by Ид from prices and rests; offers with `ПометкаУдаления` and
`ЗначенияСвойств`; and the case this writer exists for: the article not as an `Артикул` element but as the offer's
property «Артикул», resolved through the classifier's `Свойства`. Two price types are declared, the wholesale one
first, so "which price lands" is a real question. `write_commerceml_prices` writes the changes-only prices file a
later exchange sends for the items whose price changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from onec.sandbox.data import Item, SandboxData
from onec.sandbox.odata_model import ODataModel
from onec.sandbox.render import local_text, plain_number

NAMESPACES = {"2.07": "urn:1C.ru:commerceml_2", "3.1": "urn:1C.ru:commerceml_3"}
OKEI = {"шт": ("796", "Штука", "PCE"), "кг": ("166", "Килограмм", "KGM"), "м": ("006", "Метр", "MTR"),
        "упак": ("778", "Упаковка", "NMP")}  # fmt: skip
OWNER = ('ООО "Торговый дом"', "7701234567", "770101001")
PRICE_TYPE = "Розничная"
WHOLESALE_PRICE_TYPE = "Оптовая"
WHOLESALE_SHARE = Decimal("0.9")
ARTICLE_PROPERTY = "Артикул"
BOM = b"\xef\xbb\xbf"


def write_commerceml(
    data: SandboxData,
    directory: Path,
    version: str = "2.07",
    created: datetime | None = None,
    awkward: bool = False,
) -> list[Path]:
    """Write the exchange files of `version` ("2.07" or "3.1") into `directory`; returns their paths."""
    if version not in NAMESPACES:
        raise ValueError(f"version must be one of {', '.join(NAMESPACES)}")
    writer = _Writer(data, version, created or datetime.combine(data.start, datetime.min.time()), awkward)
    directory.mkdir(parents=True, exist_ok=True)
    files = {"import.xml": writer.import_file(), "offers.xml": writer.offers_file()}
    if version == "3.1":
        files["prices.xml"] = writer.prices_file()
        files["rests.xml"] = writer.rests_file()
    paths = []
    for name, root in files.items():
        path = directory / name
        text = etree.tostring(root, encoding="unicode", pretty_print=True)
        path.write_bytes(BOM + f'<?xml version="1.0" encoding="UTF-8"?>\n{text}'.encode())
        paths.append(path)
    return paths


def write_commerceml_package(
    data: SandboxData, directory: Path, created: datetime | None = None, orders: bool = False
) -> list[Path]:
    """Write a complete CommerceML 3.1 package in the Bitrix folder layout (module docstring); returns its files."""
    writer = _Writer(data, "3.1", created or datetime.combine(data.start, datetime.min.time()), package=True)
    files = {
        writer.package_name("import", ""): writer.classifier_file(),
        writer.package_name("import", "properties/1"): writer.properties_file(),
        writer.package_name("import", "goods/1"): writer.import_file(),
        writer.package_name("offers", "goods/1"): writer.offers_file(),
        writer.package_name("prices", "goods/1"): writer.prices_file(),
        writer.package_name("rests", "goods/1"): writer.rests_file(),
    }
    if orders:
        files[writer.package_name("documents", "documents/1")] = writer.orders_file()
    return [_write(directory / name, root) for name, root in files.items()]


def write_commerceml_prices(data: SandboxData, directory: Path, skus: Iterable[str], created: datetime) -> Path:
    """The changes-only `prices___<id>.xml` of a later exchange: the current prices of the items of `skus`."""
    writer = _Writer(data, "3.1", created, package=True)
    wanted = set(skus)
    writer.items = [item for item in writer.items if item.sku in wanted]
    name = writer.package_name("prices", "", stamp=created.isoformat())
    return _write(directory / name, writer.prices_file(changes_only=True))


def _write(path: Path, root: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = etree.tostring(root, encoding="unicode", pretty_print=True)
    path.write_bytes(BOM + f'<?xml version="1.0" encoding="UTF-8"?>\n{text}'.encode())
    return path


class _Writer:
    def __init__(
        self, data: SandboxData, version: str, created: datetime, awkward: bool = False, package: bool = False
    ) -> None:
        self.data = data
        self.version = version
        self.created = created
        self.awkward = awkward
        self.model = ODataModel(data)
        self.ns = NAMESPACES[version]
        self.items = [item for item in data.nomenclature() if item.sku]
        space = uuid.uuid5(uuid.NAMESPACE_URL, f"onec-sandbox-cml:{data.seed}")
        self.catalog_id = str(uuid.uuid5(space, "catalog"))
        self.owner_id = str(uuid.uuid5(space, "owner"))
        self.price_type_id = str(uuid.uuid5(space, "price-type"))
        self.wholesale_type_id = str(uuid.uuid5(space, "price-type-wholesale"))
        self.article_id = str(uuid.uuid5(space, "property-article"))
        self.space = space
        self.package = package

    def package_name(self, kind: str, folder: str, stamp: str = "") -> str:
        """`<folder>/<kind>___<uuid>.xml`, as 1C names the files it uploads to a site."""
        name = f"{kind}___{uuid.uuid5(self.space, f'{folder}/{kind}{stamp}')}.xml"
        return f"{folder}/{name}" if folder else name

    # --- files

    def import_file(self) -> Any:
        """The catalog (2.07 and the flat 3.1 set: with the classifier's groups; a package's goods file: alone)."""
        root = self._root()
        if not self.package:
            self._groups(self._classifier(root))
        catalog = self._sub(root, "Каталог", СодержитТолькоИзменения="false")
        self._text(catalog, "Ид", self.catalog_id)
        self._text(catalog, "ИдКлассификатора", self.catalog_id)
        self._text(catalog, "Наименование", f"Каталог товаров {self.catalog_id[:8].upper()}")
        self._owner(catalog)
        goods = self._sub(catalog, "Товары")
        parents = {row["Ref_Key"]: row["Parent_Key"] for row in self.model.nomenclature() if not row["IsFolder"]}
        for item in self.items:
            self._good(goods, item, parents[item.id])
        return root

    def classifier_file(self) -> Any:
        """The package's top `import___`: groups, units, price types and warehouses (3.1 keeps them here)."""
        root = self._root()
        classifier = self._classifier(root)
        self._groups(classifier)
        units = self._sub(classifier, "ЕдиницыИзмерения")
        for name in sorted({item.unit for item in self.items if item.unit}):
            code, full, short = OKEI.get(name, ("796", name, name))
            unit = self._sub(units, "ЕдиницаИзмерения")
            fields = {"Ид": f"{code} ", "ПометкаУдаления": "false", "НаименованиеКраткое": name, "Код": f"{code} ",
                      "НаименованиеПолное": full, "МеждународноеСокращение": short}  # fmt: skip
            for tag, value in fields.items():
                self._text(unit, tag, value)
        self._price_types(classifier, {self.wholesale_type_id: WHOLESALE_PRICE_TYPE, self.price_type_id: PRICE_TYPE})
        self._warehouses(classifier)
        return root

    def properties_file(self) -> Any:
        """`properties/1/import___`: the classifier's properties (the article among them)."""
        root = self._root()
        properties = self._sub(self._classifier(root), "Свойства")
        for property_id, name in ((self.article_id, ARTICLE_PROPERTY), (str(uuid.uuid5(self.space, "brand")), "Бренд")):
            prop = self._sub(properties, "Свойство")
            self._text(prop, "Ид", property_id)
            self._text(prop, "Наименование", name)
            self._text(prop, "ТипЗначений", "Строка")
        return root

    def orders_file(self) -> Any:
        """The base's valid shipments as the customer orders 1C exports (3.1: `Контейнер/Документ`)."""
        root = self._root()
        ids = {item.sku: item.id for item in self.items}
        for doc in self.data.documents_holdings("shipment"):
            lines = [line for line in doc.items if line.sku is not None]  # an empty tabular row is not exported
            if doc.bad_kind is not None or not all(line.sku in ids for line in lines) or doc.warehouse is None:
                continue
            document = self._sub(self._sub(root, "Контейнер"), "Документ")
            header = {
                "Ид": doc.id,
                "Номер": doc.number,
                "ПометкаУдаления": str(doc.deleted).lower(),
                "Дата": doc.date.date().isoformat(),
                "ХозОперация": "Заказ товара",
                "Роль": "Продавец",
                "Валюта": "RUB",
                "Курс": "1",
                "Сумма": self._number(sum((line.total or Decimal(0) for line in lines), Decimal(0))),
                "Время": doc.date.time().isoformat(timespec="seconds"),
            }
            for name, value in header.items():
                self._text(document, name, value)
            party = self._sub(self._sub(document, "Контрагенты"), "Контрагент")
            self._text(party, "Ид", str(uuid.uuid5(self.space, f"party:{doc.counterparty}")))
            self._text(party, "Наименование", doc.counterparty or "")
            self._text(party, "Роль", "Покупатель")
            warehouse = self._sub(self._sub(document, "Склады"), "Склад")
            self._text(warehouse, "Ид", self.model.ref("warehouse", doc.warehouse))
            self._text(warehouse, "Наименование", doc.warehouse)
            if doc.notes:
                self._text(document, "Комментарий", doc.notes)
            goods = self._sub(document, "Товары")
            for line in lines:
                good = self._sub(goods, "Товар")
                self._text(good, "Ид", ids[str(line.sku)])
                self._text(good, "Наименование", line.name or "")
                if line.unit_price is not None:
                    self._text(good, "ЦенаЗаЕдиницу", self._number(line.unit_price))
                self._text(good, "Количество", self._number(line.quantity))
                if line.total is not None:
                    self._text(good, "Сумма", self._number(line.total))
            requisite = self._sub(self._sub(document, "ЗначенияРеквизитов"), "ЗначениеРеквизита")
            self._text(requisite, "Наименование", "Проведен")
            self._text(requisite, "Значение", str(doc.posted).lower())
        return root

    def _groups(self, classifier: Any) -> None:
        groups = self._sub(classifier, "Группы")
        for folder in self._folders():
            group = self._sub(groups, "Группа")
            self._text(group, "Ид", folder["Ref_Key"])
            self._text(group, "Наименование", folder["Description"])

    def _price_types(self, parent: Any, names: dict[str, str]) -> None:
        types = self._sub(parent, "ТипыЦен")
        for type_id, name in names.items():
            price_type = self._sub(types, "ТипЦены")
            self._text(price_type, "Ид", type_id)
            self._text(price_type, "Наименование", name)
            self._text(price_type, "Валюта", "RUB")

    def _warehouses(self, parent: Any) -> None:
        warehouses = self._sub(parent, "Склады")
        for code in self.data.warehouses:
            warehouse = self._sub(warehouses, "Склад")
            self._text(warehouse, "Ид", self.model.ref("warehouse", code))
            self._text(warehouse, "Наименование", code)

    def _classifier(self, root: Any) -> Any:
        marks = {"СодержитТолькоИзменения": "false"} if self.package else {}  # as the 3.1 package files have it
        classifier = self._sub(root, "Классификатор", **marks)
        self._text(classifier, "Ид", self.catalog_id)
        self._text(classifier, "Наименование", f"Классификатор (Каталог товаров {self.catalog_id[:8].upper()})")
        self._owner(classifier)
        return classifier

    def offers_file(self) -> Any:
        root, package = self._package()
        if not self.package:  # a package declares them in its classifier, as УТ 11's 3.1 files do
            self._price_types(package, {self.price_type_id: PRICE_TYPE})
            self._warehouses(package)
        offers = self._sub(package, "Предложения")
        stock = self._stock()
        for item in self.items:
            offer = self._offer(offers, item)
            if self.version == "2.07":
                self._prices(offer, item)
                per_warehouse = stock.get(item.sku, {})
                self._text(offer, "Количество", self._number(sum(per_warehouse.values(), Decimal(0))))
                for code in self.data.warehouses:
                    quantity = self._number(per_warehouse.get(code, Decimal(0)))
                    self._sub(offer, "Склад", ИдСклада=self.model.ref("warehouse", code), КоличествоНаСкладе=quantity)
        return root

    def prices_file(self, changes_only: bool = False) -> Any:
        root, package = self._package(changes_only)
        offers = self._sub(package, "Предложения")
        for item in self.items:
            if item.price is not None:
                offer = self._sub(offers, "Предложение")
                self._text(offer, "Ид", item.id)
                if self.package:
                    self._price(
                        self._sub(offer, "Цены"),
                        item,
                        self.wholesale_type_id,
                        (item.price * WHOLESALE_SHARE).quantize(Decimal("0.01")),
                    )
                    self._price(offer.find(self._tag("Цены")), item, self.price_type_id, item.price)
                else:
                    self._prices(offer, item)
        return root

    def rests_file(self) -> Any:
        root, package = self._package()
        offers = self._sub(package, "Предложения")
        stock = self._stock()
        for item in self.items:
            offer = self._sub(offers, "Предложение")
            self._text(offer, "Ид", item.id)
            rests = self._sub(offer, "Остатки")
            for code in self.data.warehouses:
                warehouse = self._sub(self._sub(rests, "Остаток"), "Склад")
                self._text(warehouse, "Ид", self.model.ref("warehouse", code))
                self._text(warehouse, "Количество", self._number(stock.get(item.sku, {}).get(code, Decimal(0))))
        return root

    # --- parts

    def _root(self) -> Any:
        nsmap = {
            None: self.ns,
            "xs": "http://www.w3.org/2001/XMLSchema",
            "xsi": "http://www.w3.org/2001/XMLSchema-instance",
        }
        return etree.Element(
            self._tag("КоммерческаяИнформация"),
            nsmap=nsmap,
            ВерсияСхемы=self.version,
            ДатаФормирования=local_text(self.created),
        )

    def _package(self, changes_only: bool = False) -> tuple[Any, Any]:
        root = self._root()
        package = self._sub(root, "ПакетПредложений", СодержитТолькоИзменения=str(changes_only).lower())
        self._text(package, "Ид", f"{self.catalog_id}#")
        self._text(package, "Наименование", f"Пакет предложений (Каталог товаров {self.catalog_id[:8].upper()})")
        self._text(package, "ИдКаталога", self.catalog_id)
        self._text(package, "ИдКлассификатора", self.catalog_id)
        self._owner(package)
        return root, package

    def _owner(self, parent: Any) -> None:
        owner = self._sub(parent, "Владелец")
        self._text(owner, "Ид", self.owner_id)
        self._text(owner, "Наименование", OWNER[0])
        self._text(owner, "ПолноеНаименование", OWNER[0])
        self._text(owner, "ИНН", OWNER[1])
        self._text(owner, "КПП", OWNER[2])

    def _good(self, goods: Any, item: Item, parent: str) -> None:
        good = self._sub(goods, "Товар", Статус="Удален") if item.deleted else self._sub(goods, "Товар")
        self._text(good, "Ид", item.id)
        if self.package:  # the article is the offer's property, the unit a bare code
            self._text(good, "Наименование", item.name)
            self._unit_code(good, item.unit)
        else:
            self._text(good, "Артикул", item.sku)
            self._text(good, "Наименование", item.name)
            self._unit(good, item.unit)
        self._text(self._sub(good, "Группы"), "Ид", parent)
        details = self._sub(good, "ЗначенияРеквизитов")
        requisites = [
            ("ВидНоменклатуры", "Товар"),
            ("ТипНоменклатуры", "Товар"),
            ("Полное наименование", item.name),
            ("Код", item.code or ""),
        ]
        for name, value in requisites:
            detail = self._sub(details, "ЗначениеРеквизита")
            self._text(detail, "Наименование", name)
            self._text(detail, "Значение", value)
        rate = self._sub(self._sub(good, "СтавкиНалогов"), "СтавкаНалога")
        self._text(rate, "Наименование", "НДС")
        self._text(rate, "Ставка", "20")

    def _offer(self, offers: Any, item: Item) -> Any:
        offer = self._sub(offers, "Предложение")
        self._text(offer, "Ид", item.id)
        if self.package:
            self._text(offer, "ПометкаУдаления", str(item.deleted).lower())
            self._text(offer, "Наименование", item.name)
            self._unit_code(offer, item.unit)
            value = self._sub(self._sub(offer, "ЗначенияСвойств"), "ЗначенияСвойства")
            self._text(value, "Ид", self.article_id)
            self._text(value, "Значение", item.sku)
            return offer
        self._text(offer, "Артикул", item.sku)
        self._text(offer, "Наименование", item.name)
        self._unit(offer, item.unit)
        return offer

    def _prices(self, offer: Any, item: Item) -> None:
        if item.price is None:
            return
        self._price(self._sub(offer, "Цены"), item, self.price_type_id, item.price)

    def _price(self, prices: Any, item: Item, type_id: str, value: Decimal) -> None:
        price = self._sub(prices, "Цена")
        unit = OKEI.get(item.unit or "", ("796", "", "PCE"))[2]
        self._text(price, "Представление", f" {format(value, ',.2f').replace(',', ' ')} RUB за {unit}")
        self._text(price, "ИдТипаЦены", type_id)
        self._text(price, "ЦенаЗаЕдиницу", self._number(value))
        self._text(price, "Валюта", "RUB")
        self._text(price, "Единица", unit)
        self._text(price, "Коэффициент", "1")

    def _unit(self, parent: Any, unit: str | None) -> None:
        if unit is None:
            return
        code, full, short = OKEI.get(unit, ("796", unit, unit))
        code = f"{code} " if self.awkward else code
        base = self._sub(parent, "БазоваяЕдиница", Код=code, НаименованиеПолное=full, МеждународноеСокращение=short)
        base.text = unit

    def _unit_code(self, parent: Any, unit: str | None) -> None:
        """3.1: the bare code, padded as 1C pads it; the name is the classifier's `ЕдиницыИзмерения`."""
        if unit is not None:
            self._text(parent, "БазоваяЕдиница", f"{OKEI.get(unit, ('796', unit, unit))[0]} ")

    def _folders(self) -> Iterable[dict[str, Any]]:
        return [row for row in self.model.nomenclature() if row["IsFolder"]]

    def _stock(self) -> dict[str, dict[str, Decimal]]:
        stock: dict[str, dict[str, Decimal]] = {}
        for good in self.data.goods_holdings():
            if good.bad_kind is None and good.warehouse is not None:
                stock.setdefault(good.sku, {})[good.warehouse] = good.quantity
        return stock

    def _number(self, value: Decimal) -> str:
        text = plain_number(value)
        return text.replace(".", ",") if self.awkward else text

    # --- lxml

    def _tag(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    def _sub(self, parent: Any, name: str, **attributes: str) -> Any:
        return etree.SubElement(parent, self._tag(name), attributes)

    def _text(self, parent: Any, name: str, value: str) -> Any:
        element = self._sub(parent, name)
        element.text = value
        return element
