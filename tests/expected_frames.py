"""What the warehouse must hold for a sandbox, computed from the sandbox's own truth, independently of the pipeline.

The sandbox keeps typed values (Decimal, aware datetimes, trimmed strings); these helpers turn them into rows shaped
like the warehouse tables so tests can compare row for row. Deliberately bad records are left out: they belong in
`rejected_rows`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from onec.sandbox.data import Document, SandboxData
from onec.schema import DOCUMENT_SLUGS
from onec.warehouse import Warehouse

LANDED_DOCUMENTS = (
    "SELECT doc_type, number, date, doc_date, status, posted, counterparty, warehouse, warehouse_to, notes, deleted "
    "FROM documents ORDER BY doc_type, number"
)
LANDED_LINES = (
    "SELECT doc_type, number, line, sku, name, quantity, unit_price, total, book_quantity "
    "FROM document_lines ORDER BY doc_type, number, line"
)
LANDED_GOODS = "SELECT sku, warehouse, name, quantity, unit, price, deleted FROM goods ORDER BY sku, warehouse"


def expected_documents(data: SandboxData, date_from: date, date_to: date) -> list[tuple[Any, ...]]:
    rows = [
        (d.doc_type, d.number, d.date, d.date.date(), d.status, d.posted, d.counterparty, d.warehouse,
         d.warehouse_to, d.notes, d.deleted)
        for d in _valid_documents(data, date_from, date_to)
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (row[0], row[1]))


def expected_lines(data: SandboxData, date_from: date, date_to: date) -> list[tuple[Any, ...]]:
    rows = [
        (d.doc_type, d.number, line.line, line.sku, line.name, line.quantity, line.unit_price, line.total,
         line.book_quantity)
        for d in _valid_documents(data, date_from, date_to)
        for line in d.items
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (row[0], row[1], row[2]))


def expected_goods(data: SandboxData) -> list[tuple[Any, ...]]:
    rows = [
        (g.sku, g.warehouse, g.name, g.quantity, g.unit, g.price, g.deleted)
        for g in data.goods_holdings()
        if g.bad_kind is None
    ]
    return sorted(rows, key=lambda row: (row[0], row[1]))


def landed_documents(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return _rows(warehouse, LANDED_DOCUMENTS)


def landed_lines(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return _rows(warehouse, LANDED_LINES)


def landed_goods(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return _rows(warehouse, LANDED_GOODS)


def _rows(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(_plain(value) for value in row) for row in warehouse.query(sql).rows()]


def _plain(value: Any) -> Any:
    """Decimals compare by value whatever their scale (15.5 == 15.5000)."""
    return value.normalize() if isinstance(value, Decimal) else value


def _valid_documents(data: SandboxData, date_from: date, date_to: date) -> list[Document]:
    return [
        doc
        for slug in DOCUMENT_SLUGS
        for doc in data.documents_holdings(slug, date_from, date_to)
        if doc.bad_kind is None
    ]


def normalized(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(_plain(value) for value in row) for row in rows]
