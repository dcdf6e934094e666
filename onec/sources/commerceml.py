"""CommerceML 2.03–2.10 and 3.1 catalog and offer files as goods positions (contract §3).

What lands, and why:
- A position is an offer (`Предложение`) at a warehouse: the goods table holds stock per (sku, warehouse), and
  stock lives in the offers (offers.xml; in 3.1 also prices.xml / rests.xml, merged by offer Ид).
- sku is the offer's `Артикул`, else its good's (import.xml), else the good's Ид. A variant (offer Ид
  `goodsId#characteristicId`) is a position of its own, so its sku gets `#characteristicId` appended: two sizes
  of one boot share the Артикул but are two stock positions, and must not collide on the key.
- warehouse is the warehouse's name from any `Склады` list in the set, else its Ид. Stock per warehouse comes
  from `<Склад ИдСклада=… КоличествоНаСкладе=…/>` or `Склад`/`Остаток` child elements. An offer that gives only a
  total `Количество` lands as one position at the pseudo-warehouse TOTAL_WAREHOUSE: the quantity is real and
  must not be dropped, and a name no real warehouse has keeps per-warehouse sums honest.
- price is the offer's price of the first price type the package declares (the default one), else its first.
- A good of import.xml with no offer has no stock: it is still emitted, without quantity, so validation rejects
  it with the reason instead of it vanishing. Order documents (`Документ`) are not goods: they are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

from onec.sources.xml_safety import XmlFileError, checked_stream, local_name, open_binary, root_name, safe_iterparse

TOTAL_WAREHOUSE = "(total)"
ROOT = "КоммерческаяИнформация"
_TAGS = tuple(f"{{*}}{name}" for name in ("Товар", "Предложение", "ТипЦены", "Склады", "Документ"))
_FORMED = re.compile(r"""ДатаФормирования\s*=\s*["'](\d{4}-\d{2}-\d{2})""".encode())
_DELETED_STATUS = "удален"
_CHANGES_ONLY = "СодержитТолькоИзменения"


class CommerceMLError(XmlFileError):
    """The files are not a CommerceML catalog/offers set this reader can land."""


@dataclass
class _Offer:
    id: str
    sku: str | None = None
    name: str | None = None
    unit: str | None = None
    prices: dict[str, str] = field(default_factory=dict)
    total: str | None = None
    stock: dict[str, str] = field(default_factory=dict)


