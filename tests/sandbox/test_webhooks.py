"""Webhooks (§1.8, sending side): subscriptions, signed deliveries of what writes changed, repeats, disorder,
retries of failed deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.webhooks import WebhookHub

MakeClient = Callable[..., httpx.Client]
SECRET = "webhook_secret_key"


@dataclass
class Receiver:
    """A webhook receiver behind an httpx MockTransport; answers `status` (a list is consumed in order)."""

    statuses: list[int] = field(default_factory=list)
    received: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.received]


def subscribe(client: httpx.Client, *events: str) -> None:
    for event in events:
        answer = client.post("/api/v1/webhooks", json={"event": event, "url": "https://app.test/1c", "secret": SECRET})
        assert answer.status_code == 201 and answer.json()["event"] == event and "secret" not in answer.json()


def test_writes_are_delivered_signed(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=60, seed=6)
    engine = SandboxEngine(data)
    client = make_client(engine)
    subscribe(client, "document.created", "document.posted", "goods.updated", "inventory.synced")
    line = {"sku": data.goods_holdings()[0].sku, "quantity": 1, "unit_price": 5}
    doc = {"number": "W-1", "warehouse": "wh-main", "items": [line]}
    created = client.post("/api/v1/documents/inventory", json=doc).json()
    client.post(f"/api/v1/documents/inventory/{created['id']}/post")
    good = data.goods_holdings()[3]
    client.post("/api/v1/goods/batch", json={"goods": [{"sku": good.sku, "warehouse": good.warehouse, "quantity": 7}]})
    receiver = Receiver()
    with receiver.client() as http:
        sent = engine.webhooks.flush(http, allow_remote=True)
    assert len(sent) == 4 and all(s.status == 200 for s in sent) and engine.webhooks.pending() == 0
    for request in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), request.content, hashlib.sha256).hexdigest()
        assert request.headers["x-1c-signature"] == expected and request.url == "https://app.test/1c"
    by_event = {body["event"]: body for body in receiver.bodies()}
    assert set(by_event) == {"document.created", "document.posted", "goods.updated", "inventory.synced"}
    assert by_event["document.created"]["data"] == {"document_id": created["id"], "type": "inventory", "number": "W-1"}
    assert by_event["document.posted"]["data"]["document_id"] == created["id"]
    assert by_event["inventory.synced"]["data"] == {"warehouse": "wh-main", "items_counted": 1}
    old = by_event["goods.updated"]["data"]
    assert old["sku"] == good.sku and old["new_qty"] == "7.000" and old["warehouse"] == good.warehouse
    assert all(set(body) == {"id", "event", "occurred_at", "data"} for body in receiver.bodies())
    datetime.fromisoformat(by_event["document.created"]["occurred_at"])


def test_repeats_and_disorder(make_client: MakeClient) -> None:
    engine = SandboxEngine(SandboxData.generate(documents=40), SandboxConfig(faults=FaultConfig(webhook_duplicate=1.0)))
    client = make_client(engine)
    subscribe(client, "document.created")
    for index in range(12):
        doc = {
            "number": f"R-{index:02d}",
            "warehouse": "wh-main",
            "items": [{"sku": "X", "quantity": 1, "unit_price": 1}],
        }
        assert client.post("/api/v1/documents/shipment", json=doc).status_code == 201
    receiver = Receiver()
    with receiver.client() as http:
        engine.webhooks.flush(http, allow_remote=True)
    numbers = [body["data"]["number"] for body in receiver.bodies()]
    assert sorted(numbers) == sorted(f"R-{i:02d}" for i in range(12) for _ in range(2)), "every event twice"
    assert numbers[:12] != sorted(numbers[:12]), "out of order"
    ids: dict[str, str] = {}
    for body in receiver.bodies():
        assert ids.setdefault(body["data"]["number"], body["id"]) == body["id"], "a repeat keeps the event id"


def test_failed_deliveries_are_retried() -> None:
    hub = WebhookHub()
    hub.register("goods.updated", "http://127.0.0.1:9/hook", SECRET)
    hub.register("document.deleted", "http://127.0.0.1:9/other", SECRET)
    hub.publish("goods.updated", {"sku": "A"}, datetime(2026, 1, 31, 10, 0))
    receiver = Receiver(statuses=[500])
    with receiver.client() as http:
        assert [s.status for s in hub.flush(http)] == [500] and hub.pending() == 1
        assert [s.status for s in hub.flush(http)] == [200] and hub.pending() == 0

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    hub.publish("goods.updated", {"sku": "B"}, datetime(2026, 1, 31, 10, 0))
    with httpx.Client(transport=httpx.MockTransport(refuse)) as down:
        assert hub.flush(down)[0].error == "ConnectError" and hub.pending() == 1
    remote = WebhookHub()
    remote.register("goods.updated", "https://example.com/hook", SECRET)
    remote.publish("goods.updated", {"sku": "C"}, datetime(2026, 1, 31, 10, 0))
    receiver = Receiver()
    with receiver.client() as http:
        assert remote.flush(http)[0].error == "RemoteRefused" and not receiver.received, "loopback only by default"


@pytest.mark.parametrize(
    "body",
    [
        {"event": "document.exploded", "url": "https://a.test/", "secret": "s"},
        {"event": "goods.updated", "url": "ftp://a.test/", "secret": "s"},
        {"event": "goods.updated", "url": "https://a.test/", "secret": ""},
        [],
    ],
)
def test_bad_subscriptions_are_400(small_data: SandboxData, make_client: MakeClient, body: Any) -> None:
    response = make_client(SandboxEngine(small_data)).post("/api/v1/webhooks", json=body)
    assert response.status_code == 400


def test_odata_writes_announce_posting_and_deletion(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=40, seed=3)
    engine = SandboxEngine(data)
    subscribe(make_client(engine), "document.posted", "document.deleted")
    odata = make_client(engine, base_url="http://sandbox/trade/odata/standard.odata")
    doc = next(d for d in data.documents_holdings("shipment") if not d.posted and not d.deleted)
    key = f"/Document_РасходТовара(guid'{doc.id}')"
    assert odata.post(f"{key}/Post").status_code == 200
    assert odata.patch(key, json={"DeletionMark": True}).status_code == 200
    receiver = Receiver()
    with receiver.client() as http:
        engine.webhooks.flush(http, allow_remote=True)
    assert sorted(body["event"] for body in receiver.bodies()) == ["document.deleted", "document.posted"]
    assert all(body["data"]["document_id"] == doc.id for body in receiver.bodies())
