"""Canonical entities: the one shape every 1C source is turned into.

Every reader (JSON pages today; CSV, UDE XML, OData, CommerceML later) produces frames with exactly these
schemas, so validation, landing and everything downstream never know where rows came from.
Money and quantities are Decimal (never float), instants are timezone-aware in the 1C server's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

QUANTITY = pl.Decimal(18, 3)
COEFFICIENT = pl.Decimal(18, 6)
"""Base units in one unit of a line (a pack of 10 is 10; 1C computes a coefficient as a ratio, e.g. 1/3)."""
PRICE = pl.Decimal(18, 4)
MONEY = pl.Decimal(18, 2)

DEFAULT_TIMEZONE = "Europe/Moscow"


class StockEffect(StrEnum):
    """How a posted document moves stock; the marts (and reconciliation) read this, never the type name."""

    INCREASE = "increase"
    DECREASE = "decrease"
    TRANSFER = "transfer"
    NONE = "none"


@dataclass(frozen=True)
class DocumentType:
    """A document kind: one of the six of the exchange contract (§1.3), or ORDER."""

    slug: str
    seed_name: str
    counterparty_field: str | None
    effect: StockEffect
    has_book_quantity: bool = False
    warehouse_required: bool = True


DOCUMENT_TYPES: tuple[DocumentType, ...] = (
    DocumentType("goods-receipt", "GoodsReceipt", "supplier", StockEffect.INCREASE),
    DocumentType("shipment", "Shipment", "customer", StockEffect.DECREASE),
    DocumentType("transfer", "Transfer", None, StockEffect.TRANSFER),
    DocumentType("adjustment-up", "AdjustmentUp", None, StockEffect.INCREASE),
    DocumentType("adjustment-down", "AdjustmentDown", None, StockEffect.DECREASE),
    DocumentType("inventory", "Inventory", None, StockEffect.NONE, has_book_quantity=True),
)
DOCUMENT_TYPE_BY_SLUG: dict[str, DocumentType] = {t.slug: t for t in DOCUMENT_TYPES}
DOCUMENT_SLUGS: tuple[str, ...] = tuple(t.slug for t in DOCUMENT_TYPES)

ORDER = DocumentType("order", "Order", "customer", StockEffect.NONE, warehouse_required=False)
"""A customer order as a site exchange brings it (CommerceML `Документ`, «Заказ товара»). It lands beside the six
but is not one of them: the exchange service (§1) has no orders, so syncs, the sandbox and the marts' stock
movements never see it; an order reserves nothing and moves no stock, and a site's order names no warehouse."""
LANDED_DOCUMENT_TYPES: tuple[DocumentType, ...] = (*DOCUMENT_TYPES, ORDER)
_LANDED_BY_SLUG: dict[str, DocumentType] = {t.slug: t for t in LANDED_DOCUMENT_TYPES}


def document_type(slug: str) -> DocumentType:
    """Look a type that can land up by its path slug, with an error that lists the valid ones."""
    try:
        return _LANDED_BY_SLUG[slug]
    except KeyError:
        raise ValueError(f"unknown document type {slug!r}; expected one of: {', '.join(_LANDED_BY_SLUG)}") from None


def instant(timezone: str) -> pl.Datetime:
    """The dtype of a 1C date: microseconds, in the 1C server's zone (1C sends local time without offset)."""
    return pl.Datetime("us", time_zone=timezone)


def goods_schema(timezone: str = DEFAULT_TIMEZONE) -> pl.Schema:
    """A stock position: one row per (sku, warehouse) in one snapshot."""
    return pl.Schema(
        {
            "sku": pl.String(),
            "warehouse": pl.String(),
            "name": pl.String(),
            "quantity": QUANTITY,
            "unit": pl.String(),
            "price": PRICE,
            "id": pl.String(),
            "code": pl.String(),
            "deleted": pl.Boolean(),
            "modified_at": instant(timezone),
            "snapshot_date": pl.Date(),
        }
    )


def documents_schema(timezone: str = DEFAULT_TIMEZONE) -> pl.Schema:
    """A document header; unique by (doc_type, number). `doc_date` is the local calendar day of `date`,
    the partition key of the warehouse and the lake."""
    return pl.Schema(
        {
            "doc_type": pl.String(),
            "id": pl.String(),
            "number": pl.String(),
            "date": instant(timezone),
            "doc_date": pl.Date(),
            "status": pl.String(),
            "posted": pl.Boolean(),
            "counterparty": pl.String(),
            "warehouse": pl.String(),
            "warehouse_to": pl.String(),
            "notes": pl.String(),
            "deleted": pl.Boolean(),
            "modified_at": instant(timezone),
        }
    )


def document_lines_schema() -> pl.Schema:
    """A document line; unique by (doc_type, number, line). `doc_date` repeats the header's partition key.

    `quantity` is in the item's base unit, whatever unit the document was written in; `line_unit` and
    `unit_coefficient` keep the document's own unit and its base units per unit where the source says (OData
    lines in packaging units; the exchange service sends base units only, so its sources leave them null)."""
    return pl.Schema(
        {
            "doc_type": pl.String(),
            "number": pl.String(),
            "doc_date": pl.Date(),
            "line": pl.Int32(),
            "sku": pl.String(),
            "name": pl.String(),
            "quantity": QUANTITY,
            "unit_price": PRICE,
            "total": MONEY,
            "book_quantity": QUANTITY,
            "line_unit": pl.String(),
            "unit_coefficient": COEFFICIENT,
        }
    )


def rejected_rows_schema() -> pl.Schema:
    """A record that failed validation, kept with why and exactly what 1C sent, so nothing is silently dropped.

    `partition_date` is the snapshot date (goods) or the document day it was extracted for, so that re-running a
    partition replaces its rejected rows too.
    """
    return pl.Schema(
        {
            "entity": pl.String(),
            "doc_type": pl.String(),
            "partition_date": pl.Date(),
            "record_key": pl.String(),
            "reason": pl.String(),
            "raw": pl.String(),
            "source": pl.String(),
            "run_id": pl.String(),
            "rejected_at": pl.Datetime("us", time_zone="UTC"),
        }
    )


GOODS_KEY = ("sku", "warehouse")
DOCUMENTS_KEY = ("doc_type", "number")
DOCUMENT_LINES_KEY = ("doc_type", "number", "line")
