"""A minimal 1C OData v3 server over a `SandboxData`, as an httpx handler, for the OData source's unit tests.

It answers only what the source asks (catalogs, SliceLast, Balance, documents with `Товары`, `/$count`) and is
strict where real 1C is treacherous: a `+` in `$filter` is a plus (so the filter fails to parse), `$inlinecount`
is refused, and a listing paged without `$orderby` comes back in a different order on every request.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import orjson

from onec.sandbox.data import Document, SandboxData

ROOT = "/trade/odata/standard.odata/"
EMPTY = "00000000-0000-0000-0000-000000000000"
ENTITIES = {
    "goods-receipt": "Document_ПриходТовара",
    "shipment": "Document_РасходТовара",
    "transfer": "Document_ПеремещениеТовара",
    "adjustment-up": "Document_ОприходованиеИзлишковТоваров",
    "adjustment-down": "Document_СписаниеНедостачТоваров",
    "inventory": "Document_ИнвентаризацияТовара",
}
_WINDOW = re.compile(r"^Date ge datetime'([^']+)' and Date lt datetime'([^']+)'$")


def ref(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{name}"))


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class FakeOdata:
    """`httpx.MockTransport(FakeOdata(data))`; `requests` records every URL as sent."""

    def __init__(self, data: SandboxData) -> None:
        self.data = data
        self.requests: list[httpx.URL] = []
        self._shuffle = random.Random(7)
        self.items = {i.sku: i for i in data.nomenclature()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        raw_query = request.url.query.decode("ascii")
        if "+" in raw_query:
            return _error(400, "Ошибка разбора выражения $filter: '+'")
        options = dict(parse_qsl(raw_query, keep_blank_values=True))
        if "$inlinecount" in options:
            return _error(400, "$inlinecount не поддерживается этим клиентом")
        name = unquote(request.url.path.removeprefix(ROOT))
        counting = name.endswith("/$count")
        rows = self._rows(name.removesuffix("/$count"), options.get("$filter"))
        if rows is None:
            return _error(404, f"Не найден ресурс {name}")
        if counting:
            return httpx.Response(200, text=str(len(rows)), headers={"Content-Type": "text/plain; charset=utf-8"})
        order = options.get("$orderby")
        if order:
            fields = order.split(",")
            rows = sorted(rows, key=lambda row: tuple(str(row.get(f)) for f in fields))
        else:
            rows = list(rows)
            self._shuffle.shuffle(rows)
        skip, top = int(options.get("$skip", 0)), options.get("$top")
        rows = rows[skip : skip + int(top)] if top is not None else rows[skip:]
        body = {"odata.metadata": f"http://1c.test{ROOT}$metadata#{name}", "value": rows}
        return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})

    def _rows(self, name: str, where: str | None) -> list[dict[str, Any]] | None:
        tables: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "Catalog_Склады": self._warehouses,
            "Catalog_ЕдиницыИзмерения": self._units,
            "Catalog_Контрагенты": self._counterparties,
            "Catalog_Номенклатура": self._items,
            "InformationRegister_ЦеныНоменклатуры/SliceLast()": self._prices,
            "AccumulationRegister_ТоварыНаСкладах/Balance()": self._balance,
        }
        if name in tables:
            return tables[name]()
        slug = next((slug for slug, entity in ENTITIES.items() if entity == name), None)
        if slug is None:
            return None
        window = _WINDOW.match(where or "")
        if window is None:
            raise AssertionError(f"unexpected $filter {where!r}")
        start, end = (datetime.fromisoformat(text) for text in window.groups())
        return [self._document(doc) for doc in self.data.documents_holdings(slug, start, end)]

    def _warehouses(self) -> list[dict[str, Any]]:
        return [
            {"Ref_Key": ref("wh", w), "Code": f"{n:03d}", "Description": w, "DeletionMark": False}
            for n, w in enumerate(self.data.warehouses, 1)
        ]

    def _units(self) -> list[dict[str, Any]]:
        units = {i.unit for i in self.items.values() if i.unit}
        return [{"Ref_Key": ref("unit", u), "Description": u} for u in units]

    def _counterparties(self) -> list[dict[str, Any]]:
        names = {d.counterparty for s in ENTITIES for d in self.data.documents_holdings(s) if d.counterparty}
        return [{"Ref_Key": ref("cp", n), "Description": n} for n in names]

    def _items(self) -> list[dict[str, Any]]:
        folder = {
            "Ref_Key": ref("folder", "Молочные"),
            "IsFolder": True,
            "Description": "Молочные",
            "Code": "",
            "Артикул": None,
            "ЕдиницаИзмерения_Key": None,
            "DeletionMark": False,
            "DataVersion": "AAA=",
        }
        return [folder] + [
            {
                "Ref_Key": i.id,
                "Code": i.code or "",
                "Description": i.name,
                "Артикул": i.sku,
                "ЕдиницаИзмерения_Key": ref("unit", i.unit) if i.unit else EMPTY,
                "DeletionMark": i.deleted,
                "IsFolder": False,
                "DataVersion": f"AAAAA{i.version}==",
            }
            for i in self.items.values()
        ]

    def _prices(self) -> list[dict[str, Any]]:
        return [{"Номенклатура_Key": i.id, "Цена": money(i.price)} for i in self.items.values() if i.price is not None]

    def _balance(self) -> list[dict[str, Any]]:
        return [
            {"Номенклатура_Key": g.id, "Склад_Key": ref("wh", g.warehouse), "КоличествоBalance": float(g.quantity)}
            for g in self.data.goods_holdings()
            if g.quantity != 0
        ]

    def _document(self, doc: Document) -> dict[str, Any]:
        row: dict[str, Any] = {
            "Ref_Key": doc.id,
            "DataVersion": f"AAAAA{doc.version}==",
            "DeletionMark": doc.deleted,
            "Number": doc.number,
            "Date": doc.date.strftime("%Y-%m-%dT%H:%M:%S"),
            "Posted": doc.posted,
            "Комментарий": doc.notes or "",
            "Товары": [
                {
                    "LineNumber": str(line.line),
                    "Номенклатура_Key": self.items[line.sku].id,
                    "Количество": float(line.quantity),
                    "Цена": money(line.unit_price),
                    "Сумма": money(line.total),
                    **({"КоличествоУчет": float(line.book_quantity)} if line.book_quantity is not None else {}),
                }
                for line in doc.items
            ],
        }
        if doc.doc_type == "transfer":
            row["СкладОтправитель_Key"] = ref("wh", doc.warehouse)
            row["СкладПолучатель_Key"] = ref("wh", doc.warehouse_to or "")
        else:
            row["Склад_Key"] = ref("wh", doc.warehouse)
        if doc.counterparty:
            row["Контрагент_Key"] = ref("cp", doc.counterparty)
        return row


def _error(status: int, message: str) -> httpx.Response:
    body = {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": message}}}
    return httpx.Response(status, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
