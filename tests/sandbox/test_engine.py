"""The exchange service through the in-process transport: shapes, paging, filters, auth, limits, faults."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest
from onec.schema import DOCUMENT_SLUGS
from tests.sandbox.sandbox_helpers import (
    document_from_json,
    document_truth,
    engine_for,
    good_from_json,
    good_truth,
    loads,
    page_all,
    served_position,
)  # fmt: skip

MakeClient = Callable[..., httpx.Client]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["error"] is True and body["httpStatus"] == response.status_code and "message" in body
    return str(body["code"])


# --- shapes and paging


def test_version_needs_no_auth(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, auth="basic"))
    assert client.get("/api/version").json() == {"version": "1.4.2", "api_versions": ["v1"]}


def test_paging_covers_everything_once_in_order(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, awkward=False))
    goods = page_all(client, "/api/v1/goods", limit=37, format="json")
    assert [(g["sku"], g["warehouse"]) for g in goods] == [(g.sku, g.warehouse) for g in small_data.goods_holdings()]
    for slug in DOCUMENT_SLUGS:
        docs = page_all(client, f"/api/v1/documents/{slug}", limit=23)
        assert [d["id"] for d in docs] == [d.id for d in small_data.documents_holdings(slug)]


def test_page_shape_and_capped_limit(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, max_page_size=40))
    body = client.get("/api/v1/goods", params={"limit": 500, "offset": 10}).json()
    assert set(body) == {"data", "pagination"} and len(body["data"]) == 40
    assert body["pagination"] == {"total": len(small_data.goods_holdings()), "limit": 40, "offset": 10}
    past_the_end = client.get("/api/v1/goods", params={"offset": 10_000}).json()
    assert past_the_end["data"] == [] and past_the_end["pagination"]["limit"] == 40
    default = client.get("/api/v1/documents/shipment").json()
    assert default["pagination"]["limit"] == 40


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limits=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=8),
    max_page_size=st.integers(min_value=1, max_value=60),
    short_page_rate=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_any_limits_page_through_without_loss(
    small_data: SandboxData, limits: list[int], max_page_size: int, short_page_rate: float, seed: int
) -> None:
    engine = engine_for(small_data, max_page_size=max_page_size, short_page_rate=short_page_rate, seed=seed)
    expected = [d.id for d in small_data.documents_holdings("goods-receipt")]
    seen: list[str] = []
    offset, request = 0, 0
    while offset < len(expected):
        limit = limits[request % len(limits)]
        query = {"limit": [str(limit)], "offset": [str(offset)]}
        response = engine.handle(SandboxRequest("GET", "/trade/hs/exchange/api/v1/documents/goods-receipt", query))
        body = loads(response.body)
        assert body["pagination"]["limit"] == min(limit, max_page_size)
        assert 1 <= len(body["data"]) <= body["pagination"]["limit"]
        seen += [row["id"] for row in body["data"]]
        offset += len(body["data"])
        request += 1
    assert seen == expected


def test_short_pages_before_the_end(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = engine_for(small_data, short_page_rate=1.0)
    client = make_client(engine)
    first = client.get("/api/v1/goods", params={"limit": 50}).json()
    assert 1 <= len(first["data"]) < 50
    assert len(page_all(client, "/api/v1/goods", limit=50)) == len(small_data.goods_holdings())
    assert engine.stats.snapshot()["faults"]["short_page"] > 0


def test_single_document_by_id(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data))
    doc = small_data.documents_holdings("transfer")[3]
    body = loads(client.get(f"/api/v1/documents/transfer/{doc.id}").content)
    assert document_from_json(body) == document_truth(doc)
    missing = client.get("/api/v1/documents/transfer/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and error_code(missing) == "DOCUMENT_NOT_FOUND"


# --- filters


def test_date_filters_from_inclusive_to_exclusive(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data))
    docs = small_data.documents_holdings("shipment")
    pivot = docs[len(docs) // 2]
    stamp = pivot.date.strftime("%Y-%m-%dT%H:%M:%S")
    since = page_all(client, "/api/v1/documents/shipment", date_from=stamp)
    until = page_all(client, "/api/v1/documents/shipment", date_to=stamp)
    assert since[0]["id"] == pivot.id and pivot.id not in {d["id"] for d in until}
    assert len(since) + len(until) == len(docs)
    day = pivot.date.date()
    one_day = page_all(client, "/api/v1/documents/shipment", date_from=day.isoformat(),
                       date_to=(day + timedelta(days=1)).isoformat())  # fmt: skip
    assert [d["id"] for d in one_day] == [
        d.id for d in small_data.documents_holdings("shipment", day, day + timedelta(1))
    ]
    offset_form = page_all(client, "/api/v1/documents/shipment", date_from=pivot.date.isoformat())
    assert offset_form == since


def test_number_filter(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data))
    doc = small_data.documents_holdings("inventory")[5]
    body = client.get("/api/v1/documents/inventory", params={"number": doc.number}).json()
    assert [d["id"] for d in body["data"]] == [doc.id] and body["pagination"]["total"] == 1
    assert client.get("/api/v1/documents/inventory", params={"number": "ИН-999999"}).json()["data"] == []


def test_modified_filters(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data))
    goods = small_data.goods_holdings()
    stamps = sorted(g.modified_at for g in goods if g.modified_at is not None)
    since, until = stamps[len(stamps) // 3], stamps[2 * len(stamps) // 3]
    params = {
        "modified_since": since.strftime("%Y-%m-%dT%H:%M:%S"),
        "modified_until": until.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    got = {served_position(r) for r in page_all(client, "/api/v1/goods", 50, **params)}
    expected = {(g.sku, g.warehouse) for g in goods if g.modified_at is not None and since <= g.modified_at < until}
    assert got == expected
    assert any(g.modified_at is None for g in goods), "the base has rows without modified_at"
    assert len(page_all(client, "/api/v1/goods")) == len(goods)
    docs = small_data.documents_holdings("goods-receipt")
    cut = sorted(d.modified_at for d in docs if d.modified_at)[len(docs) // 2]
    newer = page_all(client, "/api/v1/documents/goods-receipt", modified_since=cut.strftime("%Y-%m-%dT%H:%M:%S"))
    assert {d["id"] for d in newer} == {d.id for d in docs if d.modified_at and d.modified_at >= cut}


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/goods", {"limit": "abc"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/goods", {"limit": "0"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/goods", {"offset": "-1"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/goods", {"format": "csv"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/goods", {"modified_since": "вчера"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/documents/shipment", {"date_from": "2026-13-01"}, 400, "INVALID_PARAMETER"),
        ("/api/v1/documents/invoice", {}, 404, "NOT_FOUND"),
        ("/api/v1/catalogs", {}, 404, "NOT_FOUND"),
        ("/api/v2/goods", {}, 404, "NOT_FOUND"),
    ],
)
def test_bad_requests(
    small_data: SandboxData,
    make_client: MakeClient,
    path: str,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = make_client(engine_for(small_data)).get(path, params=params)
    assert response.status_code == status and error_code(response) == code
    assert response.headers["content-type"].startswith("application/json")


def test_wrong_method_and_foreign_path(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data))
    response = client.post("/api/v1/goods", json={})
    assert response.status_code == 405 and error_code(response) == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "GET"
    assert client.get("/api/v1/auth/token").status_code == 405
    assert client.get("http://sandbox/other/hs/exchange/api/version").status_code == 404


# --- authentication


def test_basic_auth_with_cyrillic_credentials(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = engine_for(small_data, auth="basic")
    assert make_client(engine, auth=("обмен", "пароль")).get("/api/v1/goods").status_code == 200
    for auth in (("обмен", "не тот"), ("admin", "пароль"), None):
        response = make_client(engine, auth=auth).get("/api/v1/goods")
        assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
        assert response.headers["www-authenticate"].startswith("Basic")
    garbage = make_client(engine).get("/api/v1/goods", headers={"Authorization": "Basic ***"})
    assert garbage.status_code == 401
    utf8 = base64.b64encode("обмен:пароль".encode()).decode()
    raw = engine.handle(
        SandboxRequest("GET", "/trade/hs/exchange/api/v1/goods", {}, {"AUTHORIZATION": f"basic {utf8}"})
    )
    assert raw.status == 200


def test_auth_failure_as_html_login_page(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, auth="basic", html_on_bad_auth=True), auth=("обмен", "x"))
    response = client.get("/api/v1/goods")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "1С:Предприятие" in response.text
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_bearer_tokens_expire_and_refresh_once(small_data: SandboxData, make_client: MakeClient) -> None:
    clock = FakeClock()
    engine = SandboxEngine(small_data, SandboxConfig(auth="bearer", token_ttl_s=60), clock=clock)
    client = make_client(engine)
    assert client.get("/api/v1/goods").status_code == 401
    wrong = client.post("/api/v1/auth/token", json={"username": "обмен", "password": "нет"})
    assert wrong.status_code == 401 and error_code(wrong) == "UNAUTHORIZED"
    tokens = client.post("/api/v1/auth/token", json={"username": "обмен", "password": "пароль"}).json()
    assert set(tokens) >= {"access_token", "expires_in", "refresh_token"} and tokens["expires_in"] == 60
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/goods", headers=bearer).status_code == 200
    clock.now += 61
    expired = client.get("/api/v1/goods", headers=bearer)
    assert expired.status_code == 401 and error_code(expired) == "TOKEN_EXPIRED"
    fresh = client.post("/api/v1/auth/token", json={"refresh_token": tokens["refresh_token"]}).json()
    assert client.get("/api/v1/goods", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    reused = client.post("/api/v1/auth/token", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401 and error_code(reused) == "INVALID_REFRESH_TOKEN"
    assert client.post("/api/v1/auth/token", content=b"not json").status_code == 400
    unknown = client.get("/api/v1/goods", headers={"Authorization": "Bearer made-up"})
    assert unknown.status_code == 401 and error_code(unknown) == "UNAUTHORIZED"


def test_api_key_in_header_or_query(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, auth="api_key"))
    assert client.get("/api/v1/goods", headers={"X-API-Key": "sk-test-1c"}).status_code == 200
    assert client.get("/api/v1/goods", params={"api_key": "sk-test-1c"}).status_code == 200
    assert client.get("/api/v1/goods", headers={"X-API-Key": "sk-wrong"}).status_code == 401
    assert client.get("/api/v1/goods").status_code == 401


# --- limits


def test_rate_limit_per_credential(small_data: SandboxData, make_client: MakeClient) -> None:
    clock = FakeClock()
    engine = SandboxEngine(small_data, SandboxConfig(auth="api_key", rate_limit=5), clock=clock)
    client = make_client(engine, headers={"X-API-Key": "sk-test-1c"})
    assert all(client.get("/api/v1/goods").status_code == 200 for _ in range(5))
    limited = client.get("/api/v1/goods")
    assert limited.status_code == 429 and error_code(limited) == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert client.get("/api/version").status_code == 200, "another credential has its own bucket"
    clock.now += 0.2
    assert client.get("/api/v1/goods").status_code == 200
    assert engine.stats.snapshot()["throttled"] == 1


def test_no_throttling_below_the_rate(small_data: SandboxData, make_client: MakeClient) -> None:
    clock = FakeClock()
    engine = SandboxEngine(small_data, SandboxConfig(rate_limit=0.5), clock=clock)
    client = make_client(engine)
    for _ in range(30):
        assert client.get("/api/v1/goods", params={"limit": 1}).status_code == 200
        clock.now += 2.01
    limited = client.get("/api/v1/goods")
    clock.now += 0.5
    assert limited.status_code == 200 and client.get("/api/v1/goods").status_code == 429
    assert engine.stats.snapshot()["throttled"] == 1


def test_retry_after_is_whole_seconds_until_a_token(small_data: SandboxData) -> None:
    clock = FakeClock()
    engine = SandboxEngine(small_data, SandboxConfig(rate_limit=0.25), clock=clock)
    request = SandboxRequest("GET", "/trade/hs/exchange/api/v1/goods")
    assert engine.handle(request).status == 200
    assert engine.handle(request).headers["retry-after"] == "4"
    clock.now += 4
    assert engine.handle(request).status == 200


def test_connection_limit(small_data: SandboxData) -> None:
    engine = engine_for(small_data, max_connections=2)
    with engine.connection() as first, engine.connection() as second:
        assert first is None and second is None
        with engine.connection() as third:
            assert third is not None and third.status == 429 and third.headers["retry-after"] == "1"
            assert json.loads(third.body)["code"] == "TOO_MANY_CONNECTIONS"
    with engine.connection() as again:
        assert again is None
    stats = engine.stats.snapshot()
    assert stats["max_in_flight"] == 2 and stats["throttled"] == 1 and stats["in_flight"] == 0


def test_connection_limit_counts_latency(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = engine_for(small_data, max_connections=2, latency_s=0.2)
    client = make_client(engine)
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(client.get("/api/v1/goods", params={"limit": 1}).status_code))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(set(statuses)) == [200, 429] and statuses.count(200) >= 2
    assert engine.stats.snapshot()["max_in_flight"] == 2


# --- faults


def faulty(data: SandboxData, **faults: Any) -> SandboxEngine:
    return SandboxEngine(data, SandboxConfig(faults=FaultConfig(**faults), seed=5))


def test_fault_500(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = faulty(small_data, error_500=1.0)
    client = make_client(engine)
    response = client.get("/api/v1/documents/shipment")
    assert response.status_code == 500 and error_code(response) == "INTERNAL_ERROR"
    assert client.get("/api/version").status_code == 200, "faults hit data endpoints only"
    assert engine.stats.snapshot()["faults"] == {"error_500": 1}


def test_fault_503_sometimes_with_retry_after(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(faulty(small_data, error_503=1.0))
    responses = [client.get("/api/v1/goods") for _ in range(40)]
    assert all(r.status_code == 503 and error_code(r) == "SERVICE_UNAVAILABLE" for r in responses)
    hints = [r.headers.get("retry-after") for r in responses]
    assert None in hints and "1" in hints and any(h and h.endswith("GMT") for h in hints)


def test_fault_drop_is_a_protocol_error(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = faulty(small_data, drop=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        make_client(engine).get("/api/v1/goods")
    response = engine.handle(SandboxRequest("GET", "/trade/hs/exchange/api/v1/goods"))
    assert response.cut_at is not None and 0 < response.cut_at < len(response.body)


def test_fault_truncate_is_invalid_json(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = faulty(small_data, truncate=1.0)
    response = make_client(engine).get("/api/v1/documents/inventory")
    assert response.status_code == 200 and int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(ValueError):  # JSONDecodeError, or UnicodeDecodeError when cut inside a character
        response.json()
    assert engine.stats.snapshot()["faults"] == {"truncate": 1}


def test_faulty_preset_mixes_every_kind(small_data: SandboxData, make_client: MakeClient) -> None:
    engine = SandboxEngine(SandboxData.generate(documents=300), SandboxConfig.faulty(0.1))
    client = make_client(engine)
    for offset in range(0, 4000, 20):
        with contextlib.suppress(httpx.RemoteProtocolError):
            client.get("/api/v1/documents/shipment", params={"limit": 20, "offset": offset % 200})
    stats = engine.stats.snapshot()
    assert set(stats["faults"]) == {"error_500", "error_503", "drop", "truncate", "short_page"}
    assert stats["drift_inserts"] == 5 and stats["requests"] == 200


def test_drift_grows_totals_mid_run(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=300)
    engine = SandboxEngine(data, SandboxConfig(faults=FaultConfig(drift_every=2, drift_limit=3)))
    client = make_client(engine)
    pages = [client.get("/api/v1/documents/goods-receipt", params={"limit": 5, "offset": 5 * i}) for i in range(10)]
    totals = [page.json()["pagination"]["total"] for page in pages]
    assert totals[0] < totals[-1] == totals[0] + 3 and totals == sorted(totals)
    assert engine.stats.snapshot()["drift_inserts"] == 3
    goods = loads(client.get("/api/v1/goods", params={"limit": 1000}).content)["data"]
    assert {served_position(g): g for g in goods}.keys() == {(g.sku, g.warehouse) for g in data.goods_holdings()}
    truth = {(g.sku, g.warehouse): g for g in data.goods_holdings()}
    assert all(good_from_json(g) == good_truth(truth[served_position(g)]) for g in goods), (
        "served goods follow the drifted quantities"
    )


# --- serialization


def test_awkward_serialization_trims_back_to_the_truth(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, seed=1))
    raw_goods = page_all(client, "/api/v1/goods", limit=200)
    assert [good_from_json(row) for row in raw_goods] == [good_truth(g) for g in small_data.goods_holdings()]
    raw_docs: list[dict[str, Any]] = []
    for slug in DOCUMENT_SLUGS:
        rows = page_all(client, f"/api/v1/documents/{slug}", limit=200)
        assert [document_from_json(row) for row in rows] == [
            document_truth(d) for d in small_data.documents_holdings(slug)
        ]
        raw_docs += rows

    values = [v for row in raw_goods for v in row.values()] + [v for row in raw_docs for v in row.values()]
    values += [v for row in raw_docs for item in row["items"] for v in item.values()]
    assert any(isinstance(v, str) and "," in v and v.replace(",", "").isdigit() for v in values), "decimal comma"
    assert any(isinstance(v, str) and v.isdigit() for v in values), "number as string"
    assert any(isinstance(v, str) and v.endswith(" ") for v in values), "padding"
    assert "0001-01-01T00:00:00" in values, "empty date"
    assert any("unit" not in row or "price" not in row for row in raw_goods), "omitted optional field"
    assert any("notes" not in row for row in raw_docs) and any(row.get("notes", "") is None for row in raw_docs)
    known = {"id", "code", "sku", "name", "unit", "price", "quantity", "warehouse", "deleted", "modified_at"}
    assert any(set(row) - known for row in raw_goods), "unknown extra fields"


def test_plain_serialization_is_canonical(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(engine_for(small_data, awkward=False))
    goods = page_all(client, "/api/v1/goods", limit=500)
    assert [good_from_json(row) for row in goods] == [good_truth(g) for g in small_data.goods_holdings()]
    assert all(set(row) == {"id", "code", "sku", "name", "unit", "price", "quantity", "warehouse", "deleted",
                            "modified_at"} for row in goods)  # fmt: skip
    assert all(not isinstance(row["quantity"], str) and row["sku"] == row["sku"].rstrip() for row in goods)


def test_serialization_is_stable(small_data: SandboxData) -> None:
    request = SandboxRequest("GET", "/trade/hs/exchange/api/v1/documents/shipment", {"limit": ["100"]})
    assert engine_for(small_data, seed=4).handle(request).body == engine_for(small_data, seed=4).handle(request).body
    assert engine_for(small_data, seed=4).handle(request).body != engine_for(small_data, seed=5).handle(request).body


def test_bad_records_are_served_as_bad(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=100, bad_records=7)
    client = make_client(engine_for(data, awkward=False))
    rows = {slug: page_all(client, f"/api/v1/documents/{slug}") for slug in DOCUMENT_SLUGS}
    items = [item for docs in rows.values() for doc in docs for item in doc["items"]]
    assert any(item["quantity"] == "abc" for item in items)
    assert any(item["sku"] is None for item in items)
    assert any(doc["number"] is None for docs in rows.values() for doc in docs)
    assert any(g["sku"] == "" for g in page_all(client, "/api/v1/goods"))


# --- concurrency and stats


def test_many_threads_page_concurrently(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=400)
    engine = SandboxEngine(data, SandboxConfig(latency_s=0.001, latency_jitter_s=0.002))
    client = make_client(engine)
    results: dict[str, list[str]] = {}

    def read(slug: str) -> None:
        results[slug] = [row["id"] for row in page_all(client, f"/api/v1/documents/{slug}", limit=25)]

    threads = [threading.Thread(target=read, args=(slug,)) for slug in DOCUMENT_SLUGS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {slug: [d.id for d in data.documents_holdings(slug)] for slug in DOCUMENT_SLUGS}
    stats = engine.stats.snapshot()
    assert stats["requests"] == stats["responses"][200] and stats["max_in_flight"] >= 2 and stats["in_flight"] == 0


def test_request_accepts_multi_dict_query_and_any_header_case() -> None:
    request = SandboxRequest("get", "/x", httpx.QueryParams([("a", "1"), ("a", "2")]), {"X-API-Key": "k"})
    assert request.method == "GET" and request.query == {"a": ["1", "2"]} and request.header("x-api-key") == "k"
    assert SandboxRequest("GET", "/x", {"a": "1"}).param("a") == "1"


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SandboxConfig(auth="kerberos")
    with pytest.raises(ValueError):
        FaultConfig(error_500=0.7, drop=0.7)
    with pytest.raises(ValueError):
        SandboxConfig(rate_limit=0)
