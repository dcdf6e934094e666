"""The OData source against the sandbox's standard OData interface (§2): encoding, paging, counting, mapping,
failures, configuration, and `onec-etl sync --source odata` end to end.

Every request goes to the sandbox. A wrapping transport records what was sent and, where real 1C can answer what
the sandbox never does (doubles with binary noise, a reference 1C did not publish, two price types for one item),
edits the sandbox's answer on its way back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onec.cli import main
from onec.config import AuthMethod, ConfigError, Secret, Settings, SourceKind
from onec.connect import embedded_sandbox_data, open_configured_source, sandbox_window
from onec.http import OneCAuthError, OneCHTTPError, OneCSession
from onec.sandbox import FaultConfig, SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.sandbox.server import running_server
from onec.schema import DOCUMENT_SLUGS
from onec.sources import open_source
from onec.sources.odata import OdataSource, datetime_literal, odata_root, query_string
from onec.sources.odata_model import DocumentEntity, OdataModel
from onec.validation import check_documents
from onec.warehouse import Warehouse

BASE = "http://sandbox/trade/hs/exchange"
ROOT = "/trade/odata/standard.odata/"
SHIPMENTS = "Document_РасходТовара"
START, END = date(2026, 1, 1), date(2026, 1, 8)
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=5, documents=150, start=START, days=(END - START).days, bad_records=0)


@dataclass
class Wire(httpx.BaseTransport):
    """The sandbox in-process; records each request and applies `edits` (entity-set name → body edit) to
    listing answers whose path contains that name."""

    engine: SandboxEngine
    edits: dict[str, Edit] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = SandboxTransport(self.engine).handle_request(request)
        path = unquote(request.url.path)
        edit = next((e for name, e in self.edits.items() if name in path and not path.endswith("$count")), None)
        if edit is None or response.status_code != 200:
            return response
        body = orjson.loads(response.read())
        edit(body)
        return httpx.Response(200, content=orjson.dumps(body), headers={"Content-Type": "application/json"})

    def urls(self) -> list[httpx.URL]:
        return [request.url for request in self.requests]


@dataclass
class Wired:
    source: OdataSource
    wire: Wire


@pytest.fixture
def source_for(data: SandboxData) -> Iterator[Callable[..., Wired]]:
    sessions: list[OneCSession] = []

    def build(
        config: SandboxConfig | None = None,
        model: OdataModel | None = None,
        edits: dict[str, Edit] | None = None,
        base: SandboxData | None = None,
        **settings: Any,
    ) -> Wired:
        wire = Wire(SandboxEngine(base or data, config or SandboxConfig()), edits or {})
        values: dict[str, Any] = {"base_url": BASE, "rate_limit": 1e6, "max_retries": 6, **settings}
        session = OneCSession(Settings(**values), transport=wire, sleep=lambda _: None)
        sessions.append(session)
        return Wired(OdataSource(session, root=odata_root(session.settings), model=model, page_size=20), wire)

    yield build
    for session in sessions:
        session.close()


def _all(batches: Iterator[Any]) -> list[dict[str, Any]]:
    """Every record of a source's batches (the OData source yields lists of records)."""
    return [record for batch in batches for record in batch]


def _held_positions(data: SandboxData) -> set[tuple[str, str | None]]:
    """The goods rows 1C holds (contract §1.3): every position with a balance, and (sku, None) for an item with
    no balance anywhere. The sandbox's own listing has a row for every warehouse of a stocked item, zero or not."""
    held: set[tuple[str, str | None]] = {(g.sku, g.warehouse) for g in data.goods_holdings() if g.quantity != 0}
    stocked = {sku for sku, _ in held}
    return held | {(item.sku, None) for item in data.nomenclature() if item.sku not in stocked}


# --- encoding: never `+`, always $orderby, counted with /$count


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


