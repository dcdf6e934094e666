"""The sandbox base as a 1C:Управление торговлей 11 base publishes it over OData: the "real configuration" mode.

Why a mode of its own: the contract's §2.1 model is a tidy default; a base of a real configuration differs in
ways that broke the client on real data (contract §1.3, "What real bases hold"). This mode serves the same
`SandboxData` the way УТ 11 publishes it:
- **no price register**: `InformationRegister_ЦеныНоменклатуры` is absent from the service document, `$metadata`
  and every path (not published, or not within the exchange user's rights: 1C then answers 404);
- **units and packaging in one catalog**, `Catalog_УпаковкиЕдиницыИзмерения`: base units (`Числитель` =
  `Знаменатель` = 1) and packs of 2, 5 and 10 base units (base units per pack = `Числитель` / `Знаменатель`);
  a line names its pack in `Упаковка_Key` (the empty reference: the base unit), its quantity in packs in
  `КоличествоУпаковок`, and the same in base units in `Количество`; `Цена` is per pack, `Сумма` the line's;
- **lines without prices**: transfers, write-offs and stock-taking carry quantities only, and so does the
  warehouse order `Document_ПриходныйОрдерНаТовары` published beside each receipt (same number and lines);
- **operations without a counterparty** (the base's opening-balance receipts): `Контрагент_Key` the empty
  reference, `ХозяйственнаяОперация` `ВводОстатков`;
- **empty tabular rows** the base holds: the empty item reference, quantity 0, and no pack;
- **the stock register's resource is `ВНаличии`** (Balance() gives `ВНаличииBalance`), with `Характеристика_Key`.

Object and attribute names follow 1C's published metadata of УТ 11; `onec/odata_models/ut11.toml` (the client's
model of the same configuration) says which of them are documented and which are assumptions. Writes are not
served in this mode (the exchange service's writer speaks the §2.1 names only): POSTs get 405.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from onec.sandbox.data import Document, Line
from onec.sandbox.odata_model import (
    COUNTERPARTIES,
    EMPTY_REF,
    NOMENCLATURE,
    WAREHOUSES,
    EntitySet,
    ODataModel,
    Row,
    bind_slug,
    catalog_row,
    data_version,
)
from onec.schema import DOCUMENT_SLUGS

UT11_DOCUMENTS: dict[str, str] = {
    "goods-receipt": "ПриобретениеТоваровУслуг",
    "shipment": "РеализацияТоваровУслуг",
    "transfer": "ПеремещениеТоваров",
    "adjustment-up": "ОприходованиеИзлишковТоваров",
    "adjustment-down": "СписаниеНедостачТоваров",
    "inventory": "ПересчетТоваров",
}
WAREHOUSE_ORDER = "Document_ПриходныйОрдерНаТовары"
"""The receiving warehouse's order beside each receipt: quantities only, no counterparty, no prices."""
PACKAGES = "Catalog_УпаковкиЕдиницыИзмерения"
UT11_STOCK = "AccumulationRegister_ТоварыНаСкладах"
PRICED = frozenset({"goods-receipt", "shipment", "adjustment-up"})
"""Types whose lines carry `Цена`/`Сумма` in this mode; the others carry quantities only."""
PACK_SIZES = (10, 5, 2)
"""Base units per pack, largest first: a line whose quantity divides by one is written in that pack."""
TABULAR_SECTION = "Товары"


