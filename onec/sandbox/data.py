"""The sandbox's 1C base: a deterministic, stock-consistent trade ledger that knows exactly what it holds.

Why generated and not fixtures: the project's reconciliation, validation and paging are only as trustworthy as
the data they are tested against. This base is big enough to page through (tens of thousands of documents in a
few seconds), awkward enough to look like a real trade base (Cyrillic, quotes in names, separators in
comments), and *consistent*: every stock position starts with an opening balance and every posting is replayed
by `balance_on`, so any balance the ETL derives can be checked against it.

It also holds what real 1C bases hold and a conforming server sends (contract §1.3 "What real bases hold"), at low
rates, each written from how 1C behaves, not from what the client expects:
- stock control is off, as it often is in 1C: a few posted shipments, transfers and write-offs take more than the
  warehouse has, so some balances go below zero, and an inventory counted there carries that negative book
  quantity (`КоличествоУчет` is the register balance);
- nomenclature items no warehouse has ever held: 1C's balance register has nothing for them, and the exchange
  service lists each once, with no warehouse and quantity 0;
- receipts of opening balances (ввод остатков) without a supplier;
- transfers entered from warehouse orders (the order scheme): quantities only, no prices;
- bonus goods received at price 0;
- an empty tabular row (no item, quantity 0) that a user added and left: 1C keeps it.

Everything comes from one `random.Random(seed)`: same arguments, same base, byte for byte. The objects are the
truth the sandbox serves; callers treat them as read-only. Not thread-safe by itself: the engine serialises
access.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate, groupby
from typing import Any
from zoneinfo import ZoneInfo

from onec.sandbox import vocabulary as words
from onec.schema import DOCUMENT_SLUGS, DOCUMENT_TYPE_BY_SLUG, StockEffect, document_type

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
ZERO = Decimal("0.000")

# Kinds of deliberately invalid records (`generate(bad_records=…)`); validation must reject each.
NEGATIVE_QUANTITY = "negative_quantity"
TOTAL_MISMATCH = "total_mismatch"
MISSING_SKU = "missing_sku"
MISSING_NUMBER = "missing_number"
UNPARSEABLE_NUMBER = "unparseable_number"
SAME_WAREHOUSE_TRANSFER = "same_warehouse_transfer"
EMPTY_SKU = "empty_sku"
BAD_KINDS: tuple[str, ...] = (
    NEGATIVE_QUANTITY,
    TOTAL_MISMATCH,
    MISSING_SKU,
    MISSING_NUMBER,
    UNPARSEABLE_NUMBER,
    SAME_WAREHOUSE_TRANSFER,
    EMPTY_SKU,
)

# How often each type occurs; shipments dominate as in a real wholesale base.
_TYPE_WEIGHTS = {
    "goods-receipt": 25,
    "shipment": 40,
    "transfer": 10,
    "adjustment-up": 5,
    "adjustment-down": 8,
    "inventory": 12,
}
_LIMITED_EFFECTS = (StockEffect.DECREASE, StockEffect.TRANSFER)

# How often real-1C data occurs (see the module docstring); drawn from their own random stream.
OVERDRAW_RATE = 0.04
"""Posted stock-taking documents whose first line takes more than the warehouse holds (stock control off)."""
UNSTOCKED_ITEM_RATE = 0.02
"""Nomenclature items (share of the catalog, at least one) that no warehouse has ever held."""
NO_SUPPLIER_RATE = 0.03
"""Goods receipts that record opening balances, without a supplier."""
PRICELESS_TRANSFER_RATE = 0.25
"""Transfers entered from warehouse orders: lines with quantities only."""
ZERO_PRICE_RATE = 0.01
"""Goods receipt lines of bonus goods, at price 0."""
EMPTY_ROW_RATE = 0.01
"""Documents with an empty tabular row at the end."""
OPENING_BALANCE_NOTE = "Ввод остатков"


@dataclass(slots=True)
class Good:
    """A stock position (one row per sku and warehouse). `id`/`code` are the nomenclature item's, shared
    by its positions in all warehouses, as in 1C. Optional fields are None where 1C sends nothing for them."""

    id: str
    code: str | None
    sku: str
    name: str
    unit: str | None
    price: Decimal | None
    quantity: Decimal
    warehouse: str | None
    """None only on the row of an item no warehouse holds (quantity 0)."""
    deleted: bool
    modified_at: datetime | None
    bad_kind: str | None = None
    overrides: dict[str, Any] | None = None
    """Values sent instead of the typed truth (only deliberately bad records have any)."""
    version: int = 1
    """Bumped on every write, as 1C bumps an object's DataVersion (OData change detection reads it)."""


@dataclass(slots=True)
class Line:
    """A document line; `total` = quantity × unit_price rounded half-up to kopecks (except in bad records).
    An empty tabular row has no sku and name and quantity 0; a line entered from a warehouse order has no
    unit_price and total."""

    line: int
    sku: str | None
    name: str | None
    quantity: Decimal
    unit_price: Decimal | None
    total: Decimal | None
    book_quantity: Decimal | None = None
    overrides: dict[str, Any] | None = None