def test_every_request_is_encoded_ordered_and_counted(source_for: Callable[..., Wired]) -> None:
    wired = source_for()
    assert _all(wired.source.documents("shipment", START, END))
    assert _all(wired.source.goods())
    urls = wired.wire.urls()
    raw = [url.raw_path.decode("ascii") for url in urls]
    assert all("+" not in text and " " not in text for text in raw)
    assert all(text.isascii() for text in raw), "Cyrillic names must be percent-encoded as UTF-8"
    listings = [dict(parse_qsl(url.query.decode())) for url in urls if b"$top" in url.query]
    assert listings and all("$orderby" in options for options in listings)
    assert {o["$orderby"] for o in listings} == {"Ref_Key", "Date,Ref_Key"}
    assert f"{ROOT}{SHIPMENTS}/$count" in {unquote(url.path) for url in urls}
    assert not any(b"inlinecount" in url.query for url in urls)
    window = next(o["$filter"] for o in listings if o["$orderby"] == "Date,Ref_Key")
    assert window == "Date ge datetime'2026-01-01T00:00:00' and Date lt datetime'2026-01-08T00:00:00'"
    assert any("$filter=Date%20ge%20datetime'2026-01-01T00:00:00'%20and%20Date%20lt" in text for text in raw)
    assert 400 not in wired.wire.engine.stats.snapshot()["responses"]


def test_the_sandbox_refuses_a_plus_that_our_encoding_never_sends(data: SandboxData) -> None:
    """httpx's `params=` writes spaces as `+`, which 1C reads as a plus: a 400. The same filter as this source
    encodes it is answered."""
    window = f"Date ge {datetime_literal(START)} and Date lt {datetime_literal(END)}"
    with httpx.Client(transport=SandboxTransport(SandboxEngine(data)), base_url="http://sandbox") as client:
        path = f"{ROOT}{SHIPMENTS}"
        plus = client.get(path, params={"$format": "json", "$filter": window})
        assert b"+ge+" in plus.request.url.query
        assert plus.status_code == 400 and "$filter" in plus.json()["odata.error"]["message"]["value"]
        ours = client.get(f"{path}?{query_string({'$format': 'json', '$filter': window})}")
        assert ours.status_code == 200
        assert len(ours.json()["value"]) == len(data.documents_holdings("shipment", START, END))


def test_paging_without_orderby_loses_or_duplicates_rows(data: SandboxData) -> None:
    """What the popular Python 1C clients do: `$top/$skip` with no order. Like a DBMS without ORDER BY, the
    sandbox orders each request differently, so pages overlap and rows go missing; the same loop with
    `$orderby` reads every row exactly once."""
    window = f"Date ge {datetime_literal(START)} and Date lt {datetime_literal(END)}"
    expected = sorted(d.id for d in data.documents_holdings("shipment", START, END))

    def page_through(client: httpx.Client, order: str | None) -> list[str]:
        total = int(client.get(f"{ROOT}{SHIPMENTS}/$count?{query_string({'$filter': window})}").text)
        seen: list[str] = []
        for skip in range(0, total, 10):
            options = {"$format": "json", "$filter": window, "$orderby": order, "$top": 10, "$skip": skip}
            seen += [row["Ref_Key"] for row in client.get(f"{ROOT}{SHIPMENTS}?{query_string(options)}").json()["value"]]
        return seen

    with httpx.Client(transport=SandboxTransport(SandboxEngine(data)), base_url="http://sandbox") as client:
        naive = page_through(client, None)
        ordered = page_through(client, "Date,Ref_Key")
    assert len(expected) > 30
    assert len(naive) == len(expected) and len(set(naive)) < len(expected), "duplicates, and so losses"
    assert sorted(ordered) == expected


def test_documents_posted_while_paging_are_not_lost(source_for: Callable[..., Wired]) -> None:
    """The sandbox posts documents while the listing runs (drift): offsets shift. The recount with the last
    page notices and the paginator reads again, so nothing that existed is lost and nothing is repeated."""
    base = SandboxData.generate(seed=9, documents=300, start=START, days=(END - START).days)
    before = {d.number for d in base.documents_holdings("shipment", START, END)}
    drifting = SandboxConfig(faults=FaultConfig(drift_every=1, drift_limit=60), seed=1)
    wired = source_for(drifting, base=base, max_connections=1)
    numbers = [r["number"] for r in _all(wired.source.documents("shipment", START, END))]
    after = {d.number for d in base.documents_holdings("shipment", START, END)}
    assert len(after) > len(before), "documents were posted into the listing while it ran"
    assert len(numbers) == len(set(numbers))
    assert before <= set(numbers) <= after


