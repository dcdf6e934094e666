"""The sandbox 1C's webhooks (§1.8): registration (`POST /api/v1/webhooks`) and signed deliveries of change
events, with the re-deliveries and reordering a real 1C produces.

Why a subclass of the engine: the engine has no webhook route yet and is another module's business, so this
module adds the one route around it (the same auth and throttling apply) and leaves every other request to it.
Deliveries are bounded (a cap on how many one call sends, a timeout each) and go to loopback addresses only unless
`allow_remote` is set: the sandbox is a test tool and must not be turned into a request cannon.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import HttpError, SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.sandbox.mutations import ChangeEvent
from onec.sandbox.protocol import json_response
from onec.webhooks.events import EVENTS
from onec.webhooks.signature import HEADER, sign

WEBHOOKS_PATH = "api/v1/webhooks"
MAX_DELIVERIES = 10_000


@dataclass(frozen=True)
class Registration:
    id: str
    event: str
    url: str
    secret: str

    def __repr__(self) -> str:
        return f"Registration(id={self.id!r}, event={self.event!r}, url={self.url!r})"


@dataclass(frozen=True)
class Delivery:
    """One POST made: which event, to where, and the status answered (0: no answer)."""

    event_id: str
    url: str
    status: int


class WebhookSender:
    """Signs and POSTs events. `duplicate_rate` re-delivers that share of events (byte-identical, as a retry
    would be), `shuffle` sends in random order; both seeded."""

    def __init__(
        self,
        *,
        seed: int = 0,
        duplicate_rate: float = 0.0,
        shuffle: bool = False,
        timeout_s: float = 5.0,
        max_deliveries: int = MAX_DELIVERIES,
        allow_remote: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 0 <= duplicate_rate <= 1 or max_deliveries < 1 or timeout_s <= 0:
            raise ValueError("duplicate_rate must be within [0, 1], max_deliveries and timeout_s positive")
        self._rng = random.Random(seed)
        self._duplicate_rate = duplicate_rate
        self._shuffle = shuffle
        self._max = max_deliveries
        self._allow_remote = allow_remote
        self._client = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, secret: str, events: Sequence[ChangeEvent]) -> list[Delivery]:
        """Deliver `events` to `url`; failures are recorded, never retried here (bounded by design)."""
        self._check_target(url)
        bodies = [(event.id, orjson.dumps(event.payload())) for event in events]
        planned = list(bodies)
        planned += [body for body in bodies if self._rng.random() < self._duplicate_rate]
        if self._shuffle:
            self._rng.shuffle(planned)
        if len(planned) > self._max:
            raise ValueError(f"{len(planned)} deliveries exceed the cap of {self._max}")
        return [self._post(url, secret, event_id, body) for event_id, body in planned]

    def _post(self, url: str, secret: str, event_id: str, body: bytes) -> Delivery:
        headers = {"content-type": "application/json; charset=utf-8", HEADER: sign(body, secret)}
        try:
            status = self._client.post(url, content=body, headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        return Delivery(event_id, url, status)

    def _check_target(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook URL must be http(s)://host/…")
        if self._allow_remote or parts.hostname == "localhost":
            return
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError("the sandbox delivers webhooks to loopback addresses only (allow_remote=False)")


class WebhookSandboxEngine(SandboxEngine):
    """The sandbox engine plus `POST /api/v1/webhooks` and `notify(events)` to the registered URLs."""

    def __init__(
        self,
        data: SandboxData,
        config: SandboxConfig | None = None,
        *,
        sender: WebhookSender | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        super().__init__(data, config)
        self.sender = sender or WebhookSender()
        self.registrations: list[Registration] = []
        self._registrations_lock = threading.Lock()
        self._new_id = new_id

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        base = self.config.base_path.rstrip("/")
        if request.path.rstrip("/") != f"{base}/{WEBHOOKS_PATH}":
            return super().handle(request)
        self.stats.request()
        try:
            response = self._register(request)
        except HttpError as error:
            response = error.response(self.config.html_on_bad_auth)
        self.stats.response(response.status)
        return response

    def notify(self, events: Sequence[ChangeEvent]) -> list[Delivery]:
        """Send each event to every registration for its kind."""
        with self._registrations_lock:
            registrations = list(self.registrations)
        deliveries: list[Delivery] = []
        for registration in registrations:
            chosen = [event for event in events if event.event == registration.event]
            if chosen:
                deliveries += self.sender.send(registration.url, registration.secret, chosen)
        return deliveries

    def _register(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST":
            raise HttpError(405, "METHOD_NOT_ALLOWED", "Метод не поддерживается", headers={"allow": "POST"})
        self._throttle(self._authenticate(request))
        payload = _object(request.body)
        event, url, secret = payload.get("event"), payload.get("url"), payload.get("secret")
        if event not in EVENTS:
            raise HttpError(400, "INVALID_EVENT", f"Неизвестное событие {event!r}", {"events": list(EVENTS)})
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise HttpError(400, "INVALID_URL", "Поле url должно быть адресом http(s)")
        if not isinstance(secret, str) or not secret:
            raise HttpError(400, "INVALID_SECRET", "Поле secret обязательно")
        registration = Registration(self._new_id(), event, url, secret)
        with self._registrations_lock:
            self.registrations.append(registration)
        body = {"id": registration.id, "event": event, "url": url, "created_at": _now_text(self.data.timezone)}
        return json_response(201, orjson.dumps(body))


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "INVALID_JSON", "Тело запроса не является JSON") from None
    if not isinstance(payload, dict):
        raise HttpError(400, "INVALID_JSON", "Ожидался объект JSON")
    return payload


def _now_text(timezone: str) -> str:
    return datetime.now(ZoneInfo(timezone)).replace(tzinfo=None).isoformat(timespec="seconds")
