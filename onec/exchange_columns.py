"""The column names of the exchange service's exports (contract §1.4, §1.5), in one place.

The CSV export, the UDE XML export and the import files of the reverse pipeline all name fields the same way
(`SKU`, `UnitPrice`, …); readers map them to canonical columns through these tables, never through copies.
"""

from __future__ import annotations

from collections.abc import Mapping

GOODS_HEADERS: Mapping[str, str] = {
    "sku": "SKU", "name": "Name", "quantity": "Quantity", "warehouse": "Warehouse", "unit": "Unit",
    "price": "Price", "id": "Id", "code": "Code", "deleted": "Deleted", "modified_at": "ModifiedAt",
}  # fmt: skip
"""Canonical goods column → its header (§1.4) and its UDE XML element (§1.5)."""

DOCUMENT_HEADER_HEADERS: Mapping[str, str] = {
    "id": "Id", "number": "Number", "date": "Date", "status": "Status", "posted": "Posted",
    "counterparty": "Counterparty", "warehouse": "Warehouse", "warehouse_to": "WarehouseTo", "notes": "Notes",
    "deleted": "Deleted", "modified_at": "ModifiedAt",
}  # fmt: skip
"""Document-level fields: repeated on every CSV line of a document; attributes/elements of `Document` in UDE XML."""

LINE_HEADERS: Mapping[str, str] = {
    "line": "Line", "sku": "SKU", "name": "Name", "quantity": "Quantity", "unit_price": "UnitPrice",
    "total": "Total", "book_quantity": "BookQuantity",
}  # fmt: skip
"""Line-level fields: CSV columns of a document line; attributes/elements of `Item` in UDE XML."""

DOCUMENT_LINE_HEADERS: Mapping[str, str] = {
    **{k: v for k, v in DOCUMENT_HEADER_HEADERS.items() if k not in ("notes", "deleted", "modified_at")},
    **LINE_HEADERS,
    **{k: DOCUMENT_HEADER_HEADERS[k] for k in ("notes", "deleted", "modified_at")},
}
"""§1.4's document-lines header, in the contract's column order."""

RUSSIAN_GOODS_HEADERS: Mapping[str, str] = {
    "sku": "Артикул", "name": "Наименование", "quantity": "Количество", "warehouse": "Склад",
    "unit": "ЕдиницаИзмерения", "price": "Цена",
}  # fmt: skip
"""The Russian aliases §1.9 allows in goods files."""

RUSSIAN_LINE_HEADERS: Mapping[str, str] = {
    "sku": "Артикул", "name": "Наименование", "quantity": "Количество", "warehouse": "Склад", "unit_price": "Цена",
}  # fmt: skip
"""The same aliases in document-line files, where the price of a line is its unit price."""


def by_header(headers: Mapping[str, str]) -> dict[str, str]:
    """Header → canonical column (the direction a reader needs)."""
    return {header: column for column, header in headers.items()}