# --- mapping: GUIDs joined to names, folders, tabular sections, registers


def test_documents_carry_the_contract_shape(data: SandboxData, source_for: Callable[..., Wired]) -> None:
    source = source_for().source
    records = _all(source.documents("transfer", START, END))
    truth = {doc.number: doc for doc in data.documents_holdings("transfer", START, END)}
    assert len(records) == len(truth) > 0
    for record in records:
        doc = truth[record["number"]]
        assert record["id"] == doc.id
        assert (record["warehouse"], record["warehouse_to"]) == (doc.warehouse, doc.warehouse_to)
        assert record["status"] == doc.status and record["deleted"] is doc.deleted
        assert record["modified_at"] is None and record["_data_version"]
        assert [line["line"] for line in record["items"]] == [str(line.line) for line in doc.items]
        assert [line["total"] for line in record["items"]] == [line.total for line in doc.items]
        assert [line["sku"] for line in record["items"]] == [line.sku for line in doc.items]
    receipts = _all(source.documents("goods-receipt", START, END))
    parties = {doc.number: doc.counterparty for doc in data.documents_holdings("goods-receipt", START, END)}
    assert receipts and all(r["counterparty"] == parties[r["number"]] for r in receipts)
    counted = _all(source.documents("inventory", START, END))
    books = {(d.number, str(x.line)): x.book_quantity for d in data.documents_holdings("inventory") for x in d.items}
    assert counted and all(
        line["book_quantity"] == books[(r["number"], line["line"])] for r in counted for line in r["items"]
    )


def test_goods_skip_folders_and_join_names(data: SandboxData, source_for: Callable[..., Wired]) -> None:
    wired = source_for()
    goods = _all(wired.source.goods())
    truth = {g.sku: g for g in data.goods_holdings()} | {(g.sku, g.warehouse): g for g in data.goods_holdings()}
    assert {(g["sku"], g["warehouse"]) for g in goods} == _held_positions(data)
    for good in goods:
        held = truth[(good["sku"], good["warehouse"]) if good["warehouse"] else good["sku"]]
        assert (good["id"], good["name"], good["unit"], good["price"]) == (held.id, held.name, held.unit, held.price)
        assert good["quantity"] == (held.quantity if good["warehouse"] else 0)
    catalog = orjson.loads(
        SandboxTransport(wired.wire.engine)
        .handle_request(httpx.Request("GET", f"http://sandbox{ROOT}Catalog_Номенклатура?$format=json"))
        .read()
    )["value"]
    folders = {row["Description"] for row in catalog if row["IsFolder"]}
    assert folders and not folders & {g["name"] for g in goods}
    virtual = {unquote(url.path) for url in wired.wire.urls()}
    assert {f"{ROOT}AccumulationRegister_ТоварыНаСкладах/Balance()"} <= virtual
    assert {f"{ROOT}InformationRegister_ЦеныНоменклатуры/SliceLast()"} <= virtual


def test_doubles_become_exact_decimals(source_for: Callable[..., Wired]) -> None:
    """0.1 + 0.2 arrives as 0.30000000000000004; a kopeck column must read 0.30, not a float artefact."""

    def noisy(body: dict[str, Any]) -> None:
        for row in body["value"]:
            row["Товары"][0].update({"Количество": 1.0, "Цена": 0.1 + 0.2, "Сумма": 0.1 + 0.2})

    records = _all(source_for(edits={"ИнвентаризацияТовара": noisy}).source.documents("inventory", START, END))
    first = records[0]["items"][0]
    assert (first["unit_price"], first["total"]) == (Decimal("0.3000"), Decimal("0.30"))


