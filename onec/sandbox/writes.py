"""The writing side of the exchange service (§1.6): create documents one by one or in batches, post drafts,
write goods.

Why it is strict in the way 1C is: (type, number) is the *only* idempotency the server offers, so a client that
repeats a timed-out batch must see `exists` rather than a second document, and a validation error must come back
per document, in Russian, without spoiling the rest of the batch. The handlers run under the engine's lock, so
two concurrent batches carrying the same number can never both create it.

Parsing is deliberately lenient where 1C is (numbers as strings, decimal commas, a missing total is computed)
and strict where 1C is (no number, no lines, a total that is not quantity × price, an unknown warehouse). An
unknown sku is fine: the service creates the nomenclature item, as real exchange handlers do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from onec.sandbox.data import CENT, MILLI, Document, Line, SandboxData, line_total
from onec.sandbox.protocol import HttpError, SandboxResponse, json_response
from onec.sandbox.render import EMPTY_DATE
from onec.schema import document_type

TOTAL_TOLERANCE = Decimal("0.005")
VALIDATION_ERROR = "VALIDATION_ERROR"


@dataclass(frozen=True)
class WriteLimits:
    """The server's batch limits: items are document lines (goods: rows), bytes the raw request body."""

    max_items: int
    max_bytes: int

    def check_bytes(self, body: bytes) -> None:
        if len(body) > self.max_bytes:
            raise self._too_large(f"Размер запроса {len(body)} байт превышает допустимый")

    def check_items(self, count: int) -> None:
        if count > self.max_items:
            raise self._too_large(f"Число строк в запросе ({count}) превышает допустимое")

    def _too_large(self, message: str) -> HttpError:
        return HttpError(413, "BATCH_TOO_LARGE", message, {"max_items": self.max_items, "max_bytes": self.max_bytes})


class Invalid(Exception):
    """A record 1C refuses to write; the message is what its handler would say."""


class Exists(Exception):
    """The (type, number) is taken: `document` is the one holding it."""

    def __init__(self, document: Document) -> None:
        super().__init__(f"Документ с номером {document.number} уже существует")
        self.document = document


@dataclass(frozen=True)
class DocumentDraft:
    """A validated document as the client sent it."""

    number: str
    when: datetime | None
    warehouse: str
    warehouse_to: str | None
    counterparty: str | None
    notes: str | None
    items: list[Line]


def read_json(body: bytes) -> Any:
    """The request body, floats as Decimal (money must not pass through binary floating point)."""
    try:
        return json.loads(body or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "BAD_REQUEST", "Тело запроса не является корректным JSON") from None


def batch_list(payload: Any, key: str) -> list[Any]:
    """`{"documents": [...]}` / `{"goods": [...]}`, or a 400."""
    rows = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise HttpError(400, "BAD_REQUEST", f"Ожидался JSON-объект с массивом {key}")
    return rows


def document_item_count(documents: list[Any]) -> int:
    """How many items a batch of documents carries for the limit: its lines."""
    return sum(len(d["items"]) for d in documents if isinstance(d, dict) and isinstance(d.get("items"), list))


Emit = Callable[[str, dict[str, Any]], None]


def _ignore(event: str, data: dict[str, Any]) -> None:
    return None


