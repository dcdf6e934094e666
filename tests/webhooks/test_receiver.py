"""The receiver over real HTTP on 127.0.0.1: genuine events are queued once; everything else is refused with the
right status and counted by reason."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onec.config import ConfigError, Secret, Settings
from onec.webhooks.queue import EventQueue
from onec.webhooks.receiver import PATH, STATS_PATH, ReceiverSettings, WebhookReceiver, running_receiver
from onec.webhooks.signature import HEADER, sign, verify

ZONE = "Europe/Moscow"
SECRET = "whsec-Ёжик-42"


def event(**changes: Any) -> dict[str, Any]:
    now = datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None, microsecond=0)
    body = {"id": str(uuid.uuid4()), "event": "document.posted", "occurred_at": now.isoformat(),
            "data": {"type": "shipment", "number": "РТ-000001"}}  # fmt: skip
    body.update(changes)
    return body


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", HEADER: sign(body, secret)}


@pytest.fixture
def queue(tmp_path: Path) -> EventQueue:
    return EventQueue(tmp_path / "webhooks.sqlite3")


@pytest.fixture
def receiver(queue: EventQueue) -> WebhookReceiver:
    settings = ReceiverSettings(Secret(SECRET), ZONE, max_body_bytes=2048, rate_per_s=5, burst=40)
    return WebhookReceiver(settings, queue)


@pytest.fixture
def url(receiver: WebhookReceiver) -> Iterator[str]:
    with running_receiver(receiver) as address:
        yield address


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=5)


def test_good_events_are_queued_once_and_everything_else_is_refused(
    url: str, receiver: WebhookReceiver, queue: EventQueue
) -> None:
    good = orjson.dumps(event())
    assert post(url, good, signed(good)).status_code == 202
    replay = post(url, good, signed(good))
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate-ignored"
    assert post(url, good, {"content-type": "application/json"}).status_code == 401
    other = orjson.dumps(event())
    assert post(url, other, signed(other, "wrong-secret")).status_code == 403
    assert post(url, other, {HEADER: "sha256=" + "0" * 64}).status_code == 403
    tampered = other.replace(b"shipment", b"transfer")
    assert post(url, tampered, signed(other)).status_code == 403
    huge = orjson.dumps(event(data={"notes": "x" * 5000}))
    assert post(url, huge, signed(huge)).status_code == 413
    old = datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None) - timedelta(hours=2)
    stale = orjson.dumps(event(occurred_at=old.isoformat()))
    assert post(url, stale, signed(stale)).status_code == 409
    for bad in (b"not json", orjson.dumps(event(event="document.exploded")), orjson.dumps(event(id=""))):
        assert post(url, bad, signed(bad)).status_code == 400
    counters = httpx.get(url.replace("/webhooks/1c", STATS_PATH), timeout=5).json()["counters"]
    assert counters == {"accepted": 1, "replayed": 1, "unsigned": 1, "bad_signature": 3, "oversized": 1,
                        "stale": 1, "malformed": 3}  # fmt: skip
    assert queue.counts()["pending"] == 1


def test_a_flood_is_cut_off_and_counted(queue: EventQueue) -> None:
    settings = ReceiverSettings(Secret(SECRET), ZONE, rate_per_s=0.001, burst=40)  # no refill during the test
    receiver = WebhookReceiver(settings, queue)
    statuses = []
    with running_receiver(receiver) as url, httpx.Client(timeout=5) as client:
        for _ in range(80):
            body = orjson.dumps(event())
            statuses.append(client.post(url, content=body, headers=signed(body)).status_code)
    assert statuses == [202] * 40 + [429] * 40
    assert receiver.snapshot() == {"accepted": 40, "rate_limited": 40}
    assert queue.counts()["pending"] == 40


def test_oversized_bodies_are_refused_declared_or_streamed(url: str) -> None:
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port), timeout=5) as raw:  # declares 1 GB, sends nothing
        raw.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n".encode())
        assert raw.recv(100).startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    with httpx.Client(timeout=5) as client:  # chunked, no length declared: cut off while streaming
        assert client.post(url, content=chunks(), headers=signed(b"")).status_code == 413


@given(st.binary(max_size=300), st.text(min_size=1, max_size=30))
def test_only_the_exact_signature_verifies(body: bytes, secret: str) -> None:
    assert verify(sign(body, secret), body, secret)
    assert verify(sign(body, secret).upper().replace("SHA256=", "sha256="), body, secret)
    assert not verify(sign(body + b"!", secret), body, secret)
    assert not verify(sign(body, secret + "x"), body, secret)
    assert not verify(None, body, secret) and not verify(sign(body, secret), body, "")


def test_settings_need_the_secret_and_sane_limits() -> None:
    with pytest.raises(ConfigError, match="ONEC_WEBHOOK_SECRET"):
        ReceiverSettings.from_settings(Settings.from_env({}))
    with pytest.raises(ConfigError, match="ONEC_WEBHOOK_MAX_BYTES"):
        Settings.from_env({"ONEC_WEBHOOK_SECRET": "s", "ONEC_WEBHOOK_MAX_BYTES": "-1"})
    env = {"ONEC_WEBHOOK_SECRET": "s", "ONEC_WEBHOOK_MAX_AGE_S": "60", "ONEC_TIMEZONE": ZONE}
    settings = ReceiverSettings.from_settings(Settings.from_env(env))
    assert settings.max_age == timedelta(seconds=60) and "s" not in repr(settings.secret)


def deliver(receiver: WebhookReceiver, body: bytes) -> int:
    """One signed delivery straight into the ASGI app: an error it does not answer propagates instead of a 500."""
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        answers.append(message)

    headers = [(name.lower().encode(), value.encode()) for name, value in signed(body).items()]
    asyncio.run(receiver({"type": "http", "path": PATH, "method": "POST", "headers": headers}, receive, send))
    return int(answers[0]["status"])


EDGE_INSTANTS = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-14:00",
                 "9999-12-31T23:59:59", "0001-01-01T13:59:59+14:00"]  # fmt: skip


@pytest.mark.parametrize("occurred_at", EDGE_INSTANTS)
def test_an_instant_at_the_ends_of_the_calendar_is_refused_as_malformed_not_a_500(
    occurred_at: str, url: str, queue: EventQueue
) -> None:
    body = orjson.dumps(event(occurred_at=occurred_at))
    answer = post(url, body, signed(body))
    assert answer.status_code in (400, 409), answer.text
    assert "occurred_at" in answer.json()["message"]
    assert queue.counts()["pending"] == 0


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.one_of(st.none(), st.integers(min_value=-14 * 60, max_value=14 * 60)),
)
def test_any_iso_instant_is_answered_never_raised(moment: datetime, offset_minutes: int | None) -> None:
    if offset_minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    with tempfile.TemporaryDirectory() as directory:
        queue = EventQueue(Path(directory) / "webhooks.sqlite3")
        receiver = WebhookReceiver(ReceiverSettings(Secret(SECRET), ZONE, rate_per_s=1e6, burst=10**6), queue)
        status = deliver(receiver, orjson.dumps(event(occurred_at=moment.isoformat())))
        assert status in (202, 400, 409)
        assert queue.counts()["pending"] == (1 if status == 202 else 0)