@dataclass(slots=True)
class Document:
    """A document header with its lines; unique by (doc_type, number)."""

    doc_type: str
    id: str
    number: str
    date: datetime
    status: str
    posted: bool
    counterparty: str | None
    warehouse: str
    warehouse_to: str | None
    notes: str | None
    deleted: bool
    modified_at: datetime | None
    items: list[Line]
    bad_kind: str | None = None
    overrides: dict[str, Any] | None = None
    version: int = 1
    """Bumped on every write, as 1C bumps an object's DataVersion (OData change detection reads it)."""

    @property
    def moves_stock(self) -> bool:
        """Only posted, not deleted documents move stock (§1.3); bad records never count."""
        return self.posted and not self.deleted and self.bad_kind is None


@dataclass(frozen=True, slots=True)
class Item:
    """A nomenclature item (1C's Номенклатура) as the catalog shows it: what every position of a sku shares."""

    id: str
    code: str | None
    sku: str
    name: str
    unit: str | None
    price: Decimal | None
    deleted: bool
    version: int


@dataclass(frozen=True, slots=True)
class _Item:
    """A nomenclature item: what every position and line of one sku share."""

    index: int
    sku: str
    name: str
    unit: str
    grams_per_step: int
    """Thousandths of the unit in the smallest countable amount: 1000 for pieces, 100 for metres, 1 for kg."""
    price_cents: int
    id: str
    code: str


Position = tuple[str, str]
Available = Callable[[str], Decimal]