def test_an_unknown_reference_is_rejected_with_its_guid(data: SandboxData, source_for: Callable[..., Wired]) -> None:
    stranger = "11111111-2222-3333-4444-555555555555"
    victim = data.documents_holdings("shipment", START, END)[0].id

    def unpublished_warehouse(body: dict[str, Any]) -> None:
        for row in body["value"]:
            if row["Ref_Key"] == victim:
                row["Склад_Key"] = stranger

    records = _all(source_for(edits={SHIPMENTS: unpublished_warehouse}).source.documents("shipment", START, END))
    checked = check_documents(
        records, doc_type="shipment", date_from=START, date_to=END, timezone="Europe/Moscow", run_id="t"
    )
    assert checked.rejected.height == 1
    assert "warehouse: required" in checked.rejected["reason"][0]
    assert stranger in checked.rejected["raw"][0]
    assert checked.documents is not None and checked.documents.height == len(records) - 1


def test_two_prices_for_one_item_need_a_price_type(source_for: Callable[..., Wired]) -> None:
    def second_price_type(body: dict[str, Any]) -> None:
        body["value"].append({**body["value"][0], "Цена": 1.5})

    with pytest.raises(ConfigError, match="price_condition"):
        _all(source_for(edits={"SliceLast": second_price_type}).source.goods())


def test_price_condition_is_sent_encoded_and_applied(data: SandboxData, source_for: Callable[..., Wired]) -> None:
    wired = source_for(model=OdataModel(price_condition="Цена gt 100"))
    goods = _all(wired.source.goods())
    slice_query = next(url.query.decode() for url in wired.wire.urls() if "SliceLast" in unquote(url.path))
    assert dict(parse_qsl(slice_query))["$filter"] == "Цена gt 100" and "%20gt%20100" in slice_query
    prices = {item.sku: item.price for item in data.nomenclature()}
    assert any(g["price"] is None for g in goods) and any(g["price"] is not None for g in goods)
    for good in goods:
        price = prices[good["sku"]]
        assert good["price"] == (price if price is not None and price > 100 else None)


# --- the session's auth, retries and errors


def test_auth_and_retries_are_the_sessions(data: SandboxData, source_for: Callable[..., Wired]) -> None:
    config = SandboxConfig(auth="basic", faults=FaultConfig(error_503=0.2, error_500=0.05), seed=2)
    wired = source_for(config, auth=AuthMethod.BASIC, username="обмен", password=Secret("пароль"), max_retries=10)
    for doc_type in ("goods-receipt", "shipment"):
        records = _all(wired.source.documents(doc_type, START, END))
        assert len(records) == len(data.documents_holdings(doc_type, START, END))
    served = wired.wire.engine.stats.snapshot()
    assert wired.source.stats.snapshot()["retries"] == sum(served["faults"].values())
    assert served["responses"].get(401) is None
    assert len({r.headers.get("Authorization") for r in wired.wire.requests}) == 1


def test_login_page_and_odata_errors_are_clear(source_for: Callable[..., Wired]) -> None:
    login = source_for(
        SandboxConfig(auth="basic", html_on_bad_auth=True),
        auth=AuthMethod.BASIC,
        username="обмен",
        password=Secret("не тот"),
    )
    with pytest.raises(OneCAuthError):
        _all(login.source.documents("shipment", START, END))
    unpublished = OdataModel(documents={**OdataModel().documents, "shipment": DocumentEntity("Document_Отгрузка")})
    with pytest.raises(OneCHTTPError, match="Не найден объект «Document_Отгрузка»"):
        _all(source_for(model=unpublished).source.documents("shipment", START, END))


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
    assert Settings.from_env({"ONEC_SOURCE": "OData"}).source is SourceKind.ODATA
    with pytest.raises(ConfigError, match="ONEC_ODATA_MODEL"):
        Settings.from_env({"ONEC_ODATA_MODEL": str(tmp_path / "missing.json")})


