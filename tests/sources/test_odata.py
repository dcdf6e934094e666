"""The OData source against a strict fake 1C OData server: encoding, paging, counting, mapping, failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onec.config import AuthMethod, ConfigError, Secret, Settings
from onec.http import OneCAuthError, OneCHTTPError, OneCSession
from onec.sandbox.data import SandboxData
from onec.sources import open_source
from onec.sources.odata import OdataSource, datetime_literal, odata_root, query_string
from onec.sources.odata_model import OdataModel
from onec.validation import check_documents
from tests.sources.odata_fake import ENTITIES, ROOT, FakeOdata

BASE = "http://1c.test/trade/hs/exchange"
START, END = date(2026, 1, 1), date(2026, 1, 8)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=5, documents=150, start=START, days=(END - START).days)


@pytest.fixture
def source_for() -> Iterator[Callable[..., OdataSource]]:
    sessions: list[OneCSession] = []

    def build(handler: Handler, model: OdataModel | None = None, **settings: Any) -> OdataSource:
        values: dict[str, Any] = {"base_url": BASE, "rate_limit": 1e6, "max_retries": 3, **settings}
        session = OneCSession(Settings(**values), transport=httpx.MockTransport(handler), sleep=lambda _: None)
        sessions.append(session)
        return OdataSource(session, root=odata_root(session.settings), model=model, page_size=20)

    yield build
    for session in sessions:
        session.close()


def _all(batches: Iterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [record for batch in batches for record in batch]


# --- encoding


@given(st.text(min_size=1, max_size=40))
def test_query_values_never_carry_a_plus_and_round_trip(value: str) -> None:
    encoded = query_string({"$filter": value})
    assert "+" not in encoded.removeprefix("$filter=").replace("%2B", "")
    assert " " not in encoded
    assert unquote(encoded.removeprefix("$filter=")) == value


def test_literals_and_root() -> None:
    assert datetime_literal(date(2026, 1, 31)) == "datetime'2026-01-31T00:00:00'"
    settings = Settings(base_url="https://erp.example/trade/hs/exchange")
    assert odata_root(settings) == "https://erp.example/trade/odata/standard.odata/"
    assert odata_root(Settings(base_url=BASE, odata_url="http://1c.test/x/odata/standard.odata")) == (
        "http://1c.test/x/odata/standard.odata/"
    )


def test_every_request_is_encoded_ordered_and_counted(
    data: SandboxData, source_for: Callable[..., OdataSource]
) -> None:
    fake = FakeOdata(data)
    source = source_for(fake)
    assert _all(source.documents("shipment", START, END))
    assert _all(source.goods())
    raw = [url.raw_path.decode("ascii") for url in fake.requests]
    assert all("+" not in text and " " not in text for text in raw)
    assert all(text.isascii() for text in raw), "Cyrillic names must be percent-encoded as UTF-8"
    listings = [dict(parse_qsl(url.query.decode())) for url in fake.requests if b"$top" in url.query]
    assert listings and all("$orderby" in options for options in listings)
    assert {o["$orderby"] for o in listings} == {"Ref_Key", "Date,Ref_Key"}
    counted = {unquote(url.path) for url in fake.requests if url.path.endswith("/$count")}
    assert f"{ROOT}{ENTITIES['shipment']}/$count" in counted
    assert not any(b"inlinecount" in url.query for url in fake.requests)
    window = next(o["$filter"] for o in listings if o["$orderby"] == "Date,Ref_Key")
    assert window == "Date ge datetime'2026-01-01T00:00:00' and Date lt datetime'2026-01-08T00:00:00'"
    assert "%20" in next(u for u in raw if "Date%20ge" in u)


def test_paging_without_orderby_loses_rows(data: SandboxData) -> None:
    """What the popular Python 1C clients do: `$top/$skip` with no order. The server may order each request
    differently, so pages overlap and rows go missing; ordering is what makes offsets mean anything."""
    fake = FakeOdata(data)
    entity = ENTITIES["shipment"]
    window = f"Date ge {datetime_literal(START)} and Date lt {datetime_literal(END)}"
    with httpx.Client(transport=httpx.MockTransport(fake), base_url="http://1c.test") as client:
        path = f"{ROOT}{entity}"
        total = int(client.get(f"{path}/$count?{query_string({'$filter': window})}").text)
        seen: set[str] = set()
        for skip in range(0, total, 10):
            query = query_string({"$format": "json", "$filter": window, "$top": 10, "$skip": skip})
            seen |= {row["Ref_Key"] for row in client.get(f"{path}?{query}").json()["value"]}
    assert total > 20
    assert len(seen) < total


# --- mapping


def test_documents_carry_the_contract_shape(data: SandboxData, source_for: Callable[..., OdataSource]) -> None:
    records = _all(source_for(FakeOdata(data)).documents("transfer", START, END))
    truth = {doc.number: doc for doc in data.documents_holdings("transfer", START, END)}
    assert len(records) == len(truth) > 0
    for record in records:
        doc = truth[record["number"]]
        assert (record["warehouse"], record["warehouse_to"]) == (doc.warehouse, doc.warehouse_to)
        assert record["status"] == doc.status and record["deleted"] is doc.deleted
        assert record["modified_at"] is None and record["_data_version"]
        assert [line["line"] for line in record["items"]] == [str(line.line) for line in doc.items]
        assert [line["total"] for line in record["items"]] == [line.total for line in doc.items]


def test_doubles_become_exact_decimals(data: SandboxData, source_for: Callable[..., OdataSource]) -> None:
    """0.1 + 0.2 arrives as 0.30000000000000004; a kopeck column must read 0.30, not a float artefact."""

    def handler(request: httpx.Request) -> httpx.Response:
        response = FakeOdata(data)(request)
        if "ИнвентаризацияТовара" in unquote(request.url.path) and not request.url.path.endswith("$count"):
            body = orjson.loads(response.content)
            for row in body["value"]:
                row["Товары"][0].update({"Количество": 1.0, "Цена": 0.1 + 0.2, "Сумма": 0.1 + 0.2})
            return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
        return response

    records = _all(source_for(handler).documents("inventory", START, END))
    first = records[0]["items"][0]
    assert (first["unit_price"], first["total"]) == (Decimal("0.3000"), Decimal("0.30"))


def test_an_unknown_reference_is_rejected_with_its_guid(
    data: SandboxData, source_for: Callable[..., OdataSource]
) -> None:
    stranger = "11111111-2222-3333-4444-555555555555"
    victim = data.documents_holdings("shipment", START, END)[0].id

    def handler(request: httpx.Request) -> httpx.Response:
        response = FakeOdata(data)(request)
        if unquote(request.url.path).endswith(ENTITIES["shipment"]):
            body = orjson.loads(response.content)
            for row in body["value"]:
                if row["Ref_Key"] == victim:
                    row["Склад_Key"] = stranger
            return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
        return response

    records = _all(source_for(handler).documents("shipment", START, END))
    checked = check_documents(
        records, doc_type="shipment", date_from=START, date_to=END, timezone="Europe/Moscow", run_id="t"
    )
    assert checked.rejected.height == 1
    assert "warehouse: required" in checked.rejected["reason"][0]
    assert stranger in checked.rejected["raw"][0]
    assert checked.documents is not None and checked.documents.height == len(records) - 1


def test_two_prices_for_one_item_need_a_price_type(data: SandboxData, source_for: Callable[..., OdataSource]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = FakeOdata(data)(request)
        if "SliceLast" in unquote(request.url.path):
            body = orjson.loads(response.content)
            body["value"].append({**body["value"][0], "Цена": 1.5})
            return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})
        return response

    with pytest.raises(ConfigError, match="price_condition"):
        _all(source_for(handler).goods())


def test_price_condition_is_sent_as_filter(data: SandboxData, source_for: Callable[..., OdataSource]) -> None:
    fake = FakeOdata(data)
    condition = "ВидЦен_Key eq guid'0f0e0d0c-0b0a-0908-0706-050403020100'"
    _all(source_for(fake, OdataModel(price_condition=condition)).goods())
    slice_query = next(url.query.decode() for url in fake.requests if "SliceLast" in unquote(url.path))
    assert dict(parse_qsl(slice_query))["$filter"] == condition
    assert "%20eq%20guid'0f0e0d0c" in slice_query


# --- the session's auth, retries and errors


def test_auth_and_retries_are_the_sessions(data: SandboxData, source_for: Callable[..., OdataSource]) -> None:
    fake = FakeOdata(data)
    failures = iter([True, False, True])
    seen_auth: set[str | None] = set()

    def flaky(request: httpx.Request) -> httpx.Response:
        seen_auth.add(request.headers.get("Authorization"))
        if next(failures, False):
            return httpx.Response(503, headers={"Retry-After": "0"})
        return fake(request)

    source = source_for(flaky, auth=AuthMethod.BASIC, username="Иванов", password=Secret("пароль-1"))
    records = _all(source.documents("goods-receipt", START, END))
    assert len(records) == len(data.documents_holdings("goods-receipt", START, END))
    assert source.stats.snapshot()["retries"] == 2
    assert len(seen_auth) == 1 and next(iter(seen_auth), "").startswith("Basic ")


def test_login_page_and_odata_errors_are_clear(source_for: Callable[..., OdataSource]) -> None:
    login = source_for(lambda r: httpx.Response(200, text="<html>Вход</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(OneCAuthError):
        _all(login.documents("shipment", START, END))
    error = {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": "Не найден ресурс Document_X"}}}
    missing = source_for(lambda r: httpx.Response(404, content=orjson.dumps(error)))
    with pytest.raises(OneCHTTPError, match="Не найден ресурс Document_X"):
        _all(missing.documents("shipment", START, END))


def test_an_absolute_url_on_another_server_is_refused() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with OneCSession(Settings(base_url=BASE), transport=transport) as s, pytest.raises(ConfigError, match="not on"):
        s.get_json("http://elsewhere.test/trade/odata/standard.odata/Catalog_X")


# --- the model as configuration


def test_model_overrides_from_json_and_toml(tmp_path: Path) -> None:
    as_json = tmp_path / "model.json"
    as_json.write_text(
        json.dumps(
            {"items": "Catalog_Товары", "documents": {"goods-receipt": {"entity_set": "Document_Приобретение"}}}
        ),
        encoding="utf-8",
    )
    model = OdataModel.load(as_json)
    assert model.items == "Catalog_Товары"
    assert model.documents["goods-receipt"].entity_set == "Document_Приобретение"
    assert model.documents["goods-receipt"].lines == "Товары"
    assert model.documents["shipment"].entity_set == "Document_РасходТовара"
    as_toml = tmp_path / "model.toml"
    as_toml.write_text('zero_stock_positions = false\n[documents.inventory]\nbook_quantity = "Учет"\n', "utf-8")
    model = OdataModel.load(as_toml)
    assert model.zero_stock_positions is False and model.documents["inventory"].book_quantity == "Учет"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"itemz": "x"}, "unknown names itemz"),
        ({"documents": {"refund": {"entity_set": "Document_X"}}}, "unknown document type 'refund'"),
        ({"documents": {"shipment": {"linez": "X"}}}, "documents.shipment has unknown names linez"),
        ({"stock": ""}, "stock must be a non-empty str"),
    ],
)
def test_model_mistakes_are_named(tmp_path: Path, content: dict[str, Any], message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        OdataModel.load(path)


def test_settings_read_the_odata_variables(tmp_path: Path) -> None:
    model = tmp_path / "m.toml"
    model.write_text("", encoding="utf-8")
    settings = Settings.from_env(
        {"ONEC_BASE_URL": BASE, "ONEC_ODATA_URL": "http://1c.test/o/", "ONEC_ODATA_MODEL": str(model)}
    )
    assert (settings.odata_url, settings.odata_model) == ("http://1c.test/o/", model)
    with pytest.raises(ConfigError, match="ONEC_ODATA_MODEL"):
        Settings.from_env({"ONEC_ODATA_MODEL": str(tmp_path / "missing.json")})


def test_the_factory_builds_the_odata_source(data: SandboxData, tmp_path: Path) -> None:
    model = tmp_path / "model.toml"
    model.write_text("zero_stock_positions = false\n", encoding="utf-8")
    settings = Settings(base_url=BASE, rate_limit=1e6, odata_model=model)
    with OneCSession(settings, transport=httpx.MockTransport(FakeOdata(data))) as session:
        source = open_source(settings, session, "odata")
        assert source.name == "odata"
        goods = _all(source.goods())
    assert goods and all(g["quantity"] != 0 for g in goods)
    with pytest.raises(ConfigError, match="unknown source 'soap'"):
        open_source(settings, session, "soap")


def test_documents_posted_while_paging_are_not_lost(source_for: Callable[..., OdataSource]) -> None:
    """A document posted mid-listing shifts every later offset; the recount with the last page notices and the
    paginator reads again, so no document is lost and none is repeated."""
    data = SandboxData.generate(seed=9, documents=150, start=START, days=(END - START).days)
    fake = FakeOdata(data)
    inserted: list[str] = []

    def drifting(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        listing = b"$top" in request.url.query and "РасходТовара" in unquote(request.url.path)
        if listing and not inserted:
            inserted.append(data.insert_document("shipment", START).number)
        return response

    numbers = [r["number"] for r in _all(source_for(drifting, max_connections=1).documents("shipment", START, END))]
    assert inserted and inserted[0] in numbers
    assert sorted(numbers) == sorted(d.number for d in data.documents_holdings("shipment", START, END))
    assert len(numbers) == len(set(numbers))