@dataclass
class CommerceMLSet:
    """The goods, offers, price types and warehouses read from one or more CommerceML files."""

    goods: dict[str, dict[str, Any]] = field(default_factory=dict)
    offers: dict[str, _Offer] = field(default_factory=dict)
    price_types: list[str] = field(default_factory=list)
    warehouses: dict[str, str] = field(default_factory=dict)
    formed_offers: date | None = None
    formed_any: date | None = None
    changes_only: bool = False
    """Some file of the set says `СодержитТолькоИзменения="true"`: it lists changed positions only."""

    @property
    def complete(self) -> bool:
        """Whether the set is every position 1C has: a catalog and its offers, none of them changes only. A lone
        offers, prices or rests file, or a changes-only package, is a part to merge, not a snapshot."""
        return bool(self.goods) and bool(self.offers) and not self.changes_only

    @property
    def formed(self) -> date | None:
        """The latest `ДатаФормирования` of the offer files (the stock's date), else of any file."""
        return self.formed_offers or self.formed_any

    def read(self, path: Path) -> None:
        """Add one file of the set (import, offers, prices or rests; any version, any namespace)."""
        with open_binary(path) as handle:
            stream, root = checked_stream(handle)
            if root_name(root) != ROOT:
                raise CommerceMLError(f"{path.name}: not CommerceML (the root element is not <{ROOT}>)")
            has_offers = has_positions = False
            for element in safe_iterparse(stream, _TAGS):
                kind = local_name(element.tag)
                if kind == "Документ":
                    raise CommerceMLError(
                        f"{path.name}: a CommerceML document file (orders); only catalog and offer files are loaded"
                    )
                if kind in ("Товар", "Предложение") and not has_positions:
                    has_positions = True
                    self.changes_only |= _in_changes_only_package(element)
                has_offers |= kind == "Предложение"
                self._take(kind, element)
        found = _FORMED.search(root)
        if found is not None:
            day = date.fromisoformat(found.group(1).decode())
            self.formed_any = max(day, self.formed_any or day)
            if has_offers:
                self.formed_offers = max(day, self.formed_offers or day)

    def records(self) -> Iterator[dict[str, Any]]:
        """Contract-shaped goods records (§1.3), one per offer and warehouse."""
        default_price = self.price_types[0] if self.price_types else None
        offered: set[str] = set()
        for offer in self.offers.values():
            good_id, _, variant = offer.id.partition("#")
            offered.add(good_id)
            good = self.goods.get(good_id, {})
            sku = offer.sku or good.get("sku") or good_id
            base = {
                "id": offer.id,
                "code": good.get("code"),
                "sku": f"{sku}#{variant}" if variant else sku,
                "name": offer.name or good.get("name"),
                "unit": offer.unit or good.get("unit"),
                "price": offer.prices.get(default_price or "") or next(iter(offer.prices.values()), None),
                "deleted": good.get("deleted", False),
            }
            stock: dict[str, str | None] = dict(offer.stock) or {TOTAL_WAREHOUSE: offer.total}
            for warehouse_id, quantity in stock.items():
                yield {**base, "warehouse": self.warehouses.get(warehouse_id, warehouse_id), "quantity": quantity}
        for good_id, good in self.goods.items():
            if good_id not in offered:
                yield {**good, "warehouse": TOTAL_WAREHOUSE, "quantity": None}

    # --- elements

    def _take(self, kind: str, element: etree._Element) -> None:
        if kind == "Товар":
            good = _good(element)
            self.goods[good["id"]] = good
        elif kind == "Предложение":
            self._offer(element)
        elif kind == "ТипЦены":
            price_type = _child_text(element, "Ид")
            if price_type and price_type not in self.price_types:
                self.price_types.append(price_type)
        elif kind == "Склады":
            for warehouse in _children(element, "Склад"):
                warehouse_id = _child_text(warehouse, "Ид")
                if warehouse_id:
                    self.warehouses[warehouse_id] = _child_text(warehouse, "Наименование") or warehouse_id

    def _offer(self, element: etree._Element) -> None:
        offer_id = _child_text(element, "Ид")
        if not offer_id:
            raise CommerceMLError(f"an offer at line {element.sourceline} has no Ид")
        offer = self.offers.setdefault(offer_id, _Offer(offer_id))
        offer.sku = _child_text(element, "Артикул") or offer.sku
        offer.name = _child_text(element, "Наименование") or offer.name
        offer.unit = _unit(_child(element, "БазоваяЕдиница")) or offer.unit
        for price in _descendants(element, "Цена"):
            price_type = _child_text(price, "ИдТипаЦены") or ""
            value = _child_text(price, "ЦенаЗаЕдиницу")
            if value is not None:
                offer.prices.setdefault(price_type, value)
        offer.total = _child_text(element, "Количество") or offer.total
        for warehouse in _descendants(element, "Склад"):
            warehouse_id = warehouse.get("ИдСклада") or _child_text(warehouse, "Ид")
            quantity = warehouse.get("КоличествоНаСкладе") or _child_text(warehouse, "Количество")
            if warehouse_id and quantity is not None:
                offer.stock[warehouse_id] = quantity


def read_set(paths: Iterable[Path]) -> CommerceMLSet:
    """Read every file of a set; the order does not matter."""
    found = CommerceMLSet()
    for path in paths:
        found.read(path)
    if not found.offers:
        raise CommerceMLError(
            "no offers in these CommerceML files: stock comes from offers.xml (or rests.xml); load it with import.xml"
        )
    return found


def _in_changes_only_package(element: etree._Element) -> bool:
    """Whether the catalog or offers package holding this position says it lists changes only (an attribute
    since 2.04, a child element before; the package's attributes and earlier children are parsed already)."""
    for package in element.iterancestors():
        flag = package.get(_CHANGES_ONLY) or _child_text(package, _CHANGES_ONLY)
        if flag is not None:
            return flag.strip().lower() == "true"
    return False


def _good(element: etree._Element) -> dict[str, Any]:
    good_id = _child_text(element, "Ид")
    if not good_id:
        raise CommerceMLError(f"a good at line {element.sourceline} has no Ид")
    status = (element.get("Статус") or _child_text(element, "Статус") or "").lower()
    deletion_mark = (_child_text(element, "ПометкаУдаления") or "").lower() == "true"
    return {
        "id": good_id,
        "code": _child_text(element, "Код"),
        "sku": _child_text(element, "Артикул") or good_id,
        "name": _child_text(element, "Наименование"),
        "unit": _unit(_child(element, "БазоваяЕдиница")),
        "deleted": status == _DELETED_STATUS or deletion_mark,
    }


def _unit(element: etree._Element | None) -> str | None:
    """The unit's name: its text (2.03–2.05), else the full name, short name or code attribute (2.07+)."""
    if element is None:
        return None
    text = (element.text or "").strip()
    for candidate in (text, element.get("НаименованиеПолное"), element.get("НаименованиеКраткое"), element.get("Код")):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if local_name(child.tag) == name)


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next(_children(element, name), None)


def _child_text(element: etree._Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _descendants(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (node for node in element.iter() if local_name(node.tag) == name and node is not element)
