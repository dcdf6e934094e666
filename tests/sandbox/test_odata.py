"""The standard OData v3 interface (§2): paging that only works with $orderby, 1C's filter syntax and its `+`
trap, counts, registers that agree with the goods, DataVersion, errors, auth and faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from lxml import etree

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.odata_model import EMPTY_REF
from onec.sandbox.server import running_server

MakeClient = Callable[..., httpx.Client]
ODATA = "http://sandbox/trade/odata/standard.odata"
RECEIPTS = "Document_ПриходТовара"


def odata_client(make_client: MakeClient, data: SandboxData, **config: Any) -> httpx.Client:
    return make_client(SandboxEngine(data, SandboxConfig(**config)), base_url=ODATA)


def get(client: httpx.Client, path: str, query: str = "") -> Any:
    """Build the query string by hand (spaces as %20), never with params= (which writes `+`)."""
    response = client.get(f"/{path}?$format=json{'&' + query if query else ''}")
    assert response.status_code == 200, response.text
    return response.json()


def page(client: httpx.Client, path: str, size: int, query: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        extra = f"$top={size}&$skip={len(rows)}" + (f"&{query}" if query else "")
        chunk = get(client, path, extra)["value"]
        rows += chunk
        if len(chunk) < size:
            return rows


def odata_error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"odata.error"} and body["odata.error"]["code"] == "-1"
    assert body["odata.error"]["message"]["lang"] == "ru"
    return str(body["odata.error"]["message"]["value"])


# --- paging


def test_paging_with_orderby_covers_everything_once(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    items = page(client, "Catalog_Номенклатура", 17, "$orderby=Ref_Key")
    assert len(items) == len({row["Ref_Key"] for row in items})
    assert {row["Артикул"] for row in items if not row["IsFolder"]} == {g.sku for g in small_data.goods_holdings()}
    docs = page(client, RECEIPTS, 9, "$orderby=Date,Ref_Key")
    assert [d["Ref_Key"] for d in docs] == [
        d.id for d in sorted(small_data.documents_holdings("goods-receipt"), key=lambda d: (d.date, d.id))
    ]
    assert page(client, RECEIPTS, 9, "$orderby=Date%20desc,Ref_Key")[0]["Ref_Key"] == docs[-1]["Ref_Key"]


def test_paging_without_orderby_loses_or_duplicates_rows(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    expected = {d.id for d in small_data.documents_holdings("shipment")}
    naive = [row["Ref_Key"] for row in page(client, "Document_РасходТовара", 20)]
    assert len(expected) >= 60, "at least three pages"
    assert len(naive) == len(expected) and (set(naive) != expected or len(set(naive)) < len(naive))
    first, second = (get(client, "Catalog_Номенклатура", "$top=5")["value"] for _ in range(2))
    assert first != second, "the order differs between requests"


def test_inlinecount_ignores_top_and_skip(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    body = get(client, RECEIPTS, "$top=2&$skip=3&$inlinecount=allpages")
    assert len(body["value"]) == len(small_data.documents_holdings("goods-receipt"))
    assert body["odata.count"] == str(len(body["value"]))
    assert body["odata.metadata"].endswith(f"/$metadata#{RECEIPTS}")


def test_count(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    count = client.get(f"/{RECEIPTS}/$count")
    assert count.status_code == 200 and count.text == str(len(small_data.documents_holdings("goods-receipt")))
    posted = client.get(f"/{RECEIPTS}/$count?$filter=Posted%20eq%20true").text
    assert int(posted) == sum(d.posted for d in small_data.documents_holdings("goods-receipt"))
    lines = client.get(f"/{RECEIPTS}_Товары/$count").text
    assert int(lines) == sum(len(d.items) for d in small_data.documents_holdings("goods-receipt"))


# --- $filter


def test_plus_in_filter_is_a_syntax_error(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    plus = client.get(f"/{RECEIPTS}?$format=json&$filter=Date+ge+datetime'2026-01-10T00:00:00'")
    assert plus.status_code == 400 and "+" in odata_error(plus)
    via_params = client.get(f"/{RECEIPTS}", params={"$format": "json", "$filter": "Posted eq true"})
    assert via_params.status_code == 400, "httpx params= encodes spaces as +"
    spaced = get(client, RECEIPTS, "$filter=Date%20ge%20datetime'2026-01-10T00:00:00'")["value"]
    truth = small_data.documents_holdings("goods-receipt", datetime(2026, 1, 10))
    assert {d["Ref_Key"] for d in spaced} == {d.id for d in truth} and truth


def test_filter_operators_and_literals(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    docs = small_data.documents_holdings("goods-receipt")
    doc = docs[4]
    by_ref = get(client, RECEIPTS, f"$filter=Ref_Key%20eq%20guid'{doc.id.upper()}'")["value"]
    assert [d["Number"] for d in by_ref] == [doc.number]
    by_number = get(client, RECEIPTS, f"$filter=Number%20eq%20'{doc.number}'")["value"]
    assert [d["Ref_Key"] for d in by_number] == [doc.id]
    window = (
        "$filter=(Date%20ge%20datetime'2026-01-05T00:00:00'%20and%20Date%20lt%20datetime'2026-01-09T00:00:00')"
        "%20or%20Number%20eq%20'x''y'"
    )
    got = {d["Ref_Key"] for d in get(client, RECEIPTS, window)["value"]}
    assert got == {
        d.id for d in small_data.documents_holdings("goods-receipt", datetime(2026, 1, 5), datetime(2026, 1, 9))
    }
    drafts = get(client, RECEIPTS, "$filter=not%20Posted%20eq%20true%20and%20DeletionMark%20ne%20true")["value"]
    assert {d["Ref_Key"] for d in drafts} == {d.id for d in docs if not d.posted and not d.deleted}
    cheap = get(
        client, "InformationRegister_ЦеныНоменклатуры/SliceLast()", "$filter=Цена%20le%20100%20and%20Цена%20gt%2050.5"
    )
    assert all(50.5 < row["Цена"] <= 100 for row in cheap["value"]) and cheap["value"]


@pytest.mark.parametrize(
    "query",
    [
        "$filter=Date%20ge%20'2026-01-10'",
        "$filter=Nothing%20eq%201",
        "$filter=Posted%20eq",
        "$filter=(Posted%20eq%20true",
        "$filter=Posted%20like%20true",
        "$orderby=Date+desc",
        "$orderby=Nothing",
        "$orderby=Товары",
        "$filter=Товары%20eq%201",
        "$select=Number,Nothing",
        "$top=-1",
        "$skip=abc",
        "$filter=Date%20ge%20datetime'вчера'",
    ],
)
def test_malformed_queries_are_400(small_data: SandboxData, make_client: MakeClient, query: str) -> None:
    response = odata_client(make_client, small_data).get(f"/{RECEIPTS}?$format=json&{query}")
    assert response.status_code == 400 and odata_error(response)


def test_select_and_key_access(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    rows = get(client, RECEIPTS, "$select=Number,Date&$orderby=Number&$top=3")["value"]
    assert [set(r) for r in rows] == [{"Number", "Date"}] * 3
    doc = small_data.documents_holdings("goods-receipt")[0]
    one = get(client, f"{RECEIPTS}(guid'{doc.id}')")
    assert one["Ref_Key"] == doc.id and one["odata.metadata"].endswith("/@Element")
    assert client.get(f"/{RECEIPTS}(guid'{EMPTY_REF}')?$format=json").status_code == 404


# --- the model


def test_documents_carry_their_lines_as_1c_does(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    items = {row["Ref_Key"]: row for row in get(client, "Catalog_Номенклатура")["value"]}
    warehouses = {row["Ref_Key"]: row["Description"] for row in get(client, "Catalog_Склады")["value"]}
    parties = {row["Ref_Key"]: row["Description"] for row in get(client, "Catalog_Контрагенты")["value"]}
    for slug, name in (("goods-receipt", RECEIPTS), ("transfer", "Document_ПеремещениеТовара"),
                       ("inventory", "Document_ИнвентаризацияТовара")):  # fmt: skip
        served = {row["Ref_Key"]: row for row in get(client, name)["value"]}
        for doc in small_data.documents_holdings(slug):
            row = served[doc.id]
            assert (row["Number"], row["Posted"], row["DeletionMark"]) == (doc.number, doc.posted, doc.deleted)
            assert row["Date"] == doc.date.strftime("%Y-%m-%dT%H:%M:%S") and row["Комментарий"] == (doc.notes or "")
            if slug == "transfer":
                assert warehouses[row["СкладОтправитель_Key"]] == doc.warehouse
                assert warehouses[row["СкладПолучатель_Key"]] == doc.warehouse_to
            else:
                assert warehouses[row["Склад_Key"]] == doc.warehouse
            if slug == "goods-receipt":
                assert parties[row["Контрагент_Key"]] == doc.counterparty
            lines = row["Товары"]
            assert [line["LineNumber"] for line in lines] == [str(line.line) for line in doc.items]
            skus = [items.get(line["Номенклатура_Key"], {}).get("Артикул") for line in lines]
            assert skus == [line.sku for line in doc.items], "an empty row is the empty reference"
            totals = [None if "Сумма" not in line else Decimal(str(line["Сумма"])) for line in lines]
            assert totals == [line.total for line in doc.items], "a line without prices has no Цена, Сумма"
            assert all(isinstance(line["Цена"], float) for line in lines if "Цена" in line)
            if slug == "inventory":
                assert [Decimal(str(line["КоличествоУчет"])) for line in lines] == [
                    line.book_quantity for line in doc.items
                ]
    section = get(client, f"{RECEIPTS}_Товары")["value"]
    assert len(section) == sum(len(d.items) for d in small_data.documents_holdings("goods-receipt"))
    assert all(isinstance(row["LineNumber"], str) and row["Ref_Key"] for row in section)


def test_nomenclature_folders_and_units(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    rows = get(client, "Catalog_Номенклатура")["value"]
    folders = [row for row in rows if row["IsFolder"]]
    assert len(folders) == 2 and all(f["Артикул"] is None and f["ЕдиницаИзмерения_Key"] is None for f in folders)
    units = {row["Ref_Key"]: row["Description"] for row in get(client, "Catalog_ЕдиницыИзмерения")["value"]}
    truth = {g.sku: g for g in small_data.goods_holdings()}
    for row in (row for row in rows if not row["IsFolder"]):
        good = truth[row["Артикул"]]
        assert row["Ref_Key"] == good.id and row["Description"] == good.name
        assert units.get(row["ЕдиницаИзмерения_Key"]) == good.unit
        assert row["Parent_Key"] in {f["Ref_Key"] for f in folders}


def test_balance_equals_the_goods(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    skus = {row["Ref_Key"]: row["Артикул"] for row in get(client, "Catalog_Номенклатура")["value"]}
    warehouses = {row["Ref_Key"]: row["Description"] for row in get(client, "Catalog_Склады")["value"]}

    def balance(path: str) -> dict[tuple[str, str], Decimal]:
        rows = get(client, f"AccumulationRegister_ТоварыНаСкладах/{path}")["value"]
        return {
            (skus[r["Номенклатура_Key"]], warehouses[r["Склад_Key"]]): Decimal(str(r["КоличествоBalance"]))
            for r in rows
        }

    goods = {(g.sku, g.warehouse): g.quantity for g in small_data.goods_holdings() if g.bad_kind is None}
    assert balance("Balance()") == {key: q for key, q in goods.items() if q != 0}
    assert any(q == 0 for q in goods.values()), "zero positions exist and are absent"
    middle = small_data.balance_at(datetime(2026, 1, 15, 12, 0))
    assert balance("Balance(Period=datetime'2026-01-15T12:00:00')") == {k: q for k, q in middle.items() if q != 0}
    assert middle != goods
    prices = get(client, "InformationRegister_ЦеныНоменклатуры/SliceLast()")["value"]
    truth = {g.sku: g.price for g in small_data.goods_holdings() if g.price is not None}
    assert {skus[p["Номенклатура_Key"]]: Decimal(str(p["Цена"])).quantize(Decimal("0.01")) for p in prices} == truth


def test_data_version_changes_on_every_write(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=60, seed=4)
    engine = SandboxEngine(data)
    odata = make_client(engine, base_url=ODATA)
    exchange = make_client(engine)
    line = {"sku": data.goods_holdings()[0].sku, "quantity": 3, "unit_price": 10}
    created = exchange.post(
        "/api/v1/documents/goods-receipt", json={"number": "OD-1", "warehouse": "wh-main", "items": [line]}
    ).json()
    key = f"{RECEIPTS}(guid'{created['id']}')"
    draft = get(odata, key)
    assert draft["Posted"] is False and draft["Number"] == "OD-1"
    exchange.post(f"/api/v1/documents/goods-receipt/{created['id']}/post")
    posted = get(odata, key)
    assert posted["Posted"] is True and posted["DataVersion"] != draft["DataVersion"]
    exchange.post(f"/api/v1/documents/goods-receipt/{created['id']}/post")
    assert get(odata, key)["DataVersion"] != posted["DataVersion"], "a re-post is a write too"
    others = {row["Ref_Key"]: row["DataVersion"] for row in get(odata, "Document_РасходТовара")["value"]}
    assert others == {row["Ref_Key"]: row["DataVersion"] for row in get(odata, "Document_РасходТовара")["value"]}


# --- the service around it


def test_json_only_and_service_document(small_data: SandboxData, make_client: MakeClient) -> None:
    client = odata_client(make_client, small_data)
    refused = client.get(f"/{RECEIPTS}")
    assert refused.status_code == 406 and odata_error(refused)
    accepted = client.get(f"/{RECEIPTS}?$top=1", headers={"Accept": "application/json"})
    assert accepted.status_code == 200 and len(accepted.json()["value"]) == 1
    names = {entry["name"] for entry in get(client, "")["value"]}
    assert {"Catalog_Склады", RECEIPTS, f"{RECEIPTS}_Товары", "AccumulationRegister_ТоварыНаСкладах/Balance()"} <= names
    missing = client.get("/Catalog_Нет?$format=json")
    assert missing.status_code == 404 and "Catalog_Нет" in odata_error(missing)
    assert client.post("/Catalog_Склады", json={}).status_code == 405
    empty = get(client, f"{RECEIPTS}_Товары", f"$filter=Ref_Key%20eq%20guid'{EMPTY_REF}'&$orderby=LineNumber")
    assert empty["value"] == []


def test_metadata_lists_the_sets_with_typed_properties(small_data: SandboxData, make_client: MakeClient) -> None:
    response = odata_client(make_client, small_data).get("/$metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    edm = "{http://schemas.microsoft.com/ado/2009/11/edm}"
    sets = {s.get("Name") for s in root.iter(f"{edm}EntitySet")}
    assert {"Catalog_Номенклатура", RECEIPTS, f"{RECEIPTS}_Товары"} <= sets
    receipt = next(t for t in root.iter(f"{edm}EntityType") if t.get("Name") == RECEIPTS)
    types = {p.get("Name"): p.get("Type") for p in receipt.iter(f"{edm}Property")}
    assert types["Ref_Key"] == "Edm.Guid" and types["Date"] == "Edm.DateTime" and types["Posted"] == "Edm.Boolean"
    assert types["Товары"].startswith("Collection(")


def test_auth_rate_limit_and_faults_apply(small_data: SandboxData, make_client: MakeClient) -> None:
    secured = odata_client(make_client, small_data, auth="basic")
    denied = secured.get("/Catalog_Склады?$format=json")
    assert denied.status_code == 401 and odata_error(denied) and "www-authenticate" in denied.headers
    assert secured.get("/Catalog_Склады?$format=json", auth=("обмен", "пароль")).status_code == 200
    failing = odata_client(make_client, small_data, faults=FaultConfig(error_503=1.0))
    unavailable = failing.get("/Catalog_Склады?$format=json")
    assert unavailable.status_code == 503 and odata_error(unavailable)
    dropping = odata_client(make_client, small_data, faults=FaultConfig(drop=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        dropping.get("/Catalog_Номенклатура?$format=json")


def test_configurable_prefix(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(odata_path="/erp/odata/standard.odata"))
    client = make_client(engine, base_url="http://sandbox/erp/odata/standard.odata")
    assert get(client, "Catalog_Склады")["value"]
    assert make_client(engine, base_url=ODATA).get("/Catalog_Склады?$format=json").status_code == 404


@pytest.mark.e2e
def test_percent_encoded_cyrillic_over_sockets(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data)
    with running_server(engine) as base_url:
        root = base_url.replace("/hs/exchange", "/odata/standard.odata")
        with httpx.Client(timeout=10.0) as client:
            encoded = (
                root + "/Catalog_%D0%A1%D0%BA%D0%BB%D0%B0%D0%B4%D1%8B?$format=json&$filter=Code%20eq%20'000000001'"
            )
            rows = client.get(encoded).json()["value"]
            assert [row["Description"] for row in rows] == ["wh-main"]
            plus = client.get(root + "/Catalog_Склады?$format=json&$filter=Code+eq+'000000001'")
            assert plus.status_code == 400


# --- writes


def receipt_body(data: SandboxData, odata: httpx.Client, **changes: Any) -> dict[str, Any]:
    warehouses = {row["Description"]: row["Ref_Key"] for row in get(odata, "Catalog_Склады")["value"]}
    party = get(odata, "Catalog_Контрагенты", "$top=1&$orderby=Code")["value"][0]["Ref_Key"]
    good = data.goods_holdings()[0]
    line = {"LineNumber": "1", "Номенклатура_Key": good.id, "Количество": 2.5, "Цена": 10.1, "Сумма": 25.25}
    body = {"Date": "2026-01-20T10:00:00", "Склад_Key": warehouses["wh-main"], "Контрагент_Key": party,
            "Комментарий": "через OData", "Товары": [line]}  # fmt: skip
    return {**body, **changes}


def test_odata_create_post_and_patch(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=60, seed=8)
    engine = SandboxEngine(data)
    odata = make_client(engine, base_url=ODATA)
    good = data.find_good(data.goods_holdings()[0].sku, "wh-main")
    assert good is not None
    before = good.quantity
    created = odata.post(f"/{RECEIPTS}?$format=json", json=receipt_body(data, odata))
    assert created.status_code == 201, created.text
    row = created.json()
    assert unquote(created.headers["location"]).endswith(f"/{RECEIPTS}(guid'{row['Ref_Key']}')")
    assert row["Posted"] is False and row["Number"].startswith("ПР-") and row["Товары"][0]["LineNumber"] == "1"
    doc = data.find_document("goods-receipt", row["Ref_Key"])
    assert doc is not None and doc.items[0].total == Decimal("25.25") and doc.notes == "через OData"
    assert doc.counterparty is not None and good.quantity == before
    key = f"/{RECEIPTS}(guid'{row['Ref_Key']}')"
    assert odata.post(f"{key}/Post?PostingModeOperational=false").status_code == 200
    assert good.quantity == before + Decimal("2.5")
    posted = get(odata, key[1:])
    assert posted["Posted"] is True and posted["DataVersion"] != row["DataVersion"]
    stale = odata.patch(key, json={"DeletionMark": True}, headers={"If-Match": row["DataVersion"]})
    assert stale.status_code == 412 and odata_error(stale)
    marked = odata.patch(key, json={"DeletionMark": True}, headers={"If-Match": posted["DataVersion"]})
    assert marked.status_code == 200 and marked.json()["DeletionMark"] is True
    assert good.quantity == before, "a document marked for deletion stops moving stock"
    refused = odata.post(f"{key}/Post")
    assert refused.status_code == 500 and odata_error(refused)
    odata.patch(key, json={"DeletionMark": False})
    odata.post(f"{key}/Post")
    assert good.quantity == before + Decimal("2.5")
    assert odata.post(f"{key}/Unpost").status_code == 200 and good.quantity == before
    assert odata.patch(key, json={"Number": "other"}).status_code == 500


def test_odata_business_errors_are_500(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=60, seed=8)
    odata = make_client(SandboxEngine(data), base_url=ODATA)
    taken = data.documents_holdings("goods-receipt")[0].number
    bad_line = receipt_body(data, odata)
    bad_line["Товары"][0]["Сумма"] = 99.0
    unknown = receipt_body(data, odata)
    unknown["Товары"][0]["Номенклатура_Key"] = EMPTY_REF
    for body in (
        receipt_body(data, odata, Number=taken),
        bad_line,
        unknown,
        receipt_body(data, odata, Склад_Key=EMPTY_REF),
    ):
        response = odata.post(f"/{RECEIPTS}", json=body)
        assert response.status_code == 500 and odata_error(response), body
    assert odata.post("/$batch", content=b"--batch").status_code == 400
    assert odata.post(f"/{RECEIPTS}(guid'{EMPTY_REF}')/Post").status_code == 404
    assert data.count_documents_by_number("goods-receipt")[taken] == 1
