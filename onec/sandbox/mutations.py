"""What 1C users do to a base between two syncs: new documents, edits to month-old ones, re-posting, deletion
marks, documents moved to another date, price changes.

Why this exists: incremental sync is only trustworthy if it is tested against a base that keeps changing the way
real ones do, above all weeks after a document's date. Every mutation stamps the records it touches with "now"
in the base's zone (whole seconds, as 1C does), bumps their version (what OData's DataVersion and the engine's
render cache follow) and the data's revision, keeps the goods rows equal to what the ledger implies (so
`balance_on` stays the truth), and returns the change event 1C would send a webhook for (§1.8): hand it to
`engine.webhooks.publish_change(event)` and deliver with `engine.webhooks.flush(client)`.

Not thread-safe by itself, like `SandboxData`: mutate between requests, or hold the engine's lock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from onec.sandbox.data import MILLI, Document, SandboxData, _effects, line_total
from onec.schema import DOCUMENT_SLUGS, StockEffect, document_type
from onec.webhooks.events import DOCUMENT_CREATED, DOCUMENT_DELETED, DOCUMENT_POSTED, GOODS_UPDATED

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ChangeEvent:
    """A change as a webhook announces it: `{"id", "event", "occurred_at", "data"}` (§1.8)."""

    event: str
    occurred_at: datetime
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def payload(self) -> dict[str, Any]:
        """The delivery body: 1C writes dates as local time without offset."""
        local = self.occurred_at.replace(tzinfo=None).isoformat(timespec="seconds")
        return {"id": self.id, "event": self.event, "occurred_at": local, "data": self.data}


class SandboxMutator:
    """Seeded mutations of one `SandboxData`; `clock` gives "now" (default: the wall clock in the base's zone)."""

    def __init__(self, data: SandboxData, *, seed: int = 0, clock: Clock | None = None) -> None:
        self.data = data
        self._rng = random.Random(seed)
        zone = ZoneInfo(data.timezone)
        self._clock = clock or (lambda: datetime.now(zone))
        self._zone = zone

    def now(self) -> datetime:
        return self._clock().astimezone(self._zone).replace(microsecond=0)

    # --- documents

    def new_document(self, doc_type: str, day: date | None = None) -> ChangeEvent:
        """A new posted document on `day` (default: the last day of the base)."""
        when = day or self.data.start + timedelta(days=self.data.days - 1)
        doc = self.data.insert_document(doc_type, when)
        now = self.now()
        self._touch_goods(doc, now)
        self._stamp(doc, now)
        return self._event(DOCUMENT_CREATED, doc)

    def edit_document(self, doc_type: str, older_than: timedelta = timedelta(days=28)) -> ChangeEvent:
        """Change the lines of an old valid document (a price, a quantity, one line fewer) and re-post it."""
        doc = self._pick(doc_type, older_than)
        before = list(_effects(doc))
        first = doc.items[0]
        if first.unit_price is not None:
            first.unit_price = (first.unit_price * Decimal("1.1")).quantize(Decimal("0.01"))
        last = doc.items[-1]
        if len(doc.items) > 1 and self._rng.random() < 0.5:
            doc.items.pop()
        else:
            last.quantity = self._edited_quantity(doc, last.quantity)
            if last.book_quantity is not None:
                last.book_quantity = max(last.book_quantity, last.quantity)
        for line in doc.items:
            if line.unit_price is not None:
                line.total = line_total(line.quantity, line.unit_price)
        now = self.now()
        self._apply_stock(before, list(_effects(doc)), now)
        self._stamp(doc, now)
        return self._event(DOCUMENT_POSTED, doc)

    def repost_document(self, doc_type: str, older_than: timedelta = timedelta(0)) -> ChangeEvent:
        """Post a draft (it starts moving stock) or re-post a posted document (a new version, same content)."""
        doc = self._pick(doc_type, older_than)
        before = list(_effects(doc))
        doc.status, doc.posted = "posted", True
        now = self.now()
        self._apply_stock(before, list(_effects(doc)), now)
        self._stamp(doc, now)
        return self._event(DOCUMENT_POSTED, doc)

    def mark_deleted(self, doc_type: str, older_than: timedelta = timedelta(0)) -> ChangeEvent:
        """Set the deletion mark (there is no delete in 1C's exchange, §1.6): the document stops moving stock."""
        doc = self._pick(doc_type, older_than)
        before = list(_effects(doc))
        doc.deleted = True
        now = self.now()
        self._apply_stock(before, [], now)
        self._stamp(doc, now)
        return self._event(DOCUMENT_DELETED, doc)

    def move_document(self, doc_type: str, days: int, older_than: timedelta = timedelta(0)) -> ChangeEvent:
        """Re-date a document by `days` (kept inside the base's range): its warehouse partition must move."""
        doc = self._pick(doc_type, older_than)
        first, last = self.data.start, self.data.start + timedelta(days=self.data.days - 1)
        target = min(max(doc.date.date() + timedelta(days=days), first), last)
        self._redate(doc, datetime.combine(target, doc.date.timetz()))
        self._stamp(doc, self.now())
        return self._event(DOCUMENT_POSTED, doc)

    # --- goods

    def change_price(self, sku: str | None = None, factor: Decimal = Decimal("1.05")) -> ChangeEvent:
        """A new price for an item: every warehouse's position of the sku changes (1C's price is per item)."""
        goods = [
            g
            for g in self.data.goods_holdings()
            if g.bad_kind is None and g.price is not None and g.warehouse is not None
        ]
        good = next((g for g in goods if g.sku == sku), None) if sku else self._rng.choice(goods)
        if good is None or good.price is None or good.warehouse is None:
            raise ValueError(f"no priced goods row for sku {sku!r}")
        price = (good.price * factor).quantize(Decimal("0.01"))
        now = self.now()
        self.data.upsert_good(good.sku, good.warehouse, now, {"price": price})
        return ChangeEvent(GOODS_UPDATED, now, {"sku": good.sku, "warehouse": good.warehouse, "price": str(price)})

    def random_changes(self, count: int) -> list[ChangeEvent]:
        """A mixed day of `count` changes, old documents included; kinds that find nothing to change are skipped."""
        kinds: list[Callable[[str], ChangeEvent]] = [
            lambda t: self.new_document(t),
            lambda t: self.edit_document(t),
            lambda t: self.repost_document(t),
            lambda t: self.mark_deleted(t, timedelta(days=20)),
            lambda t: self.move_document(t, self._rng.choice((-3, -1, 2, 5))),
            lambda t: self.change_price(),
        ]
        events: list[ChangeEvent] = []
        while len(events) < count:
            kind, doc_type = self._rng.choice(kinds), self._rng.choice(DOCUMENT_SLUGS)
            try:
                events.append(kind(doc_type))
            except ValueError:
                continue
        return events

    # --- helpers

    def _pick(self, doc_type: str, older_than: timedelta) -> Document:
        """A random valid, not deleted document dated at least `older_than` ago (any such one if none is)."""
        document_type(doc_type)
        candidates = [d for d in self.data.documents_holdings(doc_type) if d.bad_kind is None and not d.deleted]
        if not candidates:
            raise ValueError(f"no {doc_type} document to change")
        cutoff = self.now() - older_than
        old = [d for d in candidates if d.date <= cutoff]
        return self._rng.choice(old or candidates)

    def _edited_quantity(self, doc: Document, quantity: Decimal) -> Decimal:
        """Edits never take more stock than before (the base has no stock control): decreases shrink,
        increases grow."""
        effect = document_type(doc.doc_type).effect
        if effect in (StockEffect.DECREASE, StockEffect.TRANSFER):
            return max((quantity / 2).quantize(MILLI), MILLI) if quantity > MILLI else quantity
        return quantity + Decimal(1)

    def _apply_stock(self, before: list[Any], after: list[Any], now: datetime) -> None:
        """Move the goods rows by the difference between a document's old and new stock effects."""
        delta: dict[tuple[str, str], Decimal] = {}
        for position, quantity in before:
            delta[position] = delta.get(position, Decimal(0)) - quantity
        for position, quantity in after:
            delta[position] = delta.get(position, Decimal(0)) + quantity
        for (sku, warehouse), change in delta.items():
            if change:
                good, _ = self.data.upsert_good(sku, warehouse, now, {})
                good.quantity += change

    def _touch_goods(self, doc: Document, now: datetime) -> None:
        """Positions a document moved are stamped with the change (their quantity already follows the ledger)."""
        for (sku, warehouse), _ in _effects(doc):
            self.data.upsert_good(sku, warehouse, now, {})

    def _redate(self, doc: Document, when: datetime) -> None:
        """Move a document in the data's date-ordered index. (SandboxData has no public re-date: this reaches
        into its index the way its own `_add_document` maintains it.)"""
        docs, keys = self.data._documents[doc.doc_type], self.data._document_keys[doc.doc_type]
        index = next(i for i, d in enumerate(docs) if d is doc)
        del docs[index], keys[index]
        doc.date = when
        self.data._add_document(doc)

    def _stamp(self, doc: Document, now: datetime) -> None:
        doc.modified_at, doc.version = now, doc.version + 1
        self.data.revision += 1

    def _event(self, event: str, doc: Document) -> ChangeEvent:
        data = {
            "type": doc.doc_type,
            "id": doc.id,
            "number": doc.number,
            "date": doc.date.replace(tzinfo=None).isoformat(timespec="seconds"),
            "posted": doc.posted,
            "deleted": doc.deleted,
        }
        assert doc.modified_at is not None
        return ChangeEvent(event, doc.modified_at, data)
