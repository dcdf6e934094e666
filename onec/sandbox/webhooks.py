"""The sending side of §1.8: subscriptions, signed deliveries, and the disorder real deliveries arrive in.

Why explicit flushing instead of a background sender: 1C sends webhooks from background jobs, some time after the
change, and tests must control when. `publish` queues a delivery per matching subscription; `flush(client)` sends
what is queued through any httpx client (a real one to a receiver on 127.0.0.1, or one with a MockTransport), in
shuffled order, some of them twice (`duplicate_rate`), keeping failed ones queued for the next flush. A receiver
that assumes once-only, in-order delivery fails against it, as it would in production.

Each delivery is `{"id", "event", "occurred_at", "data"}` with `X-1C-Signature: sha256=<hex>`, the HMAC-SHA256
of the raw body under the subscription's secret. The event id is shared by every delivery (and repeat) of one
event, so a receiver can de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from onec.sandbox.render import local_text

EVENTS = ("document.created", "document.posted", "document.deleted", "goods.updated", "inventory.synced")
SIGNATURE_HEADER = "X-1C-Signature"
MAX_ATTEMPTS = 5
MAX_PER_FLUSH = 10_000


class Change(Protocol):
    """Anything shaped like a change event (the mutator's `ChangeEvent` is one)."""

    @property
    def event(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class Subscription:
    id: str
    event: str
    url: str
    secret: str = field(repr=False)


@dataclass
class Delivery:
    """One signed POST waiting to be sent (again, after a failure)."""

    subscription: Subscription
    event_id: str
    body: bytes
    attempts: int = 0

    def headers(self) -> dict[str, str]:
        return {
            "content-type": "application/json; charset=utf-8",
            SIGNATURE_HEADER.lower(): signature(self.subscription.secret, self.body),
            "x-1c-event": self.subscription.event,
            "x-1c-delivery": self.event_id,
        }


@dataclass(frozen=True)
class Sent:
    """What one send attempt did: the status, or the transport error's name."""

    url: str
    event_id: str
    status: int | None
    error: str | None = None


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookHub:
    """Subscriptions and the delivery queue; thread-safe."""

    def __init__(self, seed: int = 0, duplicate_rate: float = 0.0) -> None:
        if not 0 <= duplicate_rate <= 1:
            raise ValueError("duplicate_rate must be within [0, 1]")
        self.duplicate_rate = duplicate_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._queue: list[Delivery] = []

    def register(self, event: Any, url: Any, secret: Any) -> Subscription:
        """Validate and add a subscription; ValueError (with a Russian message) when 1C would refuse it."""
        if event not in EVENTS:
            raise ValueError(f"Неизвестное событие {event!r}; допустимые: {', '.join(EVENTS)}")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError("Адрес подписки должен быть URL http(s)")
        if not isinstance(secret, str) or not secret:
            raise ValueError("Не заполнен секрет подписки")
        subscription = Subscription(str(uuid.uuid4()), event, url, secret)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)

    def publish(self, event: str, data: dict[str, Any], occurred_at: datetime, event_id: str | None = None) -> str:
        """Queue a delivery of the event to every subscription of its kind; returns the event id."""
        event_id = event_id or str(uuid.uuid4())
        body = orjson.dumps({"id": event_id, "event": event, "occurred_at": local_text(occurred_at), "data": data})
        with self._lock:
            self._queue += [Delivery(s, event_id, body) for s in self._subscriptions if s.event == event]
        return event_id

    def publish_change(self, change: Change) -> str:
        return self.publish(change.event, change.data, change.occurred_at, change.id)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self, client: httpx.Client, allow_remote: bool = False) -> list[Sent]:
        """Send everything queued, shuffled, some twice; failures (transport errors, non-2xx) stay queued until
        MAX_ATTEMPTS. Sending happens outside the lock, so publishing may go on meanwhile.

        Bounded on purpose (a test tool must not become a request cannon): at most MAX_PER_FLUSH posts per call,
        and only to loopback hosts unless `allow_remote` (pass it with a MockTransport client, for instance);
        a refused target counts as a failed attempt with error "RemoteRefused".
        """
        with self._lock:
            batch, self._queue = self._queue[:MAX_PER_FLUSH], self._queue[MAX_PER_FLUSH:]
            self._rng.shuffle(batch)
            repeats = [d for d in batch if self._rng.random() < self.duplicate_rate]
        sent: list[Sent] = []
        failed: dict[int, Delivery] = {}
        for delivery in (batch + repeats)[:MAX_PER_FLUSH]:
            result = (
                _send(client, delivery) if allow_remote or _loopback(delivery.subscription.url) else _refused(delivery)
            )
            sent.append(result)
            delivery.attempts += 1
            ok = result.status is not None and 200 <= result.status < 300
            if not ok and delivery.attempts < MAX_ATTEMPTS:
                failed[id(delivery)] = delivery
        with self._lock:
            self._queue = list(failed.values()) + self._queue
        return sent


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(delivery: Delivery) -> Sent:
    return Sent(delivery.subscription.url, delivery.event_id, None, "RemoteRefused")


def _send(client: httpx.Client, delivery: Delivery) -> Sent:
    url = delivery.subscription.url
    try:
        response = client.post(url, content=delivery.body, headers=delivery.headers())
    except httpx.HTTPError as error:
        return Sent(url, delivery.event_id, None, type(error).__name__)
    return Sent(url, delivery.event_id, response.status_code)
