"""The sandbox base as 1C's standard OData interface shows it (§2.1): catalogs, registers, documents.

Why a model of its own: OData does not speak in skus and warehouse codes but in `…_Key` GUID references to
small catalogs, with money as doubles, `LineNumber` as a string and a `DataVersion` per object; a client has to
load the catalogs and join. This module turns the same truth the exchange service serves into exactly that, so a
test can check an OData reader against `SandboxData` and nothing else.

Rows are dicts of typed values (datetimes naive local, numbers float, references GUID strings) that the query
layer filters and sorts; the service turns them into JSON. Every GUID is stable: items and documents keep their
own ids, the small catalogs get name-based UUIDs, so repeated loads and different engines agree.

Bad records: goods rows without a sku are left out (1C could not hold them in a register); bad documents are
shown with their typed values (a missing sku is the empty reference, an unparseable quantity its true number).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from onec.sandbox import vocabulary as words
from onec.sandbox.data import Document, Item, SandboxData
from onec.schema import DOCUMENT_SLUGS

EMPTY_REF = "00000000-0000-0000-0000-000000000000"
Row = dict[str, Any]

DOCUMENT_NAMES: dict[str, str] = {
    "goods-receipt": "ПриходТовара",
    "shipment": "РасходТовара",
    "transfer": "ПеремещениеТовара",
    "adjustment-up": "ОприходованиеИзлишковТоваров",
    "adjustment-down": "СписаниеНедостачТоваров",
    "inventory": "ИнвентаризацияТовара",
}
TABULAR_SECTION = "Товары"
WAREHOUSES = "Catalog_Склады"
COUNTERPARTIES = "Catalog_Контрагенты"
UNITS = "Catalog_ЕдиницыИзмерения"
NOMENCLATURE = "Catalog_Номенклатура"
PRICES = "InformationRegister_ЦеныНоменклатуры"
STOCK = "AccumulationRegister_ТоварыНаСкладах"

_FOOD_FOLDER = "Продукты питания"
_HARDWARE_FOLDER = "Строительные и хозяйственные товары"
_FOOD_BASES = tuple(c.base for c in words.CATEGORIES if c.brands == words.FOOD_BRANDS)


@dataclass(frozen=True)
class EntitySet:
    """A published entity set: its rows, and which of them are keyed (`Ref_Key` addressable)."""

    name: str
    rows: Callable[[], list[Row]]
    keyed: bool = True


class ODataModel:
    """Entity sets over one `SandboxData`, built on demand (the caller caches per data revision)."""

    price_register: str | None = PRICES
    """The information register served with SliceLast(); None: the base publishes none."""
    stock_register: str = STOCK

    def __init__(self, data: SandboxData) -> None:
        self.data = data
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"onec-sandbox:{data.seed}")

    def entity_sets(self) -> dict[str, EntitySet]:
        sets = [
            EntitySet(WAREHOUSES, self.warehouses),
            EntitySet(COUNTERPARTIES, self.counterparties),
            EntitySet(UNITS, self.units),
            EntitySet(NOMENCLATURE, self.nomenclature),
        ]
        for slug in DOCUMENT_SLUGS:
            name = f"Document_{DOCUMENT_NAMES[slug]}"
            sets.append(EntitySet(name, bind_slug(self.documents, slug)))
            sets.append(EntitySet(f"{name}_{TABULAR_SECTION}", bind_slug(self.document_lines, slug), keyed=False))
        return {s.name: s for s in sets}

    # --- references

    def ref(self, kind: str, name: str | None) -> str:
        """The stable GUID of a small catalog's element (the empty reference for no name)."""
        return EMPTY_REF if not name else str(uuid.uuid5(self._namespace, f"{kind}:{name}"))

    def item_refs(self) -> dict[str, str]:
        return {item.sku: item.id for item in self.data.nomenclature()}

    # --- catalogs

    def warehouses(self) -> list[Row]:
        return [
            catalog_row(self.ref("warehouse", code), f"{index:09d}", code, version=1)
            for index, code in enumerate(self.data.warehouses, 1)
        ]

    def counterparties(self) -> list[Row]:
        names = sorted(set(words.SUPPLIERS) | set(words.CUSTOMERS) | self._used_counterparties())
        return [
            {**catalog_row(self.ref("counterparty", n), f"{i:09d}", n, version=1), "ИНН": ""}
            for i, n in enumerate(names, 1)
        ]

    def units(self) -> list[Row]:
        """The items' units; `Коэффициент` is base units per unit (§1.3: a line may name one), 1 for these."""
        names = sorted({item.unit for item in self.data.nomenclature() if item.unit})
        return [
            {**catalog_row(self.ref("unit", n), f"{i:04d}", n, version=1), "Коэффициент": 1.0}
            for i, n in enumerate(names, 1)
        ]

    def nomenclature(self) -> list[Row]:
        """Two folders, then one row per item (folder rows have null item fields)."""
        folders = [
            {
                **catalog_row(self.ref("folder", name), f"{i:011d}", name, version=1),
                "Parent_Key": EMPTY_REF,
                "IsFolder": True,
                "Артикул": None,
                "ЕдиницаИзмерения_Key": None,
            }
            for i, name in enumerate((_FOOD_FOLDER, _HARDWARE_FOLDER), 1)
        ]
        return folders + [self._item_row(item) for item in self.data.nomenclature()]

    def _item_row(self, item: Item) -> Row:
        folder = _FOOD_FOLDER if item.name.startswith(_FOOD_BASES) else _HARDWARE_FOLDER
        version = (item.code, item.name, item.unit, item.deleted, item.version)
        return {
            **catalog_row(item.id, item.code or "", item.name, version=version),
            "DeletionMark": item.deleted,
            "Parent_Key": self.ref("folder", folder),
            "IsFolder": False,
            "Артикул": item.sku,
            "ЕдиницаИзмерения_Key": self.ref("unit", item.unit),
        }

    # --- registers

    def prices(self) -> list[Row]:
        """InformationRegister_ЦеныНоменклатуры/SliceLast(): the current price per priced item."""
        period = datetime.combine(self.data.start, datetime.min.time())
        return [
            {"Period": period, "Номенклатура_Key": item.id, "Цена": float(item.price)}
            for item in self.data.nomenclature()
            if item.price is not None
        ]

    def balance(self, when: datetime | None) -> list[Row]:
        """AccumulationRegister_ТоварыНаСкладах/Balance(): quantity per (item, warehouse), zero balances absent;
        with `when`, the balance just before that local instant."""
        if when is None:
            quantities = {
                (g.sku, g.warehouse): g.quantity
                for g in self.data.goods_holdings()
                if g.bad_kind is None and g.warehouse is not None
            }
        else:
            quantities = self.data.balance_at(when)
        refs = self.item_refs()
        return [
            {
                "Номенклатура_Key": refs.get(sku, EMPTY_REF),
                "Склад_Key": self.ref("warehouse", warehouse),
                "КоличествоBalance": float(quantity),
            }
            for (sku, warehouse), quantity in sorted(quantities.items())
            if quantity != 0 and sku
        ]

    # --- documents

    def documents(self, slug: str) -> list[Row]:
        refs = self.item_refs()
        return [self._document_row(doc, refs) for doc in self.data.documents_holdings(slug)]

    def document_lines(self, slug: str) -> list[Row]:
        refs = self.item_refs()
        return [
            {"Ref_Key": doc.id, **line} for doc in self.data.documents_holdings(slug) for line in self._lines(doc, refs)
        ]

    def document_row(self, doc: Document) -> Row:
        return self._document_row(doc, self.item_refs())

    def _document_row(self, doc: Document, refs: dict[str, str]) -> Row:
        row: Row = {
            "Ref_Key": doc.id,
            "DataVersion": data_version(doc.id, doc.version, doc.posted, doc.deleted, doc.date),
            "DeletionMark": doc.deleted,
            "Number": doc.number,
            "Date": _naive(doc.date),
            "Posted": doc.posted,
        }
        if doc.doc_type == "transfer":
            row["СкладОтправитель_Key"] = self.ref("warehouse", doc.warehouse)
            row["СкладПолучатель_Key"] = self.ref("warehouse", doc.warehouse_to)
        else:
            row["Склад_Key"] = self.ref("warehouse", doc.warehouse)
        if doc.doc_type in ("goods-receipt", "shipment"):
            row["Контрагент_Key"] = self.ref("counterparty", doc.counterparty)
        row["Комментарий"] = doc.notes or ""
        row[TABULAR_SECTION] = self._lines(doc, refs)
        return row

    def _lines(self, doc: Document, refs: dict[str, str]) -> list[Row]:
        lines = []
        for line in doc.items:
            row: Row = {
                "LineNumber": str(line.line),
                "Номенклатура_Key": refs.get(line.sku, EMPTY_REF) if line.sku else EMPTY_REF,
                "Количество": float(line.quantity),
            }
            if line.unit_price is not None and line.total is not None:
                row["Цена"] = float(line.unit_price)
                row["Сумма"] = float(line.total)
            if doc.doc_type == "inventory":
                row["КоличествоУчет"] = float(line.book_quantity if line.book_quantity is not None else Decimal(0))
            lines.append(row)
        return lines

    def _used_counterparties(self) -> set[str]:
        return {
            doc.counterparty
            for slug in ("goods-receipt", "shipment")
            for doc in self.data.documents_holdings(slug)
            if doc.counterparty
        }


def data_version(*parts: object) -> str:
    """An opaque version like 1C's (`AAAAAgAAAAA=`-shaped): base64 of 8 bytes hashed from what changes."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return base64.b64encode(digest).decode()


def catalog_row(ref: str, code: str, description: str, version: object) -> Row:
    return {
        "Ref_Key": ref,
        "DataVersion": data_version(ref, version),
        "DeletionMark": False,
        "Code": code,
        "Description": description,
        "Predefined": False,
    }


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def bind_slug(build: Callable[[str], list[Row]], slug: str) -> Callable[[], list[Row]]:
    return lambda: build(slug)
