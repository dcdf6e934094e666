"""Helpers for the sandbox tests: paging like a careful client, and reading 1C's awkward JSON back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from onec.sandbox.data import Document, Good, SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine

BASE_URL = "http://sandbox/trade/hs/exchange"
MOSCOW = ZoneInfo("Europe/Moscow")


def engine_for(data: SandboxData, **config: Any) -> SandboxEngine:
    return SandboxEngine(data, SandboxConfig(**config))


def loads(content: bytes) -> Any:
    """Parse as a careful client would: numbers as Decimal, never float."""
    return json.loads(content, parse_float=Decimal)


def page_all(client: httpx.Client, path: str, limit: int = 50, **params: Any) -> list[dict[str, Any]]:
    """Follow offset + len(data) until the total is reached (how §1.9 says to page)."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = client.get(path, params={**params, "limit": limit, "offset": offset})
        assert response.status_code == 200, response.text
        body = loads(response.content)
        rows += body["data"]
        offset += len(body["data"])
        if not body["data"] or offset >= body["pagination"]["total"]:
            return rows


# --- reading awkward values back into the truth


def text(value: Any) -> str | None:
    return None if value is None else str(value).rstrip(" ")


def number(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value.replace(",", ".")) if isinstance(value, str) else Decimal(value)


def instant(value: Any) -> datetime | None:
    if value is None or value == "0001-01-01T00:00:00":
        return None
    return datetime.fromisoformat(value).replace(tzinfo=MOSCOW)


def good_from_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.get("id"), "code": text(row.get("code")), "sku": text(row["sku"]),
        "name": text(row["name"]), "unit": text(row.get("unit")), "price": number(row.get("price")),
        "quantity": number(row["quantity"]), "warehouse": text(row["warehouse"]),
        "deleted": row.get("deleted"), "modified_at": instant(row.get("modified_at")),
    }  # fmt: skip


def good_truth(good: Good) -> dict[str, Any]:
    return {
        "id": good.id, "code": good.code, "sku": good.sku, "name": good.name, "unit": good.unit,
        "price": good.price, "quantity": good.quantity, "warehouse": good.warehouse, "deleted": good.deleted,
        "modified_at": good.modified_at,
    }  # fmt: skip


def document_from_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "number": text(row["number"]), "date": instant(row["date"]), "status": row["status"],
        "posted": row["posted"], "counterparty": text(row.get("supplier", row.get("customer"))),
        "warehouse": text(row["warehouse"]), "warehouse_to": text(row.get("warehouse_to")),
        "notes": text(row.get("notes")), "deleted": row["deleted"],
        "modified_at": instant(row.get("modified_at")),
        "items": [
            {
                "line": int(item["line"]), "sku": text(item.get("sku")), "name": text(item.get("name")),
                "quantity": number(item["quantity"]), "unit_price": number(item.get("unit_price")),
                "total": number(item.get("total")), "book_quantity": number(item.get("book_quantity")),
            }
            for item in row["items"]
        ],
    }  # fmt: skip


def document_truth(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id, "number": doc.number, "date": doc.date, "status": doc.status, "posted": doc.posted,
        "counterparty": doc.counterparty, "warehouse": doc.warehouse, "warehouse_to": doc.warehouse_to,
        "notes": doc.notes, "deleted": doc.deleted, "modified_at": doc.modified_at,
        "items": [
            {
                "line": line.line, "sku": line.sku, "name": line.name, "quantity": line.quantity,
                "unit_price": line.unit_price, "total": line.total, "book_quantity": line.book_quantity,
            }
            for line in doc.items
        ],
    }  # fmt: skip


def served_position(row: dict[str, Any]) -> tuple[str, str | None]:
    """(sku, warehouse) of a served goods row, padding trimmed; an item without stock has no warehouse."""
    warehouse = row.get("warehouse")
    return str(row["sku"]).rstrip(), None if warehouse is None else str(warehouse).rstrip()


def assert_ledger_agrees(data: SandboxData) -> None:
    """The served goods hold the ledger's final balance: each position, and items without stock as one row."""
    served = [g for g in data.goods_holdings() if g.bad_kind is None]
    without_stock = {g.sku for g in served if g.warehouse is None}
    balance = data.balance_on(data.start + timedelta(days=400))
    assert all(quantity == 0 for (sku, _), quantity in balance.items() if sku in without_stock)
    goods = {(g.sku, g.warehouse): g.quantity for g in served if g.warehouse is not None}
    assert goods == {position: q for position, q in balance.items() if position[0] not in without_stock}
