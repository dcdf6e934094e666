"""The webhook receiver: a small ASGI app (served by uvicorn, like the sandbox) that lets only genuine, fresh,
new events from 1C into the queue.

Every delivery goes through the same gates, cheapest first, and each refusal is counted by reason:
- too many deliveries per second (a flood)           → 429 `rate_limited`, with Retry-After
- a body over the limit (declared or actual)         → 413 `oversized` (the body is never buffered past the limit)
- no `X-1C-Signature`                                → 401 `unsigned`
- a signature that does not match (constant-time)    → 403 `bad_signature`
- not a JSON event `{"id","event","occurred_at","data"}` → 400 `malformed` (also an `occurred_at` that has no
  UTC equivalent, e.g. 0001-01-01T00:00:00+14:00)
- `occurred_at` older than the window, or too far ahead → 409 `stale`
- an event id already recorded                       → 200 `duplicate-ignored` (counted as `replayed`): 1C re-sends
  deliveries it thinks failed, and an error would only make it retry again
Accepted events are synced to the queue file before the 202 goes out, so an answered event is never lost.
Nothing of the secret or of a rejected body is ever logged or echoed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import uvicorn

from onec.config import ConfigError, Secret, Settings, WebhookSettings, variable_name
from onec.webhooks.events import EVENTS
from onec.webhooks.queue import EventQueue
from onec.webhooks.signature import HEADER, verify

PATH = "/webhooks/1c"
STATS_PATH = "/webhooks/stats"
SECRET_ENV = variable_name(WebhookSettings, "secret")
STARTUP_TIMEOUT_S = 10.0
_MAX_ID = 200

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ReceiverSettings:
    """The shared secret, the limits, and the 1C zone (`occurred_at` comes as 1C local time)."""

    secret: Secret
    timezone: str
    max_body_bytes: int = 64 * 1024
    max_age: timedelta = timedelta(hours=1)
    max_ahead: timedelta = timedelta(minutes=5)
    rate_per_s: float = 50.0
    burst: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverSettings:
        webhooks = settings.webhooks
        if not webhooks.secret:
            raise ConfigError(f"{SECRET_ENV} is not set: webhooks cannot be verified without the shared secret")
        return cls(
            secret=webhooks.secret,
            timezone=settings.timezone,
            max_body_bytes=webhooks.max_body_bytes,
            max_age=timedelta(seconds=webhooks.max_age_s),
            rate_per_s=float(webhooks.rate_per_s),
        )


class Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers or {}


@dataclass
class _Bucket:
    """A token bucket over all senders: 1C is one sender, so a flood is a flood whoever sends it."""

    rate: float
    capacity: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class WebhookReceiver:
    """The ASGI app. `counters` holds accepted events and rejections by reason (also at GET /webhooks/stats)."""

    def __init__(self, settings: ReceiverSettings, queue: EventQueue) -> None:
        self.settings = settings
        self.queue = queue
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._bucket = _Bucket(settings.rate_per_s, float(settings.burst))
        self._zone = ZoneInfo(settings.timezone)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == STATS_PATH and scope["method"] == "GET":
            await _answer(send, 200, {"counters": self.snapshot(), "queue": self.queue.counts()})
            return
        try:
            status, answer = await self._deliver(scope, receive)
        except Rejected as refusal:
            self._count(refusal.reason)
            log.warning("webhook refused (%s): %s", refusal.reason, refusal)
            await _answer(send, refusal.status, {"error": True, "code": refusal.reason, "message": str(refusal)},
                          refusal.headers)  # fmt: skip
            return
        await _answer(send, status, answer)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    async def _deliver(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        if scope["path"] != PATH:
            raise Rejected(404, "not_found", "no such endpoint")
        if scope["method"] != "POST":
            raise Rejected(405, "method_not_allowed", "POST only", {"allow": "POST"})
        with self._lock:
            admitted = self._bucket.take()
        if not admitted:
            raise Rejected(429, "rate_limited", "too many deliveries", {"retry-after": "1"})
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        body = await self._body(headers, receive)
        if not headers.get(HEADER.lower()):
            raise Rejected(401, "unsigned", f"{HEADER} is missing")
        if not verify(headers[HEADER.lower()], body, self.settings.secret.reveal()):
            raise Rejected(403, "bad_signature", f"{HEADER} does not match the body")
        event_id, event, occurred_at, data = self._parse(body)
        self._check_fresh(occurred_at)
        recorded = await asyncio.to_thread(self.queue.record, event_id, event, occurred_at, data, body)
        if not recorded:
            self._count("replayed")
            return 200, {"status": "duplicate-ignored", "id": event_id}
        self._count("accepted")
        return 202, {"status": "accepted", "id": event_id}

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Rejected(413, "oversized", f"body over {limit} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "oversized", f"body over {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _parse(self, body: bytes) -> tuple[str, str, datetime, dict[str, Any]]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Rejected(400, "malformed", "body is not JSON") from None
        if not isinstance(payload, dict):
            raise Rejected(400, "malformed", "body is not a JSON object")
        event_id, event, occurred, data = (payload.get(k) for k in ("id", "event", "occurred_at", "data"))
        if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > _MAX_ID:
            raise Rejected(400, "malformed", "id: expected a non-empty string")
        if event not in EVENTS:
            raise Rejected(400, "malformed", f"event: expected one of {', '.join(EVENTS)}")
        if not isinstance(data, dict):
            raise Rejected(400, "malformed", "data: expected an object")
        try:
            moment = datetime.fromisoformat(str(occurred))
        except ValueError:
            raise Rejected(400, "malformed", "occurred_at: expected an ISO 8601 date-time") from None
        try:
            moment = moment.astimezone(self._zone) if moment.tzinfo else moment.replace(tzinfo=self._zone)
            moment.astimezone(UTC)  # the freshness check compares instants, which takes the UTC equivalent
        except OverflowError:
            raise Rejected(400, "malformed", "occurred_at: a date-time outside years 1..9999 once in UTC") from None
        return event_id.strip(), event, moment, data

    def _check_fresh(self, occurred_at: datetime) -> None:
        now = datetime.now(UTC)
        if occurred_at < now - self.settings.max_age:
            raise Rejected(409, "stale", f"occurred_at is older than {self.settings.max_age}")
        if occurred_at > now + self.settings.max_ahead:
            raise Rejected(409, "stale", f"occurred_at is more than {self.settings.max_ahead} ahead")

    def _count(self, reason: str) -> None:
        with self._lock:
            self.counters[reason] += 1


def uvicorn_config(app: WebhookReceiver, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")


def serve(app: WebhookReceiver, host: str = "127.0.0.1", port: int = 8766) -> None:
    uvicorn.Server(uvicorn_config(app, host, port, "info")).run()


@contextmanager
def running_receiver(app: WebhookReceiver) -> Iterator[str]:
    """Serve on a free 127.0.0.1 port in a daemon thread; yields the delivery URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, "critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"webhooks-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()


async def _answer(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = orjson.dumps(body)
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    pairs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})