class SandboxData:
    """The generated base. Build it with `SandboxData.generate(...)`."""

    def __init__(self, seed: int, start: date, days: int, warehouses: tuple[str, ...], timezone: str) -> None:
        self.seed = seed
        self.start = start
        self.days = days
        self.warehouses = warehouses
        self.timezone = timezone
        self.revision = 0
        """Bumped on every mutation, so caches over the data know when to forget."""
        self._tz = ZoneInfo(timezone)
        self._rng = random.Random(seed)
        self._real = random.Random(f"{seed}:real-1c")
        """Draws for the real-1C data (module docstring), apart from `_rng` so they leave its sequence alone."""
        self._items: list[_Item] = []
        self._opening: dict[Position, Decimal] = {}
        self._goods: list[Good] = []
        self._goods_by_position: dict[Position, Good] = {}
        self._documents: dict[str, list[Document]] = {slug: [] for slug in DOCUMENT_SLUGS}
        self._document_keys: dict[str, list[tuple[datetime, str]]] = {slug: [] for slug in DOCUMENT_SLUGS}
        self._by_id: dict[str, dict[str, Document]] = {slug: {} for slug in DOCUMENT_SLUGS}
        self._by_number: dict[str, dict[str, Document]] = {slug: {} for slug in DOCUMENT_SLUGS}
        self._unstocked: dict[str, Item] = {}
        """Nomenclature items that documents written through the API introduced and no warehouse holds yet."""
        self._counters: Counter[str] = Counter()
        self._bad_keys: dict[str, str] = {}

    # --- generation

    @classmethod
    def generate(
        cls,
        seed: int = 42,
        documents: int = 600,
        goods: int | None = None,
        start: date = date(2026, 1, 1),
        days: int = 31,
        warehouses: int = 3,
        timezone: str = "Europe/Moscow",
        bad_records: int = 0,
    ) -> SandboxData:
        """Generate a base: `goods` SKUs (default max(40, documents // 5)) stocked in every warehouse, then
        `documents` documents in date order over [start, start + days), then `bad_records` invalid records."""
        if documents < 0 or days < 1 or warehouses < 1 or bad_records < 0:
            raise ValueError("documents and bad_records must be >= 0, days and warehouses >= 1")
        data = cls(seed, start, days, _warehouse_codes(warehouses), timezone)
        data._make_catalog(goods if goods is not None else max(40, documents // 5))
        balances = data._make_opening_balances()
        touched: dict[Position, datetime] = {}
        for doc in data._chronological_documents(documents, balances):
            data._add_document(doc)
            for position, _ in _effects(doc):
                touched[position] = max(touched.get(position, doc.date), doc.modified_at or doc.date)
        data._make_goods(balances, touched)
        data._make_unstocked_items()
        data._add_bad_records(bad_records)
        return data

    def _make_catalog(self, count: int) -> None:
        rng = self._rng
        used: set[str] = set()
        for index in range(count):
            category = words.CATEGORIES[index % len(words.CATEGORIES)]
            name = " ".join(
                part
                for part in (
                    category.base,
                    rng.choice(category.brands),
                    rng.choice(category.variants),
                    rng.choice(category.packs),
                )
                if part
            )
            if name in used:
                name = f"{name}, арт. {index + 1}"
            used.add(name)
            prefix = category.prefix if rng.random() < 0.7 else rng.choice(words.LATIN_PREFIXES)
            step = {"кг": 1, "м": 100}.get(category.unit, 1000)
            self._items.append(
                _Item(
                    index,
                    f"{prefix}-{index + 1:05d}",
                    name,
                    category.unit,
                    step,
                    rng.randint(*category.roubles) * 100 + rng.choice((0, 50, 90, rng.randrange(100))),
                    self._guid(),
                    f"00-{index + 1:08d}",
                )
            )

    def _make_opening_balances(self) -> dict[Position, Decimal]:
        """Opening stock at `start` for every position; about one in ten starts empty."""
        for item in self._items:
            for warehouse in self.warehouses:
                empty = self._rng.random() < 0.1
                self._opening[(item.sku, warehouse)] = ZERO if empty else self._quantity(item, 20, 400)
        return dict(self._opening)

    def _chronological_documents(self, count: int, balances: dict[Position, Decimal]) -> Iterator[Document]:
        """Documents in date order, each applied to `balances` when made, so the next one sees its effect."""
        rng = self._rng
        types = [slug for slug in DOCUMENT_SLUGS if slug != "transfer" or len(self.warehouses) > 1]
        kinds = rng.choices(types, cum_weights=list(accumulate(_TYPE_WEIGHTS[t] for t in types)), k=count)
        offsets = sorted(self._below(self.days * 86_400) for _ in range(count))
        for doc_type, seconds in zip(kinds, offsets, strict=True):
            roll = rng.random()
            status = "posted" if roll < 0.85 else "draft"
            doc = self._new_document(
                doc_type, self._local(self.start, seconds), status, deleted=roll >= 0.95, balances=balances
            )
            for position, delta in _effects(doc):
                balances[position] += delta
            yield doc

    def _new_document(
        self, doc_type: str, when: datetime, status: str, deleted: bool, balances: dict[Position, Decimal]
    ) -> Document:
        """A valid document at `when`; a stock-taking one that finds no stock to take becomes a draft."""
        rng = self._rng
        warehouse = rng.choice(self.warehouses)
        available: Available = lambda sku: balances[(sku, warehouse)]  # noqa: E731
        moves = status == "posted" and not deleted
        limited = moves and document_type(doc_type).effect in _LIMITED_EFFECTS
        overdraw = limited and self._real.random() < OVERDRAW_RATE
        items = self._lines(doc_type, rng.randint(1, 10), available if limited else None, available, overdraw)
        if not items:
            status, items = "draft", self._lines(doc_type, rng.randint(1, 10), None, available)
        return self._as_real_1c(self._document(doc_type, when, status, deleted, warehouse, items))

    def _as_real_1c(self, doc: Document) -> Document:
        """Give a generated document, at the module's rates, what real 1C documents have: no supplier on an
        opening-balance receipt, no prices on a transfer from warehouse orders, bonus lines at price 0, an empty
        tabular row."""
        real = self._real
        if doc.doc_type == "goods-receipt" and real.random() < NO_SUPPLIER_RATE:
            doc.counterparty, doc.notes = None, OPENING_BALANCE_NOTE
        priceless = doc.doc_type == "transfer" and real.random() < PRICELESS_TRANSFER_RATE
        for line in doc.items:
            if priceless:
                line.unit_price = line.total = None
            elif doc.doc_type == "goods-receipt" and real.random() < ZERO_PRICE_RATE:
                line.unit_price, line.total = Decimal("0.00"), Decimal("0.00")
        if real.random() < EMPTY_ROW_RATE:
            price = None if priceless else Decimal("0.00")
            book = ZERO if doc.doc_type == "inventory" else None
            doc.items.append(Line(len(doc.items) + 1, None, None, ZERO, price, price, book))
        return doc

    def _document(
        self, doc_type: str, when: datetime, status: str, deleted: bool, warehouse: str, items: list[Line]
    ) -> Document:
        rng = self._rng
        counterparty = {"supplier": words.SUPPLIERS, "customer": words.CUSTOMERS}.get(
            document_type(doc_type).counterparty_field or ""
        )
        modified = None if rng.random() < 0.01 else self._edited_after(when, self._below(72 * 3600 + 1))
        return Document(
            doc_type=doc_type,
            id=self._guid(),
            number=self._next_number(doc_type),
            date=when,
            status=status,
            posted=status == "posted",
            counterparty=rng.choice(counterparty) if counterparty else None,
            warehouse=warehouse,
            warehouse_to=self._destination(warehouse) if doc_type == "transfer" else None,
            notes=rng.choice(words.NOTES).format(n=rng.randint(1, 9999)) if rng.random() < 0.6 else None,
            deleted=deleted,
            modified_at=modified,
            items=items,
        )

    def _lines(
        self, doc_type: str, count: int, limit: Available | None, book: Available, overdraw: bool = False
    ) -> list[Line]:
        """Up to `count` lines of distinct goods. With `limit`, a line never takes more than is available
        and goods with nothing available are skipped, except that with `overdraw` the first line takes more than
        is available (stock control off); `book` gives an inventory line's book quantity, below zero where the
        balance is."""
        rng = self._rng
        lines: list[Line] = []
        for item in self._distinct_items(count * 3 if limit else count):
            if len(lines) == count:
                break
            quantity = self._quantity(item, 1, 60 if limit else 200)
            book_quantity = None
            if limit is not None:
                available = limit(item.sku)
                if overdraw and not lines:
                    quantity += max(available, ZERO)
                elif available <= 0:
                    continue
                else:
                    quantity = min(quantity, available)
            if doc_type == "inventory":
                book_quantity = book(item.sku)
                surplus = self._quantity(item, -3, 3) if rng.random() < 0.3 else ZERO
                quantity = max(book_quantity + surplus, ZERO)
            lines.append(self._line(doc_type, len(lines) + 1, item, quantity, book_quantity))
        return lines

    def _line(self, doc_type: str, number: int, item: _Item, quantity: Decimal, book: Decimal | None) -> Line:
        cents = item.price_cents
        if doc_type == "goods-receipt":
            cents = cents * (60 + self._below(26)) // 100
        elif doc_type != "shipment":
            cents = cents * 70 // 100
        unit_price = Decimal(cents).scaleb(-2)
        return Line(number, item.sku, item.name, quantity, unit_price, line_total(quantity, unit_price), book)

    def _make_goods(self, balances: dict[Position, Decimal], touched: dict[Position, datetime]) -> None:
        """One row per position with its final balance; modified when last moved (or some time before)."""
        rng = self._rng
        before_start = self._local(self.start, 0)
        for item in self._items:
            deleted = rng.random() < 0.02
            unit = None if rng.random() < 0.02 else item.unit
            price = None if rng.random() < 0.03 else Decimal(item.price_cents).scaleb(-2)
            code = None if rng.random() < 0.02 else item.code
            for warehouse in self.warehouses:
                position = (item.sku, warehouse)
                modified = touched.get(position) or before_start - timedelta(seconds=rng.randrange(90 * 86_400))
                good = Good(
                    item.id,
                    code,
                    item.sku,
                    item.name,
                    unit,
                    price,
                    balances[position],
                    warehouse,
                    deleted,
                    None if rng.random() < 0.02 else modified,
                )
                self._goods.append(good)
                self._goods_by_position[position] = good

    def _make_unstocked_items(self) -> None:
        """Catalog items no warehouse has ever held (none of the documents names them)."""
        real = self._real
        count = max(1, round(len(self._items) * UNSTOCKED_ITEM_RATE))
        for index in range(len(self._items), len(self._items) + count):
            category = words.CATEGORIES[index % len(words.CATEGORIES)]
            name = f"{category.base} {real.choice(category.brands)}, арт. {index + 1}"
            sku = f"{category.prefix}-{index + 1:05d}"
            price = Decimal(real.randint(*category.roubles)).quantize(CENT)
            item = Item(self._guid(), f"00-{index + 1:08d}", sku, name, category.unit, price, False, 1)
            self._unstocked[sku] = item

    # --- bad records

    def _add_bad_records(self, count: int) -> None:
        """Invalid records of every kind in turn, spread across document types; none of them moves stock."""
        for index in range(count):
            kind = BAD_KINDS[index % len(BAD_KINDS)]
            if kind == EMPTY_SKU:
                self._add_bad_good()
                continue
            doc_type = {NEGATIVE_QUANTITY: "goods-receipt", SAME_WAREHOUSE_TRANSFER: "transfer"}.get(
                kind, DOCUMENT_SLUGS[index % len(DOCUMENT_SLUGS)]
            )
            doc = self._bad_document(doc_type, kind)
            self._add_document(doc)
            self._bad_keys[_document_key(doc)] = kind
        self._goods.sort(key=_goods_order)

    def _add_bad_good(self) -> None:
        item = self._rng.choice(self._items)
        good = Good(
            self._guid(),
            None,
            "",
            item.name,
            item.unit,
            None,
            self._quantity(item, 1, 50),
            self._rng.choice(self.warehouses),
            False,
            self._local(self.start, 0),
            bad_kind=EMPTY_SKU,
        )
        self._goods.append(good)
        self._bad_keys[f"goods:id={good.id}"] = EMPTY_SKU

    def _bad_document(self, doc_type: str, kind: str) -> Document:
        rng = self._rng
        warehouse = rng.choice(self.warehouses)
        book: Available = lambda sku: self._goods_by_position[(sku, warehouse)].quantity  # noqa: E731
        items = self._lines(doc_type, rng.randint(1, 3), None, book)
        when = self._local(self.start, rng.randrange(self.days * 86_400))
        doc = self._document(doc_type, when, "posted", False, warehouse, items)
        doc.bad_kind = kind
        first = doc.items[0]
        assert first.unit_price is not None and first.total is not None, "`_lines` prices every line"
        if kind == NEGATIVE_QUANTITY:
            first.quantity = -first.quantity
            first.total = line_total(first.quantity, first.unit_price)
        elif kind == TOTAL_MISMATCH:
            first.total += Decimal("100.00")
        elif kind == MISSING_SKU:
            first.sku, first.overrides = "", {"sku": None}
        elif kind == MISSING_NUMBER:
            doc.number, doc.overrides = "", {"number": None}
        elif kind == UNPARSEABLE_NUMBER:
            first.overrides = {"quantity": "abc"}
        elif kind == SAME_WAREHOUSE_TRANSFER:
            doc.warehouse_to = doc.warehouse
        return doc

    # --- mutation

    def insert_document(self, doc_type: str, day: date) -> Document:
        """Post a new, valid document on `day` (at a time no other document has) and update the goods.

        Used to make totals drift during a run. Stock-taking types take at most what stays available from that
        moment to the end of the ledger, so no balance ever goes negative, before or after the insert.
        """
        if doc_type == "transfer" and len(self.warehouses) < 2:
            raise ValueError("a transfer needs two warehouses")
        rng = self._rng
        taken = {doc.date for docs in self._documents.values() for doc in docs}
        when = self._local(day, rng.randrange(86_400))
        while when in taken:
            when = self._local(day, rng.randrange(86_400))
        warehouse = rng.choice(self.warehouses)
        balance, headroom = self._position_outlook(warehouse, when)
        limited = document_type(doc_type).effect in _LIMITED_EFFECTS
        items = self._lines(doc_type, rng.randint(1, 5), headroom.__getitem__ if limited else None, balance.__getitem__)
        if not items:
            raise ValueError(f"no stock at {warehouse} on {day} to make a {doc_type}")
        doc = self._document(doc_type, when, "posted", False, warehouse, items)
        self._add_document(doc)
        for position, delta in _effects(doc):
            good = self._goods_by_position[position]
            good.quantity += delta
            if good.modified_at is not None and doc.modified_at is not None:
                good.modified_at = max(good.modified_at, doc.modified_at)
        self.revision += 1
        return doc

    def _position_outlook(self, warehouse: str, when: datetime) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Per sku at `warehouse`: the balance at `when`, and the least it will be from then on (what can be
        taken)."""
        balance = {sku: quantity for (sku, wh), quantity in self._opening.items() if wh == warehouse}
        now: dict[str, Decimal] | None = None
        lowest: dict[str, Decimal] = {}
        for doc in self._moving_documents():
            if now is None and doc.date > when:
                now, lowest = dict(balance), dict(balance)
            for (sku, wh), delta in _effects(doc):
                if wh == warehouse:
                    balance[sku] += delta
                    if now is not None:
                        lowest[sku] = min(lowest[sku], balance[sku])
        if now is None:
            return balance, dict(balance)
        return now, lowest

    # --- writes through the API (§1.6)

    def find_by_number(self, doc_type: str, number: str) -> Document | None:
        """The document with this number: (type, number) is the only key 1C's writes are idempotent on."""
        return self._by_number[document_type(doc_type).slug].get(number)

    def count_documents_by_number(self, doc_type: str) -> Counter[str]:
        """How many documents carry each number, for tests asserting "every number exactly once"."""
        return Counter(doc.number for doc in self._documents[document_type(doc_type).slug])

    def create_document(
        self,
        doc_type: str,
        number: str,
        when: datetime,
        warehouse: str,
        items: list[Line],
        now: datetime,
        counterparty: str | None = None,
        warehouse_to: str | None = None,
        notes: str | None = None,
    ) -> Document:
        """Record a draft (it moves no stock until `post_document`). Unknown skus become nomenclature items,
        as the exchange service creates them. The caller checks that the number is free."""
        slug = document_type(doc_type).slug
        if number in self._by_number[slug]:
            raise ValueError(f"{slug} {number} exists")
        for line in items:
            if line.sku:
                self._ensure_item(line.sku, line.name or line.sku)
        doc = Document(
            doc_type=slug,
            id=self._guid(),
            number=number,
            date=self._instant(when),
            status="draft",
            posted=False,
            counterparty=counterparty,
            warehouse=warehouse,
            warehouse_to=warehouse_to if slug == "transfer" else None,
            notes=notes,
            deleted=False,
            modified_at=now,
            items=items,
        )
        self._add_document(doc)
        self.revision += 1
        return doc

    def post_document(self, doc_type: str, document_id: str, now: datetime) -> Document:
        """Post a draft: it starts moving stock (positions it reaches first are created). Posting a posted
        document rewrites it (a new version) without moving stock twice. Stock control is off, as it often
        is in 1C: a shipment may take a position below zero."""
        doc = self.find_document(doc_type, document_id)
        if doc is None:
            raise KeyError(document_id)
        if doc.deleted:
            raise ValueError("a document marked for deletion cannot be posted")
        if not doc.posted:
            doc.status, doc.posted = "posted", True
            for (sku, warehouse), delta in _effects(doc):
                good = self._position(sku, warehouse, now)
                good.quantity += delta
                good.modified_at, good.version = now, good.version + 1
        doc.modified_at, doc.version = now, doc.version + 1
        self.revision += 1
        return doc

    def unpost_document(self, doc_type: str, document_id: str, now: datetime) -> Document:
        """Cancel posting: the document stays, a draft again, and stops moving stock."""
        return self._restate(doc_type, document_id, now, status="draft", posted=False)

    def set_deletion_mark(self, doc_type: str, document_id: str, mark: bool, now: datetime) -> Document:
        """Mark (or unmark) for deletion, the only removal 1C's exchange offers (§1.6): a marked document stops
        moving stock."""
        return self._restate(doc_type, document_id, now, deleted=mark)

    def set_notes(self, doc_type: str, document_id: str, notes: str | None, now: datetime) -> Document:
        return self._restate(doc_type, document_id, now, notes=notes)

    def next_number(self, doc_type: str) -> str:
        """The number 1C's autonumbering gives a document written without one."""
        return self._next_number(document_type(doc_type).slug)

    def _restate(self, doc_type: str, document_id: str, now: datetime, **changes: Any) -> Document:
        """Change header fields of a document, moving the goods by the difference in its stock effects."""
        doc = self.find_document(doc_type, document_id)
        if doc is None:
            raise KeyError(document_id)
        before = list(_effects(doc))
        for name, value in changes.items():
            setattr(doc, name, value)
        delta: dict[Position, Decimal] = {}
        for position, quantity in before:
            delta[position] = delta.get(position, ZERO) - quantity
        for position, quantity in _effects(doc):
            delta[position] = delta.get(position, ZERO) + quantity
        for (sku, warehouse), change in delta.items():
            if change:
                good = self._position(sku, warehouse, now)
                good.quantity += change
                good.modified_at, good.version = now, good.version + 1
        doc.modified_at, doc.version = now, doc.version + 1
        self.revision += 1
        return doc

    def upsert_good(self, sku: str, warehouse: str, now: datetime, changes: dict[str, Any]) -> tuple[Good, bool]:
        """Create or update a stock position; returns it and whether it was created.

        `changes` may hold `name`, `unit`, `price`, `code`, `deleted` (they belong to the nomenclature item, so
        every warehouse's position of the sku follows) and `quantity` (this position only). A quantity write is
        an opening-balance correction (1C's "ввод остатков"): the ledger stays consistent, so `balance_on`
        and the goods rows keep agreeing.
        """
        created = (sku, warehouse) not in self._goods_by_position
        good = self._position(sku, warehouse, now, changes.get("name"))
        if "quantity" in changes:
            delta = changes["quantity"] - good.quantity
            self._opening[(sku, warehouse)] += delta
            good.quantity = changes["quantity"]
        item_fields = {k: v for k, v in changes.items() if k in ("name", "unit", "price", "code", "deleted")}
        for other in self._positions_of(sku):
            for name, value in item_fields.items():
                setattr(other, name, value)
            if other is good or item_fields:
                other.modified_at, other.version = now, other.version + 1
        self.revision += 1
        return good, created

    def nomenclature(self) -> list[Item]:
        """The catalog of items: one per id among the valid goods rows (first position's values), then items
        that written documents introduced and no warehouse holds yet."""
        items: dict[str, Item] = {}
        for good in self._goods:
            if good.bad_kind is None and good.id not in items:
                items[good.id] = Item(
                    good.id, good.code, good.sku, good.name, good.unit, good.price, good.deleted, good.version
                )
        stocked = {item.sku for item in items.values()}
        return list(items.values()) + [i for i in self._unstocked.values() if i.sku not in stocked]

    def find_good(self, sku: str, warehouse: str) -> Good | None:
        """The goods row of a position, if the base holds it."""
        return self._goods_by_position.get((sku, warehouse))

    def item_by_sku(self, sku: str) -> Item | None:
        """The nomenclature item of a sku, if any position or written document knows it."""
        good = next(self._positions_of(sku), None)
        if good is None:
            return self._unstocked.get(sku)
        return Item(good.id, good.code, good.sku, good.name, good.unit, good.price, good.deleted, good.version)

    def balance_at(self, when: datetime) -> dict[Position, Decimal]:
        """Balance per (sku, warehouse) just before the instant `when` (1C's Balance(Period=…))."""
        cutoff = self._instant(when)
        balance = dict(self._opening)
        for doc in self._moving_documents():
            if doc.date >= cutoff:
                break
            for position, delta in _effects(doc):
                balance[position] = balance.get(position, ZERO) + delta
        return balance

    def _ensure_item(self, sku: str, name: str) -> None:
        """Register a sku no position or earlier write knows, as a new nomenclature item."""
        if sku in self._unstocked or any(True for _ in self._positions_of(sku)):
            return
        self._unstocked[sku] = Item(self._guid(), None, sku, name or sku, None, None, False, 1)

    def _positions_of(self, sku: str) -> Iterator[Good]:
        for warehouse in self.warehouses:
            good = self._goods_by_position.get((sku, warehouse))
            if good is not None:
                yield good

    def _position(self, sku: str, warehouse: str, now: datetime, name: str | None = None) -> Good:
        """The position's goods row; a new one (zero stock, the item's shared attributes) if there is none."""
        good = self._goods_by_position.get((sku, warehouse))
        if good is not None:
            return good
        sibling = next(self._positions_of(sku), None)
        item = self._unstocked.pop(sku, None)
        if sibling is not None:
            template = Item(
                sibling.id, sibling.code, sku, sibling.name, sibling.unit, sibling.price, sibling.deleted, 1
            )
        else:
            template = item or Item(self._guid(), None, sku, name or sku, None, None, False, 1)
        good = Good(
            template.id,
            template.code,
            sku,
            template.name,
            template.unit,
            template.price,
            ZERO,
            warehouse,
            template.deleted,
            now,
        )
        self._opening[(sku, warehouse)] = ZERO
        bisect.insort(self._goods, good, key=_goods_order)
        self._goods_by_position[(sku, warehouse)] = good
        return good

    # --- holdings

    def goods_holdings(self) -> list[Good]:
        """All goods rows the server serves (bad ones included), ordered by (sku, warehouse): the positions of
        every item with stock somewhere (its empty ones too), and once, with no warehouse and quantity 0, each item
        no warehouse holds (contract §1.3: 1C's balance register has nothing for it)."""
        rows: list[Good] = []
        for _, group in groupby(self._goods, key=lambda g: g.sku):
            positions = list(group)
            if any(g.quantity or g.bad_kind for g in positions):
                rows += positions
            else:
                rows.append(_without_stock(positions))
        for item in self._unstocked.values():
            row = Good(item.id, item.code, item.sku, item.name, item.unit, item.price, ZERO, None, item.deleted, None)
            row.version = item.version
            bisect.insort(rows, row, key=_goods_order)
        return rows

    def documents_holdings(
        self, doc_type: str, date_from: date | datetime | None = None, date_to: date | datetime | None = None
    ) -> list[Document]:
        """Documents of a type (bad ones included) ordered by (date, number); `date_from` inclusive, `date_to`
        exclusive; a plain date means local midnight, a naive datetime local time."""
        document_type(doc_type)
        keys = self._document_keys[doc_type]
        low = 0 if date_from is None else bisect.bisect_left(keys, (self._instant(date_from),))
        high = len(keys) if date_to is None else bisect.bisect_left(keys, (self._instant(date_to),))
        return self._documents[doc_type][low : max(low, high)]

    def find_document(self, doc_type: str, document_id: str) -> Document | None:
        """A document by its 1C reference, as `GET /documents/{type}/{id}` needs."""
        return self._by_id[document_type(doc_type).slug].get(document_id)

    def bad_record_keys(self) -> dict[str, str]:
        """Deliberately bad records: key → kind. Keys are `goods:<sku>|<warehouse>` or `<doc_type>:<number>`;
        where that key part is exactly what is missing (empty sku, missing number) the id stands in:
        `goods:id=<id>`, `<doc_type>:id=<id>`."""
        return dict(self._bad_keys)

    def balance_on(self, day: date) -> dict[Position, Decimal]:
        """Balance per (sku, warehouse) at the end of `day` (days before `start` give the opening one)."""
        cutoff = self._instant(day + timedelta(days=1))
        balance = dict(self._opening)
        for doc in self._moving_documents():
            if doc.date >= cutoff:
                break
            for position, delta in _effects(doc):
                balance[position] += delta
        return balance

    def holdings_summary(self) -> dict[str, Any]:
        """Counts and sums over the *valid* records (what a correct ETL lands), for quick comparisons."""
        goods = [g for g in self.goods_holdings() if g.bad_kind is None]
        documents: dict[str, int] = {}
        lines: dict[str, int] = {}
        totals: dict[str, Decimal] = {}
        for slug, docs in self._documents.items():
            valid = [d for d in docs if d.bad_kind is None]
            documents[slug] = len(valid)
            lines[slug] = sum(len(d.items) for d in valid)
            totals[slug] = sum((line.total for d in valid for line in d.items if line.total), Decimal("0.00"))
        return {
            "goods": len(goods),
            "goods_quantity": sum((g.quantity for g in goods), ZERO),
            "documents": documents,
            "lines": lines,
            "totals": totals,
            "bad_records": len(self._bad_keys),
        }

    # --- helpers

    def _add_document(self, doc: Document) -> None:
        key = (doc.date, doc.number)
        keys = self._document_keys[doc.doc_type]
        index = bisect.bisect_right(keys, key)
        keys.insert(index, key)
        self._documents[doc.doc_type].insert(index, doc)
        self._by_id[doc.doc_type][doc.id] = doc
        if doc.number:
            self._by_number[doc.doc_type].setdefault(doc.number, doc)

    def _moving_documents(self) -> list[Document]:
        """Every stock-moving document in date order (ties: type order, then number)."""
        moving = [doc for docs in self._documents.values() for doc in docs if doc.moves_stock]
        moving.sort(key=lambda d: d.date)
        return moving

    def _destination(self, warehouse: str) -> str:
        """Another warehouse for a transfer (the same one only in a one-warehouse base, which has no valid
        transfers anyway)."""
        return self._rng.choice([w for w in self.warehouses if w != warehouse] or [warehouse])

    def _next_number(self, doc_type: str) -> str:
        """The next free number of the type (numbers written through the API are skipped, never reused)."""
        while True:
            self._counters[doc_type] += 1
            number = f"{words.DOCUMENT_PREFIXES[doc_type]}-{self._counters[doc_type]:06d}"
            if number not in self._by_number[doc_type]:
                return number

    def _quantity(self, item: _Item, low: int, high: int) -> Decimal:
        """A quantity in [low, high] as the unit allows it: whole pieces, metres to 0.1, kilograms to the
        gram; always with 3 decimals."""
        steps = 1000 // item.grams_per_step
        count = low * steps + self._below((high - low) * steps + 1)
        return Decimal(count * item.grams_per_step).scaleb(-3)

    def _distinct_items(self, count: int) -> list[_Item]:
        """Up to `count` different random items (random.sample is several times slower on big catalogs)."""
        size = len(self._items)
        if count >= size:
            return self._rng.sample(self._items, size)
        chosen: dict[int, None] = {}
        while len(chosen) < count:
            chosen[self._below(size)] = None
        return [self._items[index] for index in chosen]

    def _below(self, n: int) -> int:
        """A random int in [0, n): the hot paths draw millions, and randrange costs four times as much."""
        return int(self._rng.random() * n)

    def _guid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _edited_after(self, when: datetime, seconds: int) -> datetime:
        """When a document dated `when` was last written: `seconds` later, but never after the end of the base's
        range, the moment the base stands for. 1C stamps a write with its clock at the time of the write, so no
        record of a well-run base is stamped in the future (the client warns about those); a late stamp is
        folded back into [when, end) rather than drawn again, so the generator's random sequence is unchanged."""
        end = self._local(self.start + timedelta(days=self.days), 0)
        stamp = when + timedelta(seconds=seconds)
        if stamp <= end:
            return stamp
        span = int((end - when).total_seconds())
        return when + timedelta(seconds=seconds % span) if span > 0 else when

    def _local(self, day: date, seconds: int) -> datetime:
        """Local wall-clock time `seconds` after midnight of `day` (1C stores local time, whole seconds)."""
        return (datetime.combine(day, time()) + timedelta(seconds=seconds)).replace(tzinfo=self._tz)

    def _instant(self, value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(self._tz) if value.tzinfo else value.replace(tzinfo=self._tz)
        return self._local(value, 0)


def line_total(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """quantity × unit_price rounded half-up to kopecks, the way 1C computes a line sum."""
    return (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


def _goods_order(good: Good) -> tuple[str, str]:
    return good.sku, good.warehouse or ""


def _without_stock(positions: list[Good]) -> Good:
    """The one row of an item whose every position is empty: no warehouse, quantity 0, its latest change."""
    first = positions[0]
    changed = [g.modified_at for g in positions if g.modified_at is not None]
    return Good(
        first.id, first.code, first.sku, first.name, first.unit, first.price, ZERO, None, first.deleted,
        max(changed, default=None), version=max(g.version for g in positions),
    )  # fmt: skip


def _effects(doc: Document) -> Iterable[tuple[Position, Decimal]]:
    """How a document changes stock, per position (nothing unless it moves stock; an empty row moves nothing)."""
    if not doc.moves_stock:
        return ()
    effect = DOCUMENT_TYPE_BY_SLUG[doc.doc_type].effect
    lines = [(line.sku, line.quantity) for line in doc.items if line.sku is not None]
    if effect is StockEffect.INCREASE:
        return [((sku, doc.warehouse), quantity) for sku, quantity in lines]
    if effect is StockEffect.DECREASE:
        return [((sku, doc.warehouse), -quantity) for sku, quantity in lines]
    if effect is StockEffect.TRANSFER:
        moves: list[tuple[Position, Decimal]] = []
        for sku, quantity in lines:
            moves += [
                ((sku, doc.warehouse), -quantity),
                ((sku, doc.warehouse_to or ""), quantity),
            ]
        return moves
    return ()


def _document_key(doc: Document) -> str:
    return f"{doc.doc_type}:id={doc.id}" if not doc.number else f"{doc.doc_type}:{doc.number}"


def _warehouse_codes(count: int) -> tuple[str, ...]:
    named = words.WAREHOUSES[:count]
    return named + tuple(f"wh-{index:02d}" for index in range(len(named) + 1, count + 1))
