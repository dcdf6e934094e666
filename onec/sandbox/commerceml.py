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


class _Writer:
    def __init__(self, data: SandboxData, version: str, created: datetime, awkward: bool) -> None:
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

    # --- files

    def import_file(self) -> Any:
        root = self._root()
        classifier = self._sub(root, "Классификатор")
        self._text(classifier, "Ид", self.catalog_id)
        self._text(classifier, "Наименование", f"Классификатор (Каталог товаров {self.catalog_id[:8].upper()})")
        self._owner(classifier)
        groups = self._sub(classifier, "Группы")
        for folder in self._folders():
            group = self._sub(groups, "Группа")
            self._text(group, "Ид", folder["Ref_Key"])
            self._text(group, "Наименование", folder["Description"])
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

    def offers_file(self) -> Any:
        root, package = self._package()
        types = self._sub(package, "ТипыЦен")
        price_type = self._sub(types, "ТипЦены")
        self._text(price_type, "Ид", self.price_type_id)
        self._text(price_type, "Наименование", PRICE_TYPE)
        self._text(price_type, "Валюта", "RUB")
        warehouses = self._sub(package, "Склады")
        for code in self.data.warehouses:
            warehouse = self._sub(warehouses, "Склад")
            self._text(warehouse, "Ид", self.model.ref("warehouse", code))
            self._text(warehouse, "Наименование", code)
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

    def prices_file(self) -> Any:
        root, package = self._package()
        offers = self._sub(package, "Предложения")
        for item in self.items:
            if item.price is not None:
                offer = self._sub(offers, "Предложение")
                self._text(offer, "Ид", item.id)
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

    def _package(self) -> tuple[Any, Any]:
        root = self._root()
        package = self._sub(root, "ПакетПредложений", СодержитТолькоИзменения="false")
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
        self._text(offer, "Артикул", item.sku)
        self._text(offer, "Наименование", item.name)
        self._unit(offer, item.unit)
        return offer

    def _prices(self, offer: Any, item: Item) -> None:
        if item.price is None:
            return
        price = self._sub(self._sub(offer, "Цены"), "Цена")
        unit = OKEI.get(item.unit or "", ("796", "", "PCE"))[2]
        self._text(price, "Представление", f" {format(item.price, ',.2f').replace(',', ' ')} RUB за {unit}")
        self._text(price, "ИдТипаЦены", self.price_type_id)
        self._text(price, "ЦенаЗаЕдиницу", self._number(item.price))
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
