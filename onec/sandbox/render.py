"""How the sandbox writes its truth as 1C's JSON: plainly, or with the awkwardness of real bases (§1.9).

Why a module of its own: the variations are the point of the sandbox (a client that survives them survives
real 1C), and they must stay *reversible*: trimming the padding, reading `"15,50"` as 15.50 and
`0001-01-01T00:00:00` as no date gives back exactly the truth. Every choice is drawn from a generator seeded
by the engine seed and the record's identity, so a record looks the same every time it is served, on every
page and in every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from onec.sandbox.data import Document, Good, Line
from onec.schema import document_type

EMPTY_DATE = "0001-01-01T00:00:00"
_OMIT = object()

# Fields real bases add that the contract does not know; clients must ignore them.
_EXTRA_FIELDS: tuple[tuple[str, object], ...] = (
    ("ВерсияДанных", "AAAAAgAAAAA="),
    ("organization", 'ООО "Торговый дом"'),
    ("Ответственный", "Администратор"),
    ("vat_rate", "20%"),
    ("_links", {"self": "/api/v1/…"}),
    ("comment_internal", None),
)


def local_text(value: datetime) -> str:
    """A 1C date: local wall-clock time, ISO without offset, whole seconds (the first 19 characters of the
    ISO text, which always has a four-digit year; several times cheaper than `strftime`)."""
    return value.isoformat(timespec="seconds")[:19]


def plain_number(value: Decimal) -> str:
    """The shortest exact decimal text (100.000 → "100", 15.50 → "15.5"), as 1C's JSON writer prints."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


class Renderer:
    """Turns records into JSON bytes; `awkward=False` gives the canonical form, null for missing values."""

    def __init__(self, awkward: bool, seed: int) -> None:
        self.awkward = awkward
        self.seed = seed

    def good(self, good: Good) -> bytes:
        style = _Style(self.awkward, f"{self.seed}|g|{good.id}|{good.sku}|{good.warehouse}")
        record: dict[str, Any] = {
            "id": good.id,
            "code": style.optional(good.code, style.text),
            "sku": style.text(good.sku),
            "name": style.text(good.name),
            "unit": style.optional(good.unit, style.text),
            "price": style.optional(good.price, style.money),
            "quantity": style.quantity(good.quantity),
            "warehouse": style.optional(good.warehouse, style.text),
            "deleted": good.deleted,
            "modified_at": style.instant(good.modified_at),
        }
        return orjson.dumps(style.finish(record, good.overrides))

    def document(self, doc: Document) -> bytes:
        style = _Style(self.awkward, f"{self.seed}|d|{doc.doc_type}|{doc.id}")
        record: dict[str, Any] = {
            "id": doc.id,
            "number": style.text(doc.number),
            "date": local_text(doc.date),
            "status": doc.status,
            "posted": doc.posted,
        }
        counterparty_field = document_type(doc.doc_type).counterparty_field
        if counterparty_field is not None:
            record[counterparty_field] = style.optional(doc.counterparty, style.text)
        record["warehouse"] = style.text(doc.warehouse)
        if doc.doc_type == "transfer":
            record["warehouse_to"] = style.optional(doc.warehouse_to, style.text)
        record["notes"] = style.optional(doc.notes, style.text)
        record["deleted"] = doc.deleted
        record["modified_at"] = style.instant(doc.modified_at)
        record["items"] = [self._line(style, line, doc.doc_type == "inventory") for line in doc.items]
        return orjson.dumps(style.finish(record, doc.overrides))

    @staticmethod
    def _line(style: _Style, line: Line, inventory: bool) -> dict[str, Any]:
        record: dict[str, Any] = {
            "line": style.integer(line.line),
            "sku": style.optional(line.sku, style.text),
            "name": style.optional(line.name, style.text),
            "quantity": style.quantity(line.quantity),
            "unit_price": style.optional(line.unit_price, style.money),
            "total": style.optional(line.total, style.money),
        }
        if inventory:
            record["book_quantity"] = style.optional(line.book_quantity, style.quantity)
        return style.finish(record, line.overrides)


class _Style:
    """The per-record choices; without `awkward`, every method is the canonical identity."""

    def __init__(self, awkward: bool, identity: str) -> None:
        self.awkward = awkward
        self.rng = random.Random(identity) if awkward else None
        self._roll: Callable[[], float] = self.rng.random if self.rng is not None else _never
        """The next draw in [0, 1); the canonical form's `_never` is 1.0, above every threshold."""

    def text(self, value: str) -> str:
        """Sometimes right-padded, as 1C pads fixed-length string attributes."""
        if self._roll() < 0.1 and self.rng is not None:
            return value + " " * self.rng.randint(1, 8)
        return value

    def quantity(self, value: Decimal) -> object:
        return self._number(value, money=False)

    def money(self, value: Decimal) -> object:
        return self._number(value, money=True)

    def integer(self, value: int) -> object:
        return str(value) if self._roll() < 0.1 else value

    def _number(self, value: Decimal, money: bool) -> object:
        """A JSON number mostly; sometimes a string, with a point ("100") or a decimal comma ("15,50"; money
        keeps its two decimals there)."""
        roll = self._roll()
        if roll < 0.1:
            return plain_number(value)
        if roll < 0.2:
            return (format(value, ".2f") if money else plain_number(value)).replace(".", ",")
        return orjson.Fragment(plain_number(value))

    def optional(self, value: Any, shape: Any) -> object:
        """A present value shaped as usual; a missing one is null, or (awkwardly) not sent at all."""
        if value is not None:
            return shape(value)
        return _OMIT if self._roll() < 0.5 else None

    def instant(self, value: datetime | None) -> object:
        """A date; a missing one is 1C's empty date `0001-01-01T00:00:00` (awkward), else null."""
        if value is not None:
            return local_text(value)
        if not self.awkward:
            return None
        roll = self._roll()
        return EMPTY_DATE if roll < 0.7 else (None if roll < 0.85 else _OMIT)

    def finish(self, record: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
        """Drop omitted fields, maybe add unknown ones, then put a bad record's raw values in place."""
        result = {key: value for key, value in record.items() if value is not _OMIT} if self.awkward else record
        if self.rng is not None and self.rng.random() < 0.1:
            result.update(self.rng.sample(_EXTRA_FIELDS, self.rng.randint(1, 2)))
        if overrides:
            result.update(overrides)
        return result


def _never() -> float:
    return 1.0
