"""CommerceML 2.03–2.10 and 3.1 catalog, offer and order files as goods positions and orders (contract §3).

What lands, and why:
- A position is an offer (`Предложение`) at a warehouse: the goods table holds stock per (sku, warehouse), and
  stock lives in the offers (offers.xml; in 3.1 also prices.xml / rests.xml, merged by offer Ид).
- sku is the `Артикул` element of the offer, else of its good (import.xml); else the offer's property named
  «Артикул» (`ЗначенияСвойств`, the property's Ид resolved through the classifier's `Свойства`), else the good's;
  else the good's Ид. An article that belongs to the good (the element, the good's property, the Ид) is shared by
  the good's variants (offer Ид `goodsId#characteristicId`), so a variant's sku gets `#characteristicId` appended:
  two sizes of one boot are two stock positions and must not collide on the key. The offer's own property is the
  variant's own article (1C exports the characteristic's «Артикул» there), so it is the sku as it stands.
- unit is the unit's name: the `БазоваяЕдиница` text when it is a name (2.03–2.05), else the element's
  `НаименованиеПолное` / `НаименованиеКраткое` (2.07+), else the classifier's `ЕдиницыИзмерения` entry for the code
  (3.1 writes only the code, `<БазоваяЕдиница>796 </БазоваяЕдиница>`), else the code itself.
- warehouse is the warehouse's name from any `Склады` list of the set (or the remembered classifier), else its Ид.
  Stock per warehouse comes from `<Склад ИдСклада=… КоличествоНаСкладе=…/>` or `Склад`/`Остаток` child elements.
  An offer that gives only a total `Количество` lands as one position at the pseudo-warehouse TOTAL_WAREHOUSE:
  the quantity is real and must not be dropped, and a name no real warehouse has keeps per-warehouse sums honest.
- price is the offer's price of the chosen price type (`price_type`, a name or an Ид); by default the type named
  «Розничная» if the package declares one, else the first type it declares, else the offer's first price.
- A good of import.xml with no offer has no stock: it is still emitted, without quantity, so validation rejects
  it with the reason instead of it vanishing.
- Orders (`Документ`, in 3.1 inside `Контейнер`, `ХозОперация` «Заказ товара») are read by `read_orders`, not here:
  their `Товар` lines are not catalog goods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from lxml import etree

from onec.sources.xml_safety import XmlFileError, checked_stream, local_name, open_binary, root_name, safe_iterparse

TOTAL_WAREHOUSE = "(total)"
ROOT = "КоммерческаяИнформация"
DEFAULT_PRICE_TYPE = "Розничная"
ARTICLE = "Артикул"
ORDER_OPERATION = "Заказ товара"
_TAGS = tuple(
    f"{{*}}{name}"
    for name in (
        "Товар", "Предложение", "ТипЦены", "Склады", "Свойство", "ЕдиницаИзмерения", "Каталог", "ПакетПредложений",
    )
)  # fmt: skip
_FORMED = re.compile(r"""ДатаФормирования\s*=\s*["'](\d{4}-\d{2}-\d{2})""".encode())
_DOCUMENT_TAG = re.compile("<(?:[\\w.-]+:)?(?:Документ|Контейнер)[\\s>]".encode())
_DOCUMENT_TAG_1251 = re.compile("<(?:[\\w.-]+:)?(?:Документ|Контейнер)[\\s>]".encode("cp1251"))
_DELETED_STATUS = "удален"
_TRUE = "true"


class CommerceMLError(XmlFileError):
    """The files are not a CommerceML set this reader can land."""


class Part(StrEnum):
    """What a file of a package brings; a package is complete when the parts that belong together are there."""

    CLASSIFIER = "classifier"
    CATALOG = "catalog"
    OFFERS = "offers"
    PRICES = "prices"
    STOCK = "rests"
    ORDERS = "orders"


@dataclass
class Offer:
    """One offer as the set's files give it; each file adds what it carries (descriptions, prices, stock)."""

    id: str
    sku: str | None = None
    name: str | None = None
    unit: str | None = None
    deleted: bool = False
    properties: dict[str, str] = field(default_factory=dict)
    prices: dict[str, str] = field(default_factory=dict)
    total: str | None = None
    stock: dict[str, str] = field(default_factory=dict)
    described: bool = False

    @property
    def has_stock(self) -> bool:
        return bool(self.stock) or self.total is not None


