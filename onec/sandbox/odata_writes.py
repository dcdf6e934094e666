"""The writing side of 1C's standard OData interface (§2): create a document, post or unpost it, change its
deletion mark or comment with optimistic locking.

Why it matters: OData writes are where 1C differs most from a generic OData server. Objects are created whole
(the `Товары` tabular section in the same body), references are `…_Key` GUIDs that must exist, posting is an
action (`POST Document_X(guid'…')/Post`), a lost update is caught by `If-Match: <DataVersion>` (412), and a
business error (a taken number, an unknown reference, a bad line) is a 500 with the v3 error body, not a 400.
There is no `$batch`: one request per object. `1C_OData-DataLoadMode: true` is accepted; the sandbox applies
the same checks with or without it.

The checks themselves are the exchange service's (`Writer`): one set of rules for both interfaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from onec.sandbox.data import Document, SandboxData
from onec.sandbox.odata_model import DOCUMENT_NAMES, TABULAR_SECTION, ODataModel
from onec.sandbox.protocol import HttpError, SandboxRequest, SandboxResponse
from onec.sandbox.writes import Exists, Invalid, Writer, read_json

SLUGS_BY_SET = {f"Document_{name}": slug for slug, name in DOCUMENT_NAMES.items()}
_OBJECT = re.compile(r"^(?P<set>Document_[^()/]+)(?:\(guid'(?P<key>[0-9a-fA-F-]{36})'\))?(?:/(?P<action>\w+))?$")
_PATCHABLE = {"DeletionMark", "Комментарий"}
ODATA_JSON = "application/json;odata=minimalmetadata;charset=utf-8"


class ODataWriter:
    """POST/PATCH below the OData prefix; every method expects the caller to hold the engine's lock."""

    def __init__(self, model: ODataModel, writer: Writer, now: Callable[[], datetime]) -> None:
        self.model = model
        self.writer = writer
        self._now = now

    @property
    def data(self) -> SandboxData:
        return self.model.data

    def write(self, request: SandboxRequest, rest: str, root: str) -> SandboxResponse:
        match = _OBJECT.match(rest)
        slug = SLUGS_BY_SET.get(match["set"]) if match else None
        if match is None or slug is None:
            if rest.startswith("$batch"):
                raise HttpError(400, "-1", "Пакетные запросы ($batch) не поддерживаются")
            raise HttpError(405, "-1", f"Запись в «{rest}» не поддерживается", headers={"allow": "GET"})
        key, action = match["key"], match["action"]
        if request.method == "POST" and key is None and action is None:
            return self._create(slug, match["set"], request, root)
        if key is None:
            raise HttpError(405, "-1", f"Метод {request.method} не поддерживается для «{rest}»")
        doc = self._document(slug, key.lower())
        if request.method == "POST" and action in ("Post", "Unpost"):
            self._check_version(request, doc)
            self._post(slug, doc, action == "Post")
            return SandboxResponse(200, {"content-type": ODATA_JSON}, b"")
        if request.method == "PATCH" and action is None:
            self._check_version(request, doc)
            return self._entity(200, self._patch(slug, doc, read_json(request.body)), match["set"], root)
        raise HttpError(405, "-1", f"Метод {request.method} не поддерживается для «{rest}»")

    # --- create

    def _create(self, slug: str, set_name: str, request: SandboxRequest, root: str) -> SandboxResponse:
        body = read_json(request.body)
        if not isinstance(body, dict):
            raise HttpError(400, "-1", "Ожидался JSON-объект документа")
        try:
            doc = self.writer.create_document(slug, self._payload(slug, body))
        except Invalid as error:
            raise _business(str(error)) from None
        except Exists as error:
            raise _business(f"Значение поля «Номер» не уникально: {error.document.number}") from None
        if body.get("DeletionMark") is True:
            doc = self.data.set_deletion_mark(slug, doc.id, True, self._now())
        response = self._entity(201, doc, set_name, root)
        # Header values are ASCII: the Cyrillic set name goes percent-encoded, as 1C sends it.
        response.headers["location"] = quote(f"{root}/{set_name}(guid'{doc.id}')", safe="/:'()")
        return response

    def _payload(self, slug: str, body: dict[str, Any]) -> dict[str, Any]:
        """The OData body in the exchange service's shape, references resolved to names."""
        warehouses = {self.model.ref("warehouse", code): code for code in self.data.warehouses}
        if slug == "transfer":
            warehouse = self._name(warehouses, body.get("СкладОтправитель_Key"), "Склад-отправитель")
            destination = self._name(warehouses, body.get("СкладПолучатель_Key"), "Склад-получатель")
        else:
            warehouse, destination = self._name(warehouses, body.get("Склад_Key"), "Склад"), None
        parties = {row["Ref_Key"]: row["Description"] for row in self.model.counterparties()}
        counterparty = None
        if body.get("Контрагент_Key") not in (None, "00000000-0000-0000-0000-000000000000"):
            counterparty = self._name(parties, body.get("Контрагент_Key"), "Контрагент")
        skus = {item.id: item.sku for item in self.data.nomenclature()}
        lines = body.get(TABULAR_SECTION)
        items = [self._line(skus, row, index) for index, row in enumerate(lines, 1)] if isinstance(lines, list) else []
        date = body.get("Date")
        return {
            "number": body.get("Number") or self.data.next_number(slug),
            "date": None if date in (None, "0001-01-01T00:00:00") else date,
            "warehouse": warehouse,
            "warehouse_to": destination,
            "counterparty": counterparty,
            "notes": body.get("Комментарий") or None,
            "items": items,
        }

    def _line(self, skus: dict[str, str], row: Any, index: int) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise _business(f"Строка {index} табличной части «{TABULAR_SECTION}»: ожидался JSON-объект")
        return {
            "line": row.get("LineNumber", index),
            "sku": self._name(skus, row.get("Номенклатура_Key"), f"Номенклатура (строка {index})"),
            "quantity": row.get("Количество"),
            "unit_price": row.get("Цена"),
            "total": row.get("Сумма"),
            "book_quantity": row.get("КоличествоУчет"),
        }

    @staticmethod
    def _name(names: dict[str, str], key: Any, label: str) -> str:
        if not isinstance(key, str) or key.lower() not in names:
            raise _business(f"Не найден объект по ссылке «{label}»: {key}")
        return names[key.lower()]

    # --- change

    def _post(self, slug: str, doc: Document, post: bool) -> None:
        if post:
            try:
                self.writer.announce_posting(self.data.post_document(slug, doc.id, self._now()))
            except ValueError:
                raise _business("Помеченный на удаление документ не может быть проведен") from None
        else:
            self.data.unpost_document(slug, doc.id, self._now())

    def _patch(self, slug: str, doc: Document, body: Any) -> Document:
        if not isinstance(body, dict):
            raise HttpError(400, "-1", "Ожидался JSON-объект с изменяемыми полями")
        current = self.model.document_row(doc)
        unsupported = [name for name in body if name not in _PATCHABLE and body[name] != current.get(name)]
        if unsupported:
            raise _business(f"Изменение полей {', '.join(unsupported)} через OData песочница не поддерживает")
        if "DeletionMark" in body and bool(body["DeletionMark"]) != doc.deleted:
            doc = self.data.set_deletion_mark(slug, doc.id, bool(body["DeletionMark"]), self._now())
            if doc.deleted:
                self.writer.announce_deletion(doc)
        if "Комментарий" in body:
            doc = self.data.set_notes(slug, doc.id, body["Комментарий"] or None, self._now())
        return doc

    def _check_version(self, request: SandboxRequest, doc: Document) -> None:
        """Optimistic locking: `If-Match` must name the current DataVersion (or be `*`)."""
        expected = request.header("if-match")
        if expected is None or expected.strip() in ("*", ""):
            return
        if expected.strip().strip('"').removeprefix("W/").strip('"') != self.model.document_row(doc)["DataVersion"]:
            raise HttpError(412, "-1", "Объект изменен другим пользователем: версия данных не совпадает")

    def _document(self, slug: str, key: str) -> Document:
        doc = self.data.find_document(slug, key)
        if doc is None:
            raise HttpError(404, "-1", f"Не найден объект с ключом guid'{key}'")
        return doc

    def _entity(self, status: int, doc: Document, set_name: str, root: str) -> SandboxResponse:
        row = {"odata.metadata": f"{root}/$metadata#{set_name}/@Element", **self.model.document_row(doc)}
        return SandboxResponse(status, {"content-type": ODATA_JSON}, orjson.dumps(row))


def _business(message: str) -> HttpError:
    """1C answers a refused write (its code raised an exception) with a 500."""
    return HttpError(500, "-1", message)
