"""The exchange client over a MockTransport fake 1C: paths, parameters, dates, keys and shape checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from onec.client import OneCClient, _document_key, _goods_key
from onec.http import OneCProtocolError
from onec.http.limits import query_stats

GOODS = [{"sku": f"P-{i:03d}  ", "warehouse": "wh-main ", "name": "Товар", "quantity": str(i)} for i in range(23)]


def fake_1c(seen: list[httpx.Request], body: Any = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/api/version"):
            return httpx.Response(200, json={"version": "1.4.2", "api_versions": ["v1"]})
        if body is not None:
            return httpx.Response(200, json=body)
        offset, limit = int(request.url.params["offset"]), min(int(request.url.params["limit"]), 10)
        page = {"data": GOODS[offset : offset + limit], "pagination": {"total": len(GOODS), "limit": limit}}
        return httpx.Response(200, json=page)

    return handler


def test_goods_pages_through_everything_raw(session_for: Any) -> None:
    seen: list[httpx.Request] = []
    client = OneCClient(session_for(fake_1c(seen)), page_size=50, max_workers=2)
    with query_stats() as query:
        got = [record for batch in client.goods() for record in batch]
    assert got == GOODS  # raw: padded strings and string numbers untouched
    assert (query.pages, query.passes, query.requests) == (3, 1, 3)
    assert seen[0].url.params["format"] == "json"
    assert client.stats.snapshot()["requests"] == 3


def test_version(session_for: Any) -> None:
    assert OneCClient(session_for(fake_1c([]))).version()["version"] == "1.4.2"


def test_document_dates_are_local_iso_without_offset(session_for: Any) -> None:
    seen: list[httpx.Request] = []
    body = {"data": [], "pagination": {"total": 0, "limit": 500, "offset": 0}}
    client = OneCClient(session_for(fake_1c(seen, body), timezone="Europe/Moscow"))
    batches = client.documents(
        "shipment",
        date(2026, 1, 1),
        datetime(2026, 2, 1, 0, 0, tzinfo=UTC),
        modified_since=datetime(2026, 1, 5, 12, 30, 15),
    )
    assert list(batches) == []
    params = seen[0].url.params
    assert seen[0].url.path == "/trade/hs/exchange/api/v1/documents/shipment"
    assert params["date_from"] == "2026-01-01T00:00:00"
    assert params["date_to"] == "2026-02-01T03:00:00"
    assert params["modified_since"] == "2026-01-05T12:30:15"
    assert "modified_until" not in params


def test_unknown_document_type_lists_the_valid_ones(session_for: Any) -> None:
    client = OneCClient(session_for(fake_1c([])))
    with pytest.raises(ValueError, match="goods-receipt, shipment, transfer"):
        client.documents("invoice", None, None)


def test_keys_are_stripped_and_keyless_records_stay_apart() -> None:
    assert _document_key({"number": "00001  "}) == _document_key({"number": "00001"}) == "00001"
    assert _goods_key({"sku": " P-1 ", "warehouse": "wh "}) == ("P-1", "wh")
    assert _goods_key({"sku": "", "warehouse": "wh", "q": 1}) != _goods_key({"sku": "", "warehouse": "wh", "q": 2})
    assert _document_key({"date": "x"}) == _document_key({"date": "x"})


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"data": {}, "pagination": {"total": 0, "limit": 10}},
        {"data": [], "pagination": None},
        {"data": [1], "pagination": {"total": 1, "limit": 10}},
        {"data": [], "pagination": {"total": "many", "limit": 10}},
    ],
)
def test_wrong_shape_is_a_protocol_error(session_for: Any, body: Any) -> None:
    client = OneCClient(session_for(fake_1c([], body)))
    with pytest.raises(OneCProtocolError):
        list(client.goods())
