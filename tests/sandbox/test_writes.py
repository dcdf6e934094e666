"""Writes (§1.6): create, batch, post, goods; limits; idempotency by number under concurrency; write faults."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from tests.sandbox.sandbox_helpers import MOSCOW, assert_ledger_agrees, loads, page_all, served_position

MakeClient = Callable[..., httpx.Client]


@pytest.fixture
def data() -> SandboxData:
    return SandboxData.generate(documents=120, seed=11)


def document(
    number: str, sku: str = "NEW-1", quantity: str = "2", price: str = "10.50", **extra: Any
) -> dict[str, Any]:
    line = {"line": 1, "sku": sku, "name": "Новый товар", "quantity": quantity, "unit_price": price}
    return {"number": number, "date": "2026-01-20T12:00:00", "warehouse": "wh-main", "items": [line], **extra}


def position(data: SandboxData, sku: str, warehouse: str) -> Decimal | None:
    return next((g.quantity for g in data.goods_holdings() if (g.sku, g.warehouse) == (sku, warehouse)), None)


def test_create_read_back_and_conflict(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data, SandboxConfig(awkward=False)))
    before = datetime.now(MOSCOW) - timedelta(seconds=2)
    created = client.post("/api/v1/documents/goods-receipt", json=document("ВХ-1", supplier='ООО "Новый"'))
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "document_number", "status", "posted"}
    assert body["document_number"] == "ВХ-1" and body["status"] == "draft" and body["posted"] is False
    one = loads(client.get(f"/api/v1/documents/goods-receipt/{body['id']}").content)
    assert one["supplier"] == 'ООО "Новый"' and one["items"][0]["total"] == Decimal("21")
    by_number = client.get("/api/v1/documents/goods-receipt", params={"number": "ВХ-1"}).json()["data"]
    assert [d["id"] for d in by_number] == [body["id"]]
    doc = data.find_by_number("goods-receipt", "ВХ-1")
    assert doc is not None and doc.modified_at is not None and doc.modified_at.tzinfo is not None
    assert before <= doc.modified_at <= datetime.now(MOSCOW) + timedelta(seconds=1)
    again = client.post("/api/v1/documents/goods-receipt", json=document("ВХ-1"))
    assert again.status_code == 409 and again.json()["code"] == "DOCUMENT_EXISTS"
    assert again.json()["details"]["existing_id"] == body["id"]
    existing = data.documents_holdings("shipment")[0]
    clash = client.post("/api/v1/documents/shipment", json=document(existing.number))
    assert clash.status_code == 409 and clash.json()["details"]["existing_id"] == existing.id
    invalid = client.post("/api/v1/documents/shipment", json=document(""))
    assert invalid.status_code == 400 and invalid.json()["code"] == "VALIDATION_ERROR"


def test_created_documents_join_paging_in_date_order(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data))
    assert client.post("/api/v1/documents/shipment", json=document("РС-Н1")).status_code == 201
    ids = [row["id"] for row in page_all(client, "/api/v1/documents/shipment", limit=17)]
    assert ids == [d.id for d in data.documents_holdings("shipment")]
    assert data.find_by_number("shipment", "РС-Н1").id in ids  # type: ignore[union-attr]
    window = page_all(client, "/api/v1/documents/shipment", date_from="2026-01-20", date_to="2026-01-21")
    assert "РС-Н1" in [row["number"].rstrip() for row in window]


def test_batch_results_per_document(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data))
    existing = data.documents_holdings("shipment")[3]
    bad_total = document("Б-3")
    bad_total["items"][0]["total"] = "21.10"
    close_total = document("Б-4", quantity="0.5", price="2.01")  # 1.005: a total of 1.00 is within 0.005
    close_total["items"][0]["total"] = 1.0
    batch = [
        document("Б-1", sku="НЕИЗВЕСТНЫЙ-1"),
        {"number": existing.number, "warehouse": "wh-main", "items": document("x")["items"]},
        document("Б-1"),
        {"number": "Б-2", "warehouse": "wh-main", "items": []},
        bad_total,
        close_total,
        {"warehouse": "wh-main", "items": document("x")["items"]},
        document("Б-5", warehouse="wh-nowhere"),
        document("Б-6", quantity="-1"),
        document("Б-7", quantity="abc"),
    ]
    response = client.post("/api/v1/documents/shipment/batch", json={"documents": batch})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "exists", "exists", "error", "error", "created", "error",
                                              "error", "error", "error"]  # fmt: skip
    assert all(set(r) == {"number", "status", "id", "code", "message"} for r in results)
    assert results[1]["id"] == existing.id and results[1]["code"] == "DOCUMENT_EXISTS"
    assert results[2]["id"] == results[0]["id"], "a repeated number inside one batch is `exists`"
    errors = [r for r in results if r["status"] == "error"]
    assert all(r["code"] == "VALIDATION_ERROR" and r["id"] is None for r in errors)
    assert all(any("а" <= ch <= "я" for ch in r["message"].lower()) for r in errors), "Russian messages"
    assert results[6]["number"] is None and "номер" in results[6]["message"]
    assert data.find_by_number("shipment", "Б-2") is None and data.find_by_number("shipment", "Б-3") is None
    assert data.item_by_sku("НЕИЗВЕСТНЫЙ-1") is not None, "an unknown sku becomes a nomenclature item"


def test_limits_answer_413(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data, SandboxConfig(max_batch_items=5, max_batch_bytes=4000)))
    lines = [{"sku": f"S-{i}", "name": "x", "quantity": 1, "unit_price": 1} for i in range(3)]
    docs = [{"number": f"L-{i}", "warehouse": "wh-main", "items": lines} for i in range(2)]
    over_items = client.post("/api/v1/documents/shipment/batch", json={"documents": docs})
    assert over_items.status_code == 413 and over_items.json()["code"] == "BATCH_TOO_LARGE"
    assert over_items.json()["details"] == {"max_items": 5, "max_bytes": 4000}
    assert data.find_by_number("shipment", "L-0") is None, "nothing of a refused batch is applied"
    assert client.post("/api/v1/documents/shipment/batch", json={"documents": docs[:1]}).status_code == 200
    one = {"number": "L-9", "warehouse": "wh-main", "items": lines * 2}
    assert client.post("/api/v1/documents/shipment", json=one).status_code == 413
    goods = [{"sku": f"G-{i}", "warehouse": "wh-main", "name": "x", "quantity": 1} for i in range(6)]
    assert client.post("/api/v1/goods/batch", json={"goods": goods}).status_code == 413
    big = {"documents": [{"number": "L-8", "warehouse": "wh-main", "notes": "ы" * 3000, "items": lines}]}
    over_bytes = client.post("/api/v1/documents/shipment/batch", json=big)
    assert over_bytes.status_code == 413 and over_bytes.json()["details"]["max_bytes"] == 4000


def test_posting_a_draft_moves_stock(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data))
    sku = data.goods_holdings()[0].sku
    before_main, before_spb = position(data, sku, "wh-main"), position(data, sku, "wh-spb")
    assert before_main is not None and before_spb is not None
    receipt = client.post("/api/v1/documents/goods-receipt", json=document("П-1", sku=sku, quantity="7,5")).json()
    transfer = document("П-2", sku=sku, quantity="2", warehouse_to="wh-spb")
    moved = client.post("/api/v1/documents/transfer", json=transfer).json()
    assert position(data, sku, "wh-main") == before_main, "a draft moves nothing"
    posted = client.post(f"/api/v1/documents/goods-receipt/{receipt['id']}/post")
    assert posted.status_code == 200 and posted.json() == {"id": receipt["id"], "posted": True}
    assert position(data, sku, "wh-main") == before_main + Decimal("7.5")
    assert client.post(f"/api/v1/documents/goods-receipt/{receipt['id']}/post").status_code == 200
    assert position(data, sku, "wh-main") == before_main + Decimal("7.5"), "posting twice moves once"
    client.post(f"/api/v1/documents/transfer/{moved['id']}/post")
    assert position(data, sku, "wh-main") == before_main + Decimal("5.5")
    assert position(data, sku, "wh-spb") == before_spb + 2
    doc = data.find_document("goods-receipt", receipt["id"])
    assert doc is not None and doc.status == "posted" and doc.posted
    fresh = client.post("/api/v1/documents/goods-receipt", json=document("П-3", sku="НОВЫЙ-9")).json()
    client.post(f"/api/v1/documents/goods-receipt/{fresh['id']}/post")
    assert position(data, "НОВЫЙ-9", "wh-main") == 2, "posting creates the position it reaches first"
    assert_ledger_agrees(data)
    missing = client.post("/api/v1/documents/shipment/00000000-0000-0000-0000-000000000000/post")
    assert missing.status_code == 404 and missing.json()["code"] == "DOCUMENT_NOT_FOUND"
    assert client.get("/api/v1/documents/shipment/batch").status_code == 405


def test_goods_batch(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data))
    known = data.goods_holdings()[5]
    rows = [
        {"sku": known.sku, "warehouse": known.warehouse, "quantity": "123,5", "price": 99.9},
        {"sku": "ТОВ-НОВЫЙ", "warehouse": "wh-ekb", "name": "Новый товар", "quantity": 4, "unit": "шт"},
        {"sku": "ТОВ-НОВЫЙ-2", "warehouse": "wh-ekb", "quantity": 4},
        {"sku": "", "warehouse": "wh-ekb", "name": "x"},
        {"sku": known.sku, "warehouse": "wh-nowhere"},
    ]
    results = client.post("/api/v1/goods/batch", json={"goods": rows}).json()["results"]
    assert [r["status"] for r in results] == ["updated", "created", "error", "error", "error"]
    assert results[0]["id"] == known.id and results[0]["sku"] == known.sku
    assert known.quantity == Decimal("123.5")
    assert {g.price for g in data.goods_holdings() if g.sku == known.sku} == {Decimal("99.90")}
    assert position(data, "ТОВ-НОВЫЙ", "wh-ekb") == 4
    assert_ledger_agrees(data)
    served = page_all(client, "/api/v1/goods", limit=100)
    assert ("ТОВ-НОВЫЙ", "wh-ekb") in {served_position(r) for r in served}


def test_concurrent_batches_never_duplicate_a_number(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(data, SandboxConfig(latency_s=0.001)))
    numbers = [f"КОН-{i:03d}" for i in range(30)]
    statuses: list[str] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        order = numbers[offset:] + numbers[:offset]
        for start in range(0, 30, 10):
            batch = [document(n) for n in order[start : start + 10]]
            results = client.post("/api/v1/documents/adjustment-up/batch", json={"documents": batch}).json()
            with lock:
                statuses.extend(r["status"] for r in results["results"])

    threads = [threading.Thread(target=send, args=(offset * 7 % 30,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    counts = data.count_documents_by_number("adjustment-up")
    assert all(counts[n] == 1 for n in numbers)
    assert statuses.count("created") == 30 and statuses.count("exists") == 7 * 30


# --- write faults


def faulty(data: SandboxData, **faults: Any) -> SandboxEngine:
    return SandboxEngine(data, SandboxConfig(faults=FaultConfig(**faults), seed=3))


def test_apply_then_drop(data: SandboxData, make_client: MakeClient) -> None:
    engine = faulty(data, apply_then_drop=1.0)
    client = make_client(engine)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/v1/documents/shipment/batch", json={"documents": [document("Д-1"), document("Д-2")]})
    assert data.find_by_number("shipment", "Д-1") and data.find_by_number("shipment", "Д-2"), "applied fully"
    assert engine.stats.snapshot()["faults"] == {"apply_then_drop": 1}
    assert client.get("/api/v1/documents/shipment", params={"number": "Д-2"}).json()["pagination"]["total"] == 1


def test_apply_then_timeout(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(faulty(data, apply_then_timeout=1.0), timeout=2.0)
    started = datetime.now()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/v1/documents/shipment", json=document("Т-1"))
    assert (datetime.now() - started).total_seconds() < 1, "the 35 s are not slept in-process"
    assert data.find_by_number("shipment", "Т-1") is not None
    slow = faulty(data, apply_then_timeout=1.0, write_timeout_delay_s=0.05)
    assert make_client(slow, timeout=2.0).post("/api/v1/documents/shipment", json=document("Т-2")).status_code == 201


def test_partial_batch_applies_the_first_half_then_500(data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(faulty(data, partial_batch=1.0))
    docs = [document(f"Ч-{i}") for i in range(5)]
    response = client.post("/api/v1/documents/shipment/batch", json={"documents": docs})
    assert response.status_code == 500 and response.json()["code"] == "INTERNAL_ERROR"
    assert [data.find_by_number("shipment", f"Ч-{i}") is not None for i in range(5)] == [True, True] + [False] * 3
    single = client.post("/api/v1/documents/shipment", json=document("Ч-9"))
    assert single.status_code == 201, "a single document is not a batch"
    goods = [{"sku": f"ЧТ-{i}", "warehouse": "wh-main", "name": "x", "quantity": 1} for i in range(4)]
    assert client.post("/api/v1/goods/batch", json={"goods": goods}).status_code == 500
    assert [position(data, f"ЧТ-{i}", "wh-main") for i in range(4)] == [1, 1, None, None]


@pytest.mark.parametrize(("kind", "status"), [("error_503", 503), ("error_500", 500)])
def test_refusals_apply_nothing(data: SandboxData, make_client: MakeClient, kind: str, status: int) -> None:
    client = make_client(faulty(data, **{kind: 1.0}))
    response = client.post("/api/v1/documents/shipment/batch", json={"documents": [document("О-1")]})
    assert response.status_code == status and data.find_by_number("shipment", "О-1") is None


def test_write_fault_rates_are_checked() -> None:
    with pytest.raises(ValueError):
        FaultConfig(error_500=0.5, partial_batch=0.6)
    assert FaultConfig(drop=0.6, partial_batch=0.6).partial_batch == 0.6, "reads and writes are separate draws"


def test_faulty_preset_can_fail_writes_too() -> None:
    plain = SandboxConfig.faulty(0.05)
    assert plain.faults.apply_then_drop == plain.faults.partial_batch == 0
    both = SandboxConfig.faulty(0.05, write_rate=0.1, seed=2)
    assert both.faults.apply_then_timeout == 0.1 and both.faults.write_timeout_delay_s == 2.0 and both.seed == 2