def test_the_factory_builds_the_odata_source(data: SandboxData, tmp_path: Path) -> None:
    model = tmp_path / "model.toml"
    model.write_text("zero_stock_positions = true\n", encoding="utf-8")
    settings = Settings(base_url=BASE, rate_limit=1e6, odata_model=model)
    with OneCSession(settings, transport=SandboxTransport(SandboxEngine(data))) as session:
        source = open_source(settings, session, "odata")
        assert source.name == "odata"
        goods = _all(source.goods())
    listed = {(g.sku, g.warehouse) for g in data.goods_holdings()}
    assert {(g["sku"], g["warehouse"]) for g in goods} == listed, "the file's switch reached the source"
    assert listed != _held_positions(data)
    with pytest.raises(ConfigError, match="unknown source 'soap'"):
        open_source(settings, session, "soap")


def test_the_configured_source_reads_the_embedded_sandbox() -> None:
    """No ONEC_BASE_URL: the embedded sandbox, whose OData root comes from the session's own base URL."""
    settings = Settings.from_env(
        {"ONEC_SOURCE": "odata", "ONEC_RATE_LIMIT": "1000000", "ONEC_SANDBOX_DOCUMENTS": "120"}
    )
    assert settings.base_url is None
    with open_configured_source(settings) as source:
        assert source.name == "odata"
        assert len(_all(source.goods())) == len(_held_positions(embedded_sandbox_data(settings)))


# --- onec-etl sync --source odata, end to end


def _landed_numbers(settings: Settings) -> set[tuple[str, str]]:
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    return set(warehouse.query("SELECT doc_type, number FROM documents").rows())


def _truth(data: SandboxData, date_from: date, date_to: date) -> set[tuple[str, str]]:
    return {(slug, d.number) for slug in DOCUMENT_SLUGS for d in data.documents_holdings(slug, date_from, date_to)}


def test_cli_syncs_the_embedded_sandbox_through_odata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEC_SANDBOX_DOCUMENTS", "400")
    assert main(["sync", "--source", "odata"]) == 0
    settings = Settings.from_env()
    data = embedded_sandbox_data(settings)
    today = sandbox_window(settings.timezone)[1]
    landed = _landed_numbers(settings)
    assert landed and landed == _truth(data, today - timedelta(days=3), today), "the CLI's default: the last 3 days"


@pytest.mark.e2e
def test_cli_syncs_a_sandbox_server_through_odata(data: SandboxData, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(SandboxEngine(data, SandboxConfig(auth="basic"))) as base_url:
        for name, value in {"ONEC_BASE_URL": base_url, "ONEC_SOURCE": "odata", "ONEC_AUTH": "basic",
                            "ONEC_USERNAME": "обмен", "ONEC_PASSWORD": "пароль"}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        assert main(["sync", "--from", START.isoformat(), "--to", END.isoformat()]) == 0
    settings = Settings.from_env()
    assert _landed_numbers(settings) == _truth(data, START, END)
    goods = Warehouse(settings.data_dir, settings.timezone).table_counts()["goods"]
    assert goods == len(_held_positions(data))


@dataclass
class FirstCountCut(Wire):
    """Cuts the first `/$count` answer of every entity set to its first digit, as a truncated body would arrive
    (a shorter number, still digits): more rows than counted must make the source count again, not stop early."""

    cut: set[str] = field(default_factory=set)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        path = unquote(request.url.path)
        if not path.endswith("$count") or path in self.cut:
            return response
        self.cut.add(path)
        return httpx.Response(200, content=response.read()[:1], headers={"Content-Type": "text/plain; charset=utf-8"})


def test_a_truncated_count_loses_no_row(data: SandboxData) -> None:
    wire = FirstCountCut(SandboxEngine(data, SandboxConfig()))
    settings = Settings(base_url=BASE, rate_limit=1e6, max_retries=6)
    with OneCSession(settings, transport=wire, sleep=lambda _: None) as session:
        source = OdataSource(session, root=odata_root(session.settings), page_size=20)
        goods = {(g["sku"], g["warehouse"]) for g in _all(source.goods())}
        numbers = {d["number"] for d in _all(source.documents("shipment", START, END))}
    assert goods == _held_positions(data)
    assert numbers == {d.number for d in data.documents_holdings("shipment", START, END)}
    assert len(wire.cut) >= 3, "the test cut no count: it would prove nothing"