class Ut11Model(ODataModel):
    """Entity sets of a УТ 11 base over one `SandboxData` (see the module docstring)."""

    price_register = None
    stock_register = UT11_STOCK

    def entity_sets(self) -> dict[str, EntitySet]:
        sets = [
            EntitySet(WAREHOUSES, self.warehouses),
            EntitySet(COUNTERPARTIES, self.counterparties),
            EntitySet(PACKAGES, self.packages),
            EntitySet(NOMENCLATURE, self.nomenclature),
            EntitySet(WAREHOUSE_ORDER, self.warehouse_orders),
            EntitySet(f"{WAREHOUSE_ORDER}_{TABULAR_SECTION}", self._order_lines, keyed=False),
        ]
        for slug in DOCUMENT_SLUGS:
            name = f"Document_{UT11_DOCUMENTS[slug]}"
            sets.append(EntitySet(name, bind_slug(self.documents, slug)))
            sets.append(EntitySet(f"{name}_{TABULAR_SECTION}", bind_slug(self.document_lines, slug), keyed=False))
        return {s.name: s for s in sets}

    # --- catalogs

    def packages(self) -> list[Row]:
        """Each base unit (coefficient 1) and its packs of PACK_SIZES base units."""
        rows: list[Row] = []
        for index, unit in enumerate(self._base_units(), 1):
            rows.append(self._package(self.ref("unit", unit), f"{index:09d}", unit, unit, 1))
            for size in PACK_SIZES:
                code = f"{index:06d}{size:03d}"
                rows.append(self._package(self._pack_ref(unit, size), code, f"упак ({size} {unit})", unit, size))
        return rows

    def balance(self, when: Any) -> list[Row]:
        """`ВНаличииBalance` per (item, characteristic, warehouse); zero balances absent, as in §2.1's."""
        return [
            {
                "Номенклатура_Key": row["Номенклатура_Key"],
                "Характеристика_Key": EMPTY_REF,
                "Склад_Key": row["Склад_Key"],
                "ВНаличииBalance": row["КоличествоBalance"],
            }
            for row in super().balance(when)
        ]

    # --- documents

    def _document_row(self, doc: Document, refs: dict[str, str]) -> Row:
        row = super()._document_row(doc, refs)
        if doc.doc_type == "goods-receipt":
            row["ХозяйственнаяОперация"] = "ЗакупкаУПоставщика" if doc.counterparty else "ВводОстатков"
        return row

    def _lines(self, doc: Document, refs: dict[str, str]) -> list[Row]:
        return self._ut11_lines(doc, refs, priced=doc.doc_type in PRICED)

    def warehouse_orders(self) -> list[Row]:
        """A receiving order per receipt: its own reference, the receipt's number, date and lines, no prices."""
        refs = self.item_refs()
        return [self._order_row(doc, refs) for doc in self.data.documents_holdings("goods-receipt")]

    def _order_lines(self) -> list[Row]:
        return [{"Ref_Key": row["Ref_Key"], **line} for row in self.warehouse_orders() for line in row[TABULAR_SECTION]]

    def _order_row(self, doc: Document, refs: dict[str, str]) -> Row:
        ref = str(uuid.uuid5(uuid.UUID(doc.id), "ПриходныйОрдерНаТовары"))
        return {
            "Ref_Key": ref,
            "DataVersion": data_version(ref, doc.version, doc.posted, doc.deleted, doc.date),
            "DeletionMark": doc.deleted,
            "Number": doc.number,
            "Date": doc.date.replace(tzinfo=None),
            "Posted": doc.posted,
            "Склад_Key": self.ref("warehouse", doc.warehouse),
            "Комментарий": doc.notes or "",
            TABULAR_SECTION: self._ut11_lines(doc, refs, priced=False),
        }

    def _ut11_lines(self, doc: Document, refs: dict[str, str], *, priced: bool) -> list[Row]:
        units = {item.sku: item.unit for item in self.data.nomenclature()}
        return [self._line(line, refs, units.get(line.sku or ""), doc.doc_type, priced) for line in doc.items]

    def _line(self, line: Line, refs: dict[str, str], unit: str | None, slug: str, priced: bool) -> Row:
        """One row of `Товары`; an empty row (no item) has the empty reference and no pack."""
        size = _pack_size(line.quantity) if unit and line.sku else None
        row: Row = {
            "LineNumber": str(line.line),
            "Номенклатура_Key": refs.get(line.sku, EMPTY_REF) if line.sku else EMPTY_REF,
            "Характеристика_Key": EMPTY_REF,
            "Упаковка_Key": self._pack_ref(unit, size) if unit and size else EMPTY_REF,
            "КоличествоУпаковок": float(line.quantity / size) if size else float(line.quantity),
        }
        if slug == "inventory":
            book = line.book_quantity if line.book_quantity is not None else Decimal(0)
            row |= {"КоличествоФакт": float(line.quantity), "Количество": float(book)}
        else:
            row["Количество"] = float(line.quantity)
        if priced:
            price, total = line.unit_price or Decimal(0), line.total or Decimal(0)
            row |= {"Цена": float(price * (size or 1)), "Сумма": float(total)}
        return row

    # --- helpers

    def _base_units(self) -> list[str]:
        return sorted({item.unit for item in self.data.nomenclature() if item.unit})

    def _pack_ref(self, unit: str, size: int) -> str:
        return self.ref("pack", f"{unit}:{size}")

    def _package(self, ref: str, code: str, name: str, unit: str, size: int) -> Row:
        """A row of the catalog; a pack names the base unit it is counted in (a base unit: the empty reference)."""
        return {
            **catalog_row(ref, code, name, version=(unit, size)),
            "Owner": EMPTY_REF,
            "ЕдиницаИзмерения_Key": EMPTY_REF if size == 1 else self.ref("unit", unit),
            "Числитель": float(size),
            "Знаменатель": 1.0,
        }


def _pack_size(quantity: Decimal) -> int | None:
    """The largest pack a quantity fills exactly (integral quantities only); None: written in base units."""
    if quantity <= 0 or quantity != quantity.to_integral_value():
        return None
    return next((size for size in PACK_SIZES if int(quantity) % size == 0), None)