class Writer:
    """Applies writes to the data; every method expects the caller to hold the engine's lock. `emit` hears of
    every change as a §1.8 event with the seed's payload (the engine queues webhook deliveries with it)."""

    def __init__(self, data: SandboxData, now: Callable[[], datetime], emit: Emit = _ignore) -> None:
        self.data = data
        self._now = now
        self._emit = emit
        self._tz = ZoneInfo(data.timezone)

    # --- documents

    def create_one(self, doc_type: str, payload: Any) -> SandboxResponse:
        """201 with the draft, 409 DOCUMENT_EXISTS, or 400 VALIDATION_ERROR."""
        try:
            draft = self._draft(doc_type, payload)
        except Invalid as error:
            raise HttpError(400, VALIDATION_ERROR, str(error)) from None
        existing = self.data.find_by_number(doc_type, draft.number)
        if existing is not None:
            raise HttpError(
                409,
                "DOCUMENT_EXISTS",
                f"Документ с номером {draft.number} уже существует",
                {"existing_id": existing.id, "number": draft.number},
            )
        doc = self._create(doc_type, draft)
        body = {"id": doc.id, "document_number": doc.number, "status": doc.status, "posted": doc.posted}
        return json_response(201, orjson.dumps(body))

    def create_batch(self, doc_type: str, documents: list[Any], apply: int | None = None) -> SandboxResponse:
        """One result per document, in order; only the first `apply` documents are looked at (the rest are
        left for the caller to fail: see the engine's `partial_batch` fault)."""
        results = [self._batch_result(doc_type, payload) for payload in documents[:apply]]
        return json_response(200, orjson.dumps({"results": results}))

    def _batch_result(self, doc_type: str, payload: Any) -> dict[str, Any]:
        number = payload.get("number") if isinstance(payload, dict) else None
        try:
            draft = self._draft(doc_type, payload)
        except Invalid as error:
            return _result(number, "error", None, VALIDATION_ERROR, str(error))
        existing = self.data.find_by_number(doc_type, draft.number)
        if existing is not None:
            message = f"Документ с номером {draft.number} уже существует"
            return _result(draft.number, "exists", existing.id, "DOCUMENT_EXISTS", message)
        return _result(draft.number, "created", self._create(doc_type, draft).id, None, None)

    def announce_posting(self, doc: Document) -> None:
        """document.posted (and inventory.synced for a stock count), as 1C announces a posting."""
        posted_date = doc.modified_at.strftime("%Y-%m-%dT%H:%M:%S") if doc.modified_at else None
        self._emit("document.posted", {"document_id": doc.id, "type": doc.doc_type, "posted_date": posted_date})
        if doc.doc_type == "inventory":
            self._emit("inventory.synced", {"warehouse": doc.warehouse, "items_counted": len(doc.items)})

    def announce_deletion(self, doc: Document) -> None:
        """document.deleted: the deletion mark is 1C's only removal (§1.6)."""
        self._emit("document.deleted", {"document_id": doc.id, "type": doc.doc_type})

    def create_document(self, doc_type: str, payload: Any) -> Document:
        """Validate and create one draft; raises Invalid, or Exists when the number is taken."""
        draft = self._draft(doc_type, payload)
        existing = self.data.find_by_number(doc_type, draft.number)
        if existing is not None:
            raise Exists(existing)
        return self._create(doc_type, draft)

    def post(self, doc_type: str, document_id: str) -> SandboxResponse:
        try:
            doc = self.data.post_document(doc_type, document_id, self._now())
        except KeyError:
            raise HttpError(
                404, "DOCUMENT_NOT_FOUND", f"Документ {document_id} не найден", {"id": document_id}
            ) from None
        except ValueError:
            raise HttpError(409, "DOCUMENT_DELETED", "Документ помечен на удаление и не может быть проведен") from None
        self.announce_posting(doc)
        return json_response(200, orjson.dumps({"id": doc.id, "posted": True}))

    def _create(self, doc_type: str, draft: DocumentDraft) -> Document:
        now = self._now()
        doc = self.data.create_document(
            doc_type,
            draft.number,
            draft.when or now,
            draft.warehouse,
            draft.items,
            now,
            counterparty=draft.counterparty,
            warehouse_to=draft.warehouse_to,
            notes=draft.notes,
        )
        self._emit("document.created", {"document_id": doc.id, "type": doc.doc_type, "number": doc.number})
        return doc

    def _draft(self, doc_type: str, payload: Any) -> DocumentDraft:
        if not isinstance(payload, dict):
            raise Invalid("Документ должен быть JSON-объектом")
        kind = document_type(doc_type)
        number = _text(payload.get("number"))
        if not number:
            raise Invalid("Не заполнен номер документа")
        warehouse = self._warehouse(payload.get("warehouse"), "Склад")
        warehouse_to = None
        if kind.slug == "transfer":
            warehouse_to = self._warehouse(payload.get("warehouse_to"), "Склад-получатель")
            if warehouse_to == warehouse:
                raise Invalid("Склад-получатель совпадает со складом-отправителем")
        items = payload.get("items")
        if not isinstance(items, list) or not items:
            raise Invalid("Не заполнена табличная часть «Товары»: документ без строк")
        counterparty_field = kind.counterparty_field or "counterparty"
        return DocumentDraft(
            number=number,
            when=self._date(payload.get("date")),
            warehouse=warehouse,
            warehouse_to=warehouse_to,
            counterparty=_text(payload.get(counterparty_field, payload.get("counterparty"))),
            notes=_text(payload.get("notes")),
            items=[self._line(kind.slug, index, row) for index, row in enumerate(items, 1)],
        )

    def _line(self, doc_type: str, index: int, row: Any) -> Line:
        if not isinstance(row, dict):
            raise Invalid(f"Строка {index}: ожидался JSON-объект")
        sku = _text(row.get("sku"))
        if not sku:
            raise Invalid(f"Строка {index}: не заполнен артикул")
        quantity = _decimal(row.get("quantity"), index, "количество").quantize(MILLI, ROUND_HALF_UP)
        inventory = doc_type == "inventory"
        if quantity < 0 or (quantity == 0 and not inventory):
            raise Invalid(f"Строка {index}: количество должно быть больше нуля")
        unit_price = _decimal(row.get("unit_price"), index, "цена").quantize(CENT, ROUND_HALF_UP)
        if unit_price < 0:
            raise Invalid(f"Строка {index}: цена не может быть отрицательной")
        expected = line_total(quantity, unit_price)
        total = expected
        if row.get("total") is not None:
            total = _decimal(row["total"], index, "сумма")
            if abs(total - quantity * unit_price) > TOTAL_TOLERANCE:
                raise Invalid(f"Строка {index}: сумма {total} не равна количеству, умноженному на цену ({expected})")
            total = total.quantize(CENT, ROUND_HALF_UP)
        book = None
        if inventory and row.get("book_quantity") is not None:
            book = _decimal(row["book_quantity"], index, "количество по учету").quantize(MILLI, ROUND_HALF_UP)
        line = _line_number(row.get("line"), index)
        return Line(line, sku, _text(row.get("name")) or self._known_name(sku), quantity, unit_price, total, book)

    def _known_name(self, sku: str) -> str:
        item = self.data.item_by_sku(sku)
        return item.name if item is not None else sku

    def _warehouse(self, value: Any, label: str) -> str:
        warehouse = _text(value)
        if not warehouse:
            raise Invalid(f"Не заполнено поле «{label}»")
        if warehouse not in self.data.warehouses:
            raise Invalid(f"{label} «{warehouse}» не найден в справочнике «Склады»")
        return warehouse

    def _date(self, value: Any) -> datetime | None:
        text = _text(value)
        if not text or text == EMPTY_DATE:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(f"Неверная дата документа: {text}") from None
        return parsed.astimezone(self._tz) if parsed.tzinfo else parsed.replace(tzinfo=self._tz)

    # --- goods

    def goods_batch(self, rows: list[Any], apply: int | None = None) -> SandboxResponse:
        """created | updated | error per (sku, warehouse), in order; only the first `apply` rows are looked at."""
        results = [self._goods_result(row) for row in rows[:apply]]
        return json_response(200, orjson.dumps({"results": results}))

    def _goods_result(self, row: Any) -> dict[str, Any]:
        sku = _text(row.get("sku")) if isinstance(row, dict) else None
        warehouse = _text(row.get("warehouse")) if isinstance(row, dict) else None
        base = {"sku": sku, "warehouse": warehouse}
        try:
            sku, warehouse, changes = self._good_changes(row)
        except Invalid as error:
            return {**base, "status": "error", "id": None, "code": VALIDATION_ERROR, "message": str(error)}
        before = self.data.find_good(sku, warehouse)
        old = before.quantity if before is not None else Decimal(0)
        good, created = self.data.upsert_good(sku, warehouse, self._now(), changes)
        if good.quantity != old or created:
            change = {"sku": sku, "old_qty": str(old), "new_qty": str(good.quantity), "warehouse": warehouse}
            self._emit("goods.updated", change)
        status = "created" if created else "updated"
        return {**base, "status": status, "id": good.id, "code": None, "message": None}

    def _good_changes(self, row: Any) -> tuple[str, str, dict[str, Any]]:
        if not isinstance(row, dict):
            raise Invalid("Строка товаров должна быть JSON-объектом")
        sku = _text(row.get("sku"))
        if not sku:
            raise Invalid("Не заполнен артикул")
        warehouse = self._warehouse(row.get("warehouse"), "Склад")
        changes: dict[str, Any] = {}
        for name in ("name", "unit", "code"):
            if name in row:
                changes[name] = _text(row[name])
        if "name" in changes and not changes["name"]:
            raise Invalid("Не заполнено наименование")
        if "quantity" in row:
            quantity = _decimal(row["quantity"], None, "количество").quantize(MILLI, ROUND_HALF_UP)
            if quantity < 0:
                raise Invalid("Количество не может быть отрицательным")
            changes["quantity"] = quantity
        if "price" in row:
            price = None if row["price"] is None else _decimal(row["price"], None, "цена")
            changes["price"] = None if price is None else price.quantize(CENT, ROUND_HALF_UP)
        if "deleted" in row:
            changes["deleted"] = bool(row["deleted"])
        if self.data.item_by_sku(sku) is None and not changes.get("name"):
            raise Invalid(f"Номенклатура с артикулом {sku} не найдена, а наименование не заполнено")
        return sku, warehouse, changes


def _result(number: Any, status: str, doc_id: str | None, code: str | None, message: str | None) -> dict[str, Any]:
    return {"number": number, "status": status, "id": doc_id, "code": code, "message": message}


def _text(value: Any) -> str | None:
    """A string field as 1C reads it: trailing padding trimmed, empty means not filled."""
    if value is None:
        return None
    text = str(value).rstrip()
    return text or None


def _decimal(value: Any, line: int | None, label: str) -> Decimal:
    where = f"Строка {line}: " if line is not None else ""
    if isinstance(value, bool) or value is None:
        raise Invalid(f"{where}не заполнено поле «{label}»")
    try:
        number = Decimal(value.strip().replace(",", ".")) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise Invalid(f"{where}неверное число в поле «{label}»: {value}") from None
    if not number.is_finite():
        raise Invalid(f"{where}неверное число в поле «{label}»: {value}")
    return number


def _line_number(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