@dataclass
class Reference:
    """The classifier's lookups: warehouses, price types, units and properties, each Ид → name. A package's later
    changes-only files refer to them without repeating them, so the package remembers them (`as_dict`)."""

    warehouses: dict[str, str] = field(default_factory=dict)
    price_types: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {lookup.name: dict(getattr(self, lookup.name)) for lookup in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        return cls(**{lookup.name: dict(data.get(lookup.name) or {}) for lookup in fields(cls)})


@dataclass
class CommerceMLSet:
    """The goods, offers and classifier read from one or more CommerceML files."""

    goods: dict[str, dict[str, Any]] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    reference: Reference = field(default_factory=Reference)
    declared_price_types: list[str] = field(default_factory=list)
    parts: set[Part] = field(default_factory=set)
    changes_only: bool = False
    formed_offers: date | None = None
    formed_any: date | None = None
    _offer_elements: int = 0

    @property
    def warehouses(self) -> dict[str, str]:
        """Warehouse Ид → name (the classifier's, or the remembered one's)."""
        return self.reference.warehouses

    @property
    def formed(self) -> date | None:
        """The latest `ДатаФормирования` of the offer files (the stock's date), else of any file."""
        return self.formed_offers or self.formed_any

    def read(self, path: Path) -> None:
        """Add one file of the set (classifier, import, offers, prices or rests; any version, any namespace)."""
        if holds_documents(path):
            raise CommerceMLError(f"{path.name}: a CommerceML document file (orders); read it with read_orders")
        self._offer_elements = 0
        with open_binary(path) as handle:
            stream, root = checked_stream(handle)
            if root_name(root) != ROOT:
                raise CommerceMLError(f"{path.name}: not CommerceML (the root element is not <{ROOT}>)")
            for element in safe_iterparse(stream, _TAGS):
                self._take(local_name(element.tag), element)
        found = _FORMED.search(root)
        if found is not None:
            day = date.fromisoformat(found.group(1).decode())
            self.formed_any = max(day, self.formed_any or day)
            if self._offer_elements:
                self.formed_offers = max(day, self.formed_offers or day)

    def price_type(self, wanted: str | None) -> str | None:
        """The Ид of the price type to land: `wanted` (a name or an Ид), else the default (module docstring)."""
        types = self.reference.price_types
        if wanted:
            for type_id, name in types.items():
                if wanted in (type_id, name) or wanted.casefold() == name.casefold():
                    return type_id
            if types:
                listed = ", ".join(f"{name} ({type_id})" for type_id, name in types.items())
                raise CommerceMLError(f"price type {wanted!r} is not in the package; it declares: {listed}")
            return wanted
        for type_id, name in types.items():
            if name.casefold() == DEFAULT_PRICE_TYPE.casefold():
                return type_id
        declared = self.declared_price_types or list(types)
        return declared[0] if declared else None

    def price(self, offer: Offer, price_type: str | None) -> str | None:
        """The offer's price of `price_type`; when the package declares no price type at all, its first price."""
        if price_type is not None:
            return offer.prices.get(price_type)
        return next(iter(offer.prices.values()), None)

    def describe(self, offer: Offer) -> dict[str, Any]:
        """The offer's descriptive fields (sku, name, unit, code, deleted), from the offer and its good."""
        good_id, _, variant = offer.id.partition("#")
        good = self.goods.get(good_id, {})
        return {
            "id": offer.id,
            "code": good.get("code"),
            "sku": self._sku(offer, good, good_id, variant),
            "name": offer.name or good.get("name"),
            "unit": self._unit_name(offer.unit or good.get("unit")),
            "deleted": bool(good.get("deleted")) or offer.deleted,
        }

    def stock(self, offer: Offer) -> dict[str, str | None]:
        """Quantity per warehouse name (TOTAL_WAREHOUSE when the offer gives only a total)."""
        per_id: dict[str, str | None] = dict(offer.stock) or {TOTAL_WAREHOUSE: offer.total}
        return {self.warehouses.get(warehouse_id, warehouse_id): q for warehouse_id, q in per_id.items()}

    def records(self, price_type: str | None = None) -> Iterator[dict[str, Any]]:
        """Contract-shaped goods records (§1.3), one per offer and warehouse, for a complete snapshot."""
        chosen = self.price_type(price_type)
        offered: set[str] = set()
        for offer in self.offers.values():
            offered.add(offer.id.partition("#")[0])
            base = {**self.describe(offer), "price": self.price(offer, chosen)}
            for warehouse, quantity in self.stock(offer).items():
                yield {**base, "warehouse": warehouse, "quantity": quantity}
        for good_id in self.goods:
            if good_id not in offered:
                described = self.describe(Offer(good_id))
                yield {**described, "price": None, "warehouse": TOTAL_WAREHOUSE, "quantity": None}

    def sku_of(self, offer_id: str) -> str | None:
        """The sku the set gives an offer (or a good) Ид, if the set knows it."""
        offer = self.offers.get(offer_id)
        if offer is None and offer_id.partition("#")[0] not in self.goods:
            return None
        return str(self.describe(offer or Offer(offer_id))["sku"])

    # --- sku

    def _sku(self, offer: Offer, good: Mapping[str, Any], good_id: str, variant: str) -> str:
        shared = offer.sku or good.get("sku")
        if not shared:
            own = self._article(offer.properties)
            if own:
                return own
            shared = self._article(good.get("properties") or {}) or good_id
        return f"{shared}#{variant}" if variant else shared

    def _article(self, values: Mapping[str, str]) -> str | None:
        for property_id, value in values.items():
            name = self.reference.properties.get(property_id, property_id)
            if name.strip().casefold() == ARTICLE.casefold():
                return value
        return None

    # --- elements

    def _take(self, kind: str, element: etree._Element) -> None:
        if kind == "Товар":
            good = _good(element, self._unit)
            self.goods[good["id"]] = good
            self.parts.add(Part.CATALOG)
        elif kind == "Предложение":
            self._offer(element)
        elif kind == "ТипЦены":
            price_type = _child_text(element, "Ид")
            if price_type:
                self.reference.price_types[price_type] = _child_text(element, "Наименование") or price_type
                if price_type not in self.declared_price_types:
                    self.declared_price_types.append(price_type)
                self.parts.add(Part.CLASSIFIER)
        elif kind == "Склады":
            for warehouse in _children(element, "Склад"):
                warehouse_id = _child_text(warehouse, "Ид")
                if warehouse_id:
                    self.warehouses[warehouse_id] = _child_text(warehouse, "Наименование") or warehouse_id
            self.parts.add(Part.CLASSIFIER)
        elif kind == "Свойство":
            property_id, name = _child_text(element, "Ид"), _child_text(element, "Наименование")
            if property_id and name:
                self.reference.properties[property_id] = name
                self.parts.add(Part.CLASSIFIER)
        elif kind == "ЕдиницаИзмерения":
            self._unit_entry(element)
        elif (element.get("СодержитТолькоИзменения") or "").strip().lower() == _TRUE:
            self.changes_only = True  # Каталог, ПакетПредложений

    def _unit_entry(self, element: etree._Element) -> None:
        code = _child_text(element, "Код") or _child_text(element, "Ид")
        name = _child_text(element, "НаименованиеКраткое") or _child_text(element, "НаименованиеПолное")
        if code and name:
            self.reference.units[code] = name
            self.parts.add(Part.CLASSIFIER)

    def _offer(self, element: etree._Element) -> None:
        offer_id = _child_text(element, "Ид")
        if not offer_id:
            raise CommerceMLError(f"an offer at line {element.sourceline} has no Ид")
        offer = self.offers.setdefault(offer_id, Offer(offer_id))
        self._offer_elements += 1
        described = {tag: _child_text(element, tag) for tag in ("Артикул", "Наименование")}
        unit = _child(element, "БазоваяЕдиница")
        properties = _property_values(element)
        if any(described.values()) or unit is not None or properties:
            offer.described = True
            self.parts.add(Part.OFFERS)
        offer.sku = described["Артикул"] or offer.sku
        offer.name = described["Наименование"] or offer.name
        offer.unit = self._unit(unit) or offer.unit
        offer.properties.update(properties)
        offer.deleted = offer.deleted or _deleted(element)
        for price in _descendants(element, "Цена"):
            price_type = _child_text(price, "ИдТипаЦены") or ""
            value = _child_text(price, "ЦенаЗаЕдиницу")
            if value is not None:
                offer.prices[price_type] = value
                self.parts.add(Part.PRICES)
        offer.total = _child_text(element, "Количество") or offer.total
        for warehouse in _descendants(element, "Склад"):
            warehouse_id = warehouse.get("ИдСклада") or _child_text(warehouse, "Ид")
            quantity = warehouse.get("КоличествоНаСкладе") or _child_text(warehouse, "Количество")
            if warehouse_id and quantity is not None:
                offer.stock[warehouse_id] = quantity
        if offer.has_stock:
            self.parts.add(Part.STOCK)

    def _unit(self, element: etree._Element | None) -> str | None:
        """The unit's name (module docstring): a name in the text, else the element's own names, else the code
        (`_unit_name` resolves it once the whole set is read)."""
        if element is None:
            return None
        text = (element.text or "").strip()
        code = (element.get("Код") or "").strip() or (text if text.isdigit() else "")
        if text and not text.isdigit():
            return text
        names: tuple[str | None, ...] = (element.get("НаименованиеПолное"), element.get("НаименованиеКраткое"))
        for candidate in names:
            if candidate and candidate.strip():
                return candidate.strip()
        return code or None

    def _unit_name(self, unit: str | None) -> str | None:
        """A bare unit code resolved through the classifier's units, which may come in a later file of the set."""
        if unit is None or not unit.isdigit():
            return unit
        return next((name.strip() for code, name in self.reference.units.items() if code.strip() == unit), unit)


def read_set(paths: Iterable[Path], reference: Reference | None = None) -> CommerceMLSet:
    """Read every file of a set; the order does not matter. `reference` is the classifier remembered from
    earlier packages (the set's own classifier wins)."""
    found = CommerceMLSet(reference=Reference.from_dict((reference or Reference()).as_dict()))
    for path in paths:
        found.read(path)
    if not found.offers:
        raise CommerceMLError(
            "no offers in these CommerceML files: stock comes from offers.xml (or rests.xml); load it with import.xml"
        )
    return found


def holds_documents(path: Path) -> bool:
    """Whether a CommerceML file holds documents (orders): told from its first bytes, before parsing, because
    a document's `Товар` lines must not be read as catalog goods."""
    with open_binary(path) as handle:
        head = handle.read(256 * 1024)
    return bool(_DOCUMENT_TAG.search(head) or _DOCUMENT_TAG_1251.search(head))


def read_orders(path: Path, sku_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The orders of a document file as contract-shaped document records (§1.3, type `order`).

    Header: `Ид`, `Номер` (the number the order was created with; 1C adds its own as `Номер1С`), `Дата` + `Время`,
    the buyer (`Контрагент` of role «Покупатель», else the first; its name, else its Ид: a site's anonymous buyer
    has only that), the first `Склад` if any, `Комментарий`,
    `ПометкаУдаления`; posted when the requisite «Проведен» says true (an order from a site has none: a draft).
    Lines: sku from `sku_of(Ид)` (the catalog's sku of the offer: the same position as its stock), else the line's
    `Артикул`, else the `Ид`; the price is
    `ЦенаЗаЕдиницу` (2.03–2.08) or `Цена` (2.09+). A document of another operation is refused by name.
    """
    orders = []
    with open_binary(path) as handle:
        stream, root = checked_stream(handle)
        if root_name(root) != ROOT:
            raise CommerceMLError(f"{path.name}: not CommerceML (the root element is not <{ROOT}>)")
        for element in safe_iterparse(stream, ("{*}Документ",)):
            operation = _child_text(element, "ХозОперация")
            if operation is not None and operation.casefold() != ORDER_OPERATION.casefold():
                raise CommerceMLError(
                    f"{path.name}: document {_child_text(element, 'Номер')!r} at line {element.sourceline} is"
                    f" «{operation}»; only orders («{ORDER_OPERATION}») are landed"
                )
            orders.append(_order(element, sku_of))
    return orders


def _order(element: etree._Element, sku_of: Callable[[str], str | None]) -> dict[str, Any]:
    day, time_of_day = _child_text(element, "Дата"), _child_text(element, "Время")
    requisites = {
        (_child_text(r, "Наименование") or "").casefold(): _child_text(r, "Значение")
        for r in _grandchildren(element, "ЗначенияРеквизитов", "ЗначениеРеквизита")
    }
    posted = (requisites.get("проведен") or "").lower() == _TRUE
    warehouse = next((_child_text(w, "Наименование") for w in _grandchildren(element, "Склады", "Склад")), None)
    return {
        "id": _child_text(element, "Ид"),
        "number": _child_text(element, "Номер"),
        "date": f"{day}T{time_of_day or '00:00:00'}" if day else None,
        "status": "posted" if posted else "draft",
        "posted": posted,
        "customer": _buyer(element),
        "warehouse": warehouse,
        "notes": _child_text(element, "Комментарий"),
        "deleted": _deleted(element),
        "items": [
            _order_line(number, line, sku_of)
            for number, line in enumerate(_grandchildren(element, "Товары", "Товар"), start=1)
        ],
    }


def _buyer(document: etree._Element) -> str | None:
    parties = list(_grandchildren(document, "Контрагенты", "Контрагент"))
    buyers = [p for p in parties if (_child_text(p, "Роль") or "").casefold() == "покупатель"] or parties
    if not buyers:
        return None
    names = (_child_text(buyers[0], tag) for tag in ("Наименование", "ПолноеНаименование", "Ид"))
    return next((name for name in names if name), None)


def _order_line(number: int, line: etree._Element, sku_of: Callable[[str], str | None]) -> dict[str, Any]:
    line_id = _child_text(line, "Ид")
    return {
        "line": number,
        "sku": (sku_of(line_id) if line_id else None) or _child_text(line, "Артикул") or line_id,
        "name": _child_text(line, "Наименование"),
        "quantity": _child_text(line, "Количество"),
        "unit_price": _child_text(line, "ЦенаЗаЕдиницу") or _child_text(line, "Цена"),
        "total": _child_text(line, "Сумма"),
    }


def _good(element: etree._Element, unit: Callable[[etree._Element | None], str | None]) -> dict[str, Any]:
    good_id = _child_text(element, "Ид")
    if not good_id:
        raise CommerceMLError(f"a good at line {element.sourceline} has no Ид")
    return {
        "id": good_id,
        "code": _child_text(element, "Код"),
        "sku": _child_text(element, "Артикул"),
        "name": _child_text(element, "Наименование"),
        "unit": unit(_child(element, "БазоваяЕдиница")),
        "properties": _property_values(element),
        "deleted": _deleted(element),
    }


def _deleted(element: etree._Element) -> bool:
    status = (element.get("Статус") or _child_text(element, "Статус") or "").lower()
    return status == _DELETED_STATUS or (_child_text(element, "ПометкаУдаления") or "").lower() == _TRUE


def _property_values(element: etree._Element) -> dict[str, str]:
    """`ЗначенияСвойств/ЗначенияСвойства` of a good or an offer: property Ид → its first non-empty value."""
    values = {}
    for value in _grandchildren(element, "ЗначенияСвойств", "ЗначенияСвойства"):
        property_id = _child_text(value, "Ид")
        text = next((t for t in (_text(v) for v in _children(value, "Значение")) if t), None)
        if property_id and text:
            values[property_id] = text
    return values


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if local_name(child.tag) == name)


def _grandchildren(element: etree._Element, middle: str, name: str) -> Iterator[etree._Element]:
    return (child for group in _children(element, middle) for child in _children(group, name))


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next(_children(element, name), None)


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _child_text(element: etree._Element, name: str) -> str | None:
    return _text(_child(element, name))


def _descendants(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (node for node in element.iter() if local_name(node.tag) == name and node is not element)
