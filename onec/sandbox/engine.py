"""The exchange HTTP service of §1 as a framework-free engine: a request in, a response out, nothing about
sockets.

Why framework-free: the same engine runs in-process under httpx (fast tests, many threads) and behind uvicorn
(real HTTP, TLS, dropped connections), and both must behave identically. The engine decides *what* happens
(status, body, how long to wait, where to cut the connection); the adapters only carry it out.

It is deliberately awkward in every way §1.9 allows: it caps page sizes, sends short pages, lets totals drift
mid-run, throttles per credential, limits concurrent connections, fails with 500/503, drops connections and
truncates bodies, all from a seeded generator so a failing run can be replayed.

Routes below `base_path` (§1): `GET api/version`, `POST api/v1/auth/token`, `GET api/v1/goods`,
`GET api/v1/goods/export`, `POST api/v1/goods/batch`, `GET|POST api/v1/documents/{type}`,
`GET api/v1/documents/{type}/export`, `POST api/v1/documents/{type}/batch`, `GET api/v1/documents/{type}/{id}`,
`POST api/v1/documents/{type}/{id}/post`, `POST api/v1/webhooks`. Below `odata_path` (§2): the standard OData
interface (`odata.py`, `odata_writes.py`). Writes live in `writes.py`, exports in `exports.py`, webhook
deliveries in `webhooks.py`; this module routes, authenticates, throttles and injects the faults.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hmac
import itertools
import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from onec.sandbox.data import Document, Good, SandboxData
from onec.sandbox.exports import ExportVariant, documents_csv, documents_xml, goods_csv, goods_xml
from onec.sandbox.odata import ODataService, odata_error
from onec.sandbox.odata_model import ODataModel
from onec.sandbox.odata_ut11 import Ut11Model
from onec.sandbox.odata_writes import ODataWriter
from onec.sandbox.protocol import (
    JSON,
    LOGIN_PAGE,
    HttpError,
    SandboxRequest,
    SandboxResponse,
    bad_parameter,
    json_response,
    unauthorized,
)
from onec.sandbox.render import EMPTY_DATE, Renderer
from onec.sandbox.render_cache import RenderCache, Taken
from onec.sandbox.webhooks import WebhookHub
from onec.sandbox.writes import WriteLimits, Writer, batch_list, document_item_count, read_json
from onec.schema import DOCUMENT_SLUGS, DOCUMENT_TYPE_BY_SLUG

__all__ = [
    "JSON",
    "LOGIN_PAGE",
    "FaultConfig",
    "HttpError",
    "SandboxConfig",
    "SandboxEngine",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxStats",
]

VERSION = {"version": "1.4.2", "api_versions": ["v1"]}
AUTH_METHODS = ("none", "basic", "bearer", "api_key")
ODATA_CONFIGURATIONS = ("standard", "ut11")
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class FaultConfig:
    """Per-request fault probabilities. Reads (GET goods/documents) draw from error_500, error_503, drop and
    truncate; writes (the POSTs of §1.6) from error_500 and error_503 (refused before anything is applied) and
    the three write faults, which all apply the write first, so a client cannot tell from the failure whether
    its write landed (§1.7: check by number before repeating)."""

    error_500: float = 0.0
    error_503: float = 0.0
    drop: float = 0.0
    truncate: float = 0.0
    drift_every: int = 0
    """After every N data requests, post a new document into the data (offsets shift, totals grow)…"""
    drift_limit: int = 0
    """…at most this many times."""
    apply_then_drop: float = 0.0
    """Apply the write fully, then drop the connection in the middle of the answer."""
    apply_then_timeout: float = 0.0
    """Apply the write fully, then answer only after `write_timeout_delay_s` (past the client's timeout)."""
    partial_batch: float = 0.0
    """Batches only: apply the first half of the documents (goods rows), then fail the request with a 500.
    That is what a real 1C handler does when it writes each document in its own transaction and an exception
    (a lock conflict, typically) escapes the loop: the earlier documents stay written, the answer is a 500."""
    write_timeout_delay_s: float = 35.0
    webhook_duplicate: float = 0.0
    """Share of webhook deliveries sent twice (deliveries also go out shuffled, §1.8)."""

    def __post_init__(self) -> None:
        reads = (self.error_500, self.error_503, self.drop, self.truncate)
        writes = (self.error_500, self.error_503, self.apply_then_drop, self.apply_then_timeout, self.partial_batch)
        if any(not 0 <= rate <= 1 for rate in (*reads, *writes)) or sum(reads) > 1 or sum(writes) > 1:
            raise ValueError("fault probabilities must be within [0, 1] and add up to at most 1")
        if not 0 <= self.webhook_duplicate <= 1:
            raise ValueError("webhook_duplicate must be within [0, 1]")
        if self.drift_every < 0 or self.drift_limit < 0 or self.write_timeout_delay_s < 0:
            raise ValueError("drift_every, drift_limit and write_timeout_delay_s must be >= 0")


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox 1C behaves; the defaults are a well-behaved base with awkward serialization."""

    auth: str = "none"
    username: str = "обмен"
    password: str = "пароль"  # noqa: S105 (the sandbox's own demo credential)
    api_key: str = "sk-test-1c"
    token_ttl_s: float = 300
    rate_limit: float | None = None
    """Requests per second per credential (token bucket, capacity max(1, rate))."""
    max_connections: int | None = None
    """Concurrent in-flight requests, latency included; more get 429 TOO_MANY_CONNECTIONS."""
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    max_page_size: int = 1000
    short_page_rate: float = 0.0
    awkward: bool = True
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    html_on_bad_auth: bool = False
    base_path: str = "/trade/hs/exchange"
    max_batch_items: int = 1000
    """Items per write request: document lines (goods: rows); more get 413 BATCH_TOO_LARGE."""
    max_batch_bytes: int = 10 * 1024 * 1024
    """Bytes per write request body; more get 413 BATCH_TOO_LARGE."""
    odata_path: str = "/trade/odata/standard.odata"
    """Where the standard OData interface (§2) is published, beside the HTTP service's `base_path`."""
    export: ExportVariant = field(default_factory=ExportVariant)
    """How the CSV and UDE XML exports look (encodings, delimiters, headers, element order)."""
    odata_configuration: str = "standard"
    """Which configuration the OData interface acts out: `standard` (the contract's §2.1 model, writable) or
    `ut11` (a real УТ 11 base: no price register, packaging units, priceless lines, empty rows, operations
    without counterparty; read-only, see `onec.sandbox.odata_ut11`)."""
    clock_offset_s: float = 0.0
    """How far the 1C server's clock runs ahead of the real time (negative: behind). 1C stamps `modified_at` with
    its own clock, as wall time in the base's zone (`SandboxData.timezone`, §1), and the web server in front of it
    sends the same clock in every answer's `Date` header (GMT, RFC 9110): a client configured with another zone or
    running another clock sees exactly what it would see against such a real base."""

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise ValueError(f"auth must be one of {', '.join(AUTH_METHODS)}, got {self.auth!r}")
        if self.max_page_size < 1 or not 0 <= self.short_page_rate <= 1:
            raise ValueError("max_page_size must be >= 1 and short_page_rate within [0, 1]")
        if (self.rate_limit is not None and self.rate_limit <= 0) or (
            self.max_connections is not None and self.max_connections < 1
        ):
            raise ValueError("rate_limit and max_connections must be positive when set")
        if self.max_batch_items < 1 or self.max_batch_bytes < 1:
            raise ValueError("max_batch_items and max_batch_bytes must be >= 1")
        if self.odata_configuration not in ODATA_CONFIGURATIONS:
            raise ValueError(f"odata_configuration must be one of {', '.join(ODATA_CONFIGURATIONS)}")

    @classmethod
    def awkward_exports(cls, seed: int = 0, **changes: Any) -> SandboxConfig:
        """Every export variation on at once (see `ExportVariant.everything`)."""
        return cls(**{"export": ExportVariant.everything(seed), "seed": seed, **changes})

    @classmethod
    def faulty(cls, rate: float = 0.05, write_rate: float = 0.0, **changes: Any) -> SandboxConfig:
        """Every read fault kind on at `rate` (short pages too), with a few mid-run drift inserts; with
        `write_rate`, every write fault too (the timeout one answers after 2 s rather than 35 s)."""
        faults = FaultConfig(
            error_500=rate,
            error_503=rate,
            drop=rate,
            truncate=rate,
            drift_every=max(1, round(1 / rate)) if rate > 0 else 0,
            drift_limit=5,
            apply_then_drop=write_rate,
            apply_then_timeout=write_rate,
            partial_batch=write_rate,
            write_timeout_delay_s=2.0,
            webhook_duplicate=write_rate,
        )
        return cls(**{"faults": faults, "short_page_rate": rate, **changes})


class SandboxStats:
    """Thread-safe counters of what the sandbox did, for tests and the demo to assert on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._responses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._drift_inserts = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def request(self) -> None:
        with self._lock:
            self._requests += 1

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[status] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def drift(self) -> None:
        with self._lock:
            self._drift_inserts += 1

    def enter(self, limit: int | None) -> bool:
        """Admit one more in-flight request unless `limit` are already in flight."""
        with self._lock:
            if limit is not None and self._in_flight >= limit:
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "responses": dict(self._responses),
                "throttled": self._responses[429],
                "faults": dict(self._faults),
                "drift_inserts": self._drift_inserts,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class _Route:
    name: str
    methods: tuple[str, ...]
    doc_type: str | None = None
    doc_id: str | None = None


_FIXED_ROUTES = {
    ("auth", "token"): _Route("token", ("POST",)),
    ("goods",): _Route("goods", ("GET",)),
    ("goods", "export"): _Route("goods_export", ("GET",)),
    ("goods", "batch"): _Route("goods_batch", ("POST",)),
    ("webhooks",): _Route("webhooks", ("POST",)),
}
_WRITES = ("create", "batch", "post", "goods_batch")


def _document_route(rest: list[str]) -> _Route:
    """documents/{type}[/export | /batch | /{id}[/post]]; POST on documents/{type} creates one."""
    slug = rest[1]
    if slug not in DOCUMENT_TYPE_BY_SLUG:
        raise HttpError(404, "NOT_FOUND", f"Неизвестный вид документа {slug!r}", {"known_types": list(DOCUMENT_SLUGS)})
    if len(rest) == 2:
        return _Route("documents", ("GET", "POST"), slug)
    if len(rest) == 3 and rest[2] in ("export", "batch"):
        return _Route(f"documents_{rest[2]}", ("GET",) if rest[2] == "export" else ("POST",), slug)
    if len(rest) == 3:
        return _Route("document", ("GET",), slug, rest[2])
    if rest[3] == "post":
        return _Route("post", ("POST",), slug, rest[2])
    raise HttpError(404, "NOT_FOUND", f"Не найден ресурс {'/'.join(rest)}")


class SandboxEngine:
    """The service. `handle` is thread-safe; adapters wrap it (and the delay) in `connection()`."""

    def __init__(
        self,
        data: SandboxData,
        config: SandboxConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data = data
        self.config = config or SandboxConfig()
        self.stats = SandboxStats()
        self._clock = clock
        self._tz = ZoneInfo(data.timezone)
        self._lock = threading.RLock()
        """Guards the data, the caches and the fault generator."""
        self._rng = random.Random(self.config.seed)
        self._rendered = RenderCache(Renderer(self.config.awkward, self.config.seed), self._lock)
        self._selections: dict[tuple[object, ...], list[Any]] = {}
        self._data_requests = 0
        self._drifts = 0
        self._auth_lock = threading.Lock()
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._buckets: dict[str, _Bucket] = {}
        self.webhooks = WebhookHub(self.config.seed, self.config.faults.webhook_duplicate)
        """Subscriptions made through `POST /api/v1/webhooks`; deliver with `engine.webhooks.flush(client)`."""
        self._writer = Writer(data, self.now, self._publish)
        if self.config.odata_configuration == "ut11":
            self._odata = ODataService(Ut11Model(data), self.config.odata_path)
        else:
            model = ODataModel(data)
            self._odata = ODataService(model, self.config.odata_path, ODataWriter(model, self._writer, self.now))

    # --- entry points

    @contextmanager
    def connection(self) -> Iterator[SandboxResponse | None]:
        """Hold a connection slot around handling *and* the delay. Yields None when admitted, or the 429
        to send when `max_connections` requests are already in flight (that one is not counted)."""
        if self.stats.enter(self.config.max_connections):
            try:
                yield None
            finally:
                self.stats.leave()
            return
        self.stats.request()
        self.stats.response(429)
        yield self._dated(
            HttpError(
                429,
                "TOO_MANY_CONNECTIONS",
                "Превышено число одновременных соединений",
                {"max_connections": self.config.max_connections},
                {"retry-after": "1"},
            ).response(html_on_auth_failure=False)
        )

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request (the connection limit is `connection()`'s business, not this method's)."""
        self.stats.request()
        odata = self._odata.handles(request.path)
        try:
            response = self._odata_request(request) if odata else self._dispatch(request)
        except HttpError as error:
            html = self.config.html_on_bad_auth
            response = odata_error(error) if odata and not (error.auth_failure and html) else error.response(html)
        self.stats.response(response.status)
        return replace(self._dated(response), delay_s=response.delay_s + self._delay())

    def now(self) -> datetime:
        """1C's clock: wall time in the base's zone, whole seconds, `clock_offset_s` away from the real time. What
        1C stamps a change with; hand it to `SandboxMutator(clock=engine.now)` so edits are stamped the same way."""
        moment = datetime.now(self._tz) + timedelta(seconds=self.config.clock_offset_s)
        return moment.replace(microsecond=0)

    def _dated(self, response: SandboxResponse) -> SandboxResponse:
        """Every HTTP answer carries the server's clock in `Date`, GMT (RFC 9110 §6.6.1): the one reading of 1C's
        clock that needs no zone."""
        stamp = email.utils.format_datetime(self.now().astimezone(UTC), usegmt=True)
        return replace(response, headers={**response.headers, "date": stamp})

    # --- routing

    def _dispatch(self, request: SandboxRequest) -> SandboxResponse:
        route = self._route(request.path)
        if request.method not in route.methods:
            raise HttpError(
                405,
                "METHOD_NOT_ALLOWED",
                f"Метод {request.method} не поддерживается",
                headers={"allow": ", ".join(route.methods)},
            )
        if route.name == "version":
            self._throttle("anonymous")
            return json_response(200, orjson.dumps(VERSION))
        if route.name == "token":
            return self._token(request)
        self._throttle(self._authenticate(request))
        if route.name == "webhooks":
            return self._subscribe(request)
        if request.method == "POST":
            return self._write(request, route)
        return self._data(request, route)

    def _odata_request(self, request: SandboxRequest) -> SandboxResponse:
        """The OData interface: the same auth, rate limit, drift and read faults as the HTTP service."""
        self._throttle(self._authenticate(request))
        if request.method != "GET":
            return self._odata_write(request)
        with self._lock:
            self._drift(None)
            fault = self._draw_fault()
        self._refuse(fault)
        with self._lock:
            order = random.Random(self._rng.random())
            response = self._odata.answer(request, order)
        return self._spoil(response, fault)

    def _odata_write(self, request: SandboxRequest) -> SandboxResponse:
        """OData writes: one object per request, the byte limit and the write faults of the HTTP service."""
        WriteLimits(self.config.max_batch_items, self.config.max_batch_bytes).check_bytes(request.body)
        with self._lock:
            fault = self._draw_write_fault(batch=False)
        self._refuse(fault)
        with self._lock:
            response = self._odata.write(request)
        return self._after_write(response, fault)

    def _route(self, path: str) -> _Route:
        base = self.config.base_path.rstrip("/")
        if not path.startswith(base + "/"):
            raise HttpError(404, "NOT_FOUND", f"Не найден ресурс {path}")
        parts = path[len(base) :].strip("/").split("/")
        if parts == ["api", "version"]:
            return _Route("version", ("GET",))
        if parts[:2] != ["api", "v1"]:
            raise HttpError(404, "NOT_FOUND", f"Не найден ресурс {path}")
        rest = parts[2:]
        fixed = _FIXED_ROUTES.get(tuple(rest))
        if fixed is not None:
            return fixed
        if len(rest) in (2, 3, 4) and rest[0] == "documents":
            return _document_route(rest)
        raise HttpError(404, "NOT_FOUND", f"Не найден ресурс {path}")

    # --- auth and limits

    def _authenticate(self, request: SandboxRequest) -> str:
        """The credential's subject (what the rate limit is counted per), or a 401."""
        method = self.config.auth
        if method == "basic":
            return self._basic(request)
        if method == "bearer":
            return self._bearer(request)
        if method == "api_key":
            key = request.header("x-api-key") or request.param("api_key") or ""
            if not _same(key, self.config.api_key):
                raise unauthorized("Неверный или отсутствующий ключ API")
            return "key"
        return "anonymous"

    def _basic(self, request: SandboxRequest) -> str:
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        if scheme.lower() != "basic" or not self._valid_login(username, password):
            raise unauthorized("Пользователь не идентифицирован", {"www-authenticate": _BASIC_CHALLENGE})
        return f"user:{username}"

    def _bearer(self, request: SandboxRequest) -> str:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._auth_lock:
            known = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if known is None:
            raise unauthorized("Требуется токен доступа", {"www-authenticate": "Bearer"})
        subject, expires_at = known
        if self._clock() >= expires_at:
            raise HttpError(401, "TOKEN_EXPIRED", "Срок действия токена истёк", headers={"www-authenticate": "Bearer"})
        return subject

    def _token(self, request: SandboxRequest) -> SandboxResponse:
        """Issue tokens for a username/password, or for a refresh token (each refresh token works once)."""
        try:
            body = orjson.loads(request.body or b"null")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise HttpError(400, "BAD_REQUEST", "Ожидался JSON-объект с username/password или refresh_token")
        if "refresh_token" in body:
            with self._auth_lock:
                subject = self._refresh_tokens.pop(str(body["refresh_token"]), None)
            if subject is None:
                raise HttpError(401, "INVALID_REFRESH_TOKEN", "Токен обновления недействителен или уже использован")
        else:
            username, password = str(body.get("username", "")), str(body.get("password", ""))
            if not self._valid_login(username, password):
                raise unauthorized("Неверное имя пользователя или пароль")
            subject = f"user:{username}"
        self._throttle(subject)
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        ttl = self.config.token_ttl_s
        with self._auth_lock:
            self._access_tokens[access] = (subject, self._clock() + ttl)
            self._refresh_tokens[refresh] = subject
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        payload = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
        }
        return json_response(200, orjson.dumps(payload))

    def _valid_login(self, username: str, password: str) -> bool:
        # Both comparisons always run, so timing does not tell which part was wrong.
        return _same(username, self.config.username) & _same(password, self.config.password)

    def _throttle(self, subject: str) -> None:
        """Token bucket per credential: capacity max(1, rate), refilled at `rate` per second."""
        rate = self.config.rate_limit
        if rate is None:
            return
        capacity = max(1.0, rate)
        with self._auth_lock:
            now = self._clock()
            bucket = self._buckets.setdefault(subject, _Bucket(capacity, now))
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / rate
        raise HttpError(
            429,
            "RATE_LIMITED",
            "Превышен лимит запросов",
            {"requests_per_second": rate},
            {"retry-after": str(max(1, math.ceil(wait)))},
        )

    # --- data and faults

    def _data(self, request: SandboxRequest, route: _Route) -> SandboxResponse:
        with self._lock:
            self._drift(route.doc_type)
            fault = self._draw_fault()
        self._refuse(fault)
        if route.name in ("goods_export", "documents_export"):
            return self._spoil_stream(self._export(request, route), fault)
        if route.name == "goods":
            response = self._goods_page(request)
        elif route.name == "documents":
            response = self._documents_page(request, route.doc_type or "")
        else:
            response = self._one_document(route.doc_type or "", route.doc_id or "")
        return self._spoil(response, fault)

    def _write(self, request: SandboxRequest, route: _Route) -> SandboxResponse:
        """Check the limits, maybe refuse (500/503), apply under the lock, then maybe fail anyway."""
        limits = WriteLimits(self.config.max_batch_items, self.config.max_batch_bytes)
        limits.check_bytes(request.body)
        payload = read_json(request.body) if route.name != "post" else None
        rows = self._batch_rows(route, payload)
        if rows is not None:
            limits.check_items(document_item_count(rows) if route.name == "documents_batch" else len(rows))
        elif route.name == "documents":
            limits.check_items(document_item_count([payload]))
        with self._lock:
            fault = self._draw_write_fault(batch=rows is not None)
        self._refuse(fault)
        half = None if fault != "partial_batch" or rows is None else len(rows) // 2
        with self._lock:
            response = self._apply(route, payload, rows, half)
        if fault == "partial_batch":
            raise HttpError(500, "INTERNAL_ERROR", _LOCK_CONFLICT, {"processed": half})
        return self._after_write(response, fault)

    def _after_write(self, response: SandboxResponse, fault: str | None) -> SandboxResponse:
        """The faults that strike once the write is applied: a late answer, or a dropped connection."""
        if fault == "apply_then_timeout":
            return replace(response, delay_s=self.config.faults.write_timeout_delay_s)
        return self._spoil(response, "drop" if fault == "apply_then_drop" else None)

    @staticmethod
    def _batch_rows(route: _Route, payload: Any) -> list[Any] | None:
        if route.name == "documents_batch":
            return batch_list(payload, "documents")
        if route.name == "goods_batch":
            return batch_list(payload, "goods")
        return None

    def _apply(self, route: _Route, payload: Any, rows: list[Any] | None, apply: int | None) -> SandboxResponse:
        writer = self._writer
        doc_type = route.doc_type or ""
        if route.name == "documents_batch":
            return writer.create_batch(doc_type, rows or [], apply)
        if route.name == "goods_batch":
            return writer.goods_batch(rows or [], apply)
        if route.name == "post":
            return writer.post(doc_type, route.doc_id or "")
        return writer.create_one(doc_type, payload)

    def _draw_write_fault(self, batch: bool) -> str | None:
        faults = self.config.faults
        kinds = [
            ("error_500", faults.error_500),
            ("error_503", faults.error_503),
            ("apply_then_drop", faults.apply_then_drop),
            ("apply_then_timeout", faults.apply_then_timeout),
        ]
        return self._draw([*kinds, ("partial_batch", faults.partial_batch if batch else 0.0)])

    def _refuse(self, fault: str | None) -> None:
        """The faults that answer before anything is read or applied."""
        if fault == "error_500":
            raise HttpError(500, "INTERNAL_ERROR", _LOCK_CONFLICT)
        if fault == "error_503":
            raise HttpError(503, "SERVICE_UNAVAILABLE", "Сервер 1С:Предприятия недоступен", headers=self._retry_hint())

    def _subscribe(self, request: SandboxRequest) -> SandboxResponse:
        body = read_json(request.body)
        if not isinstance(body, dict):
            raise HttpError(400, "BAD_REQUEST", "Ожидался JSON-объект с полями event, url, secret")
        try:
            subscription = self.webhooks.register(body.get("event"), body.get("url"), body.get("secret"))
        except ValueError as error:
            raise HttpError(400, "VALIDATION_ERROR", str(error)) from None
        answer = {"id": subscription.id, "event": subscription.event, "url": subscription.url}
        return json_response(201, orjson.dumps(answer))

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        self.webhooks.publish(event, data, self.now())

    def _drift(self, doc_type: str | None) -> None:
        """Every `drift_every` data requests post a document, into the type being read if any, so the run
        feels it."""
        faults = self.config.faults
        self._data_requests += 1
        if not faults.drift_every or self._drifts >= faults.drift_limit or self._data_requests % faults.drift_every:
            return
        day = self.data.start + timedelta(days=self._rng.randrange(self.data.days))
        try:
            self.data.insert_document(doc_type or self._rng.choice(DOCUMENT_SLUGS), day)
        except ValueError:  # nothing in stock to take that day, or a transfer in a one-warehouse base
            return
        self._drifts += 1
        self.stats.drift()

    def _draw_fault(self) -> str | None:
        faults = self.config.faults
        return self._draw(
            [
                ("error_500", faults.error_500),
                ("error_503", faults.error_503),
                ("drop", faults.drop),
                ("truncate", faults.truncate),
            ]
        )

    def _draw(self, kinds: list[tuple[str, float]]) -> str | None:
        roll = self._rng.random()
        for kind, rate in kinds:
            if roll < rate:
                self.stats.fault(kind)
                return kind
            roll -= rate
        return None

    def _retry_hint(self) -> dict[str, str]:
        """Half of the 503s say when to come back, as seconds or as an HTTP date (both are allowed, §1.7)."""
        with self._lock:
            roll = self._rng.random()
        if roll < 0.25:
            return {"retry-after": "1"}
        if roll < 0.5:
            return {"retry-after": email.utils.formatdate(time.time() + 2, usegmt=True)}
        return {}

    def _spoil(self, response: SandboxResponse, fault: str | None) -> SandboxResponse:
        if fault not in ("drop", "truncate") or len(response.body) < 2:
            return response
        with self._lock:
            cut = self._rng.randrange(1, len(response.body))
        if fault == "drop":
            return replace(response, cut_at=cut)
        return replace(response, body=response.body[:cut])

    def _spoil_stream(self, response: SandboxResponse, fault: str | None) -> SandboxResponse:
        """A streamed body has no known length: cut (drop) or end (truncate) it inside its first chunk, which
        is taken out of the stream here so the cut always lands in the body, however small the export."""
        if fault not in ("drop", "truncate") or response.chunks is None:
            return response
        chunks = iter(response.chunks)
        first = next(chunks, b"")
        if len(first) < 2:
            return replace(response, chunks=itertools.chain([first], chunks))
        with self._lock:
            cut = self._rng.randrange(1, len(first))
        if fault == "drop":
            return replace(response, chunks=itertools.chain([first], chunks), cut_at=cut)
        return replace(response, chunks=[first[:cut]])

    def _export(self, request: SandboxRequest, route: _Route) -> SandboxResponse:
        """The whole selection in one streamed response (§1.4, §1.5). The rows are picked under the lock;
        their values are read as the stream goes, as a long-running 1C query would see later writes."""
        fmt = request.param("format") or "csv"
        if fmt not in ("csv", "xml"):
            raise bad_parameter("format", fmt, "выгрузка поддерживает format=csv или format=xml")
        variant = self.config.export
        if route.name == "goods_export":
            with self._lock:
                goods = self.data.goods_holdings()
            chunks = goods_csv(goods, variant) if fmt == "csv" else goods_xml(goods, variant, self.now())
            name = "goods"
        else:
            date_from, date_to = self._instant(request, "date_from"), self._instant(request, "date_to")
            with self._lock:
                docs = self.data.documents_holdings(route.doc_type or "", date_from, date_to)
            chunks = documents_csv(docs, variant) if fmt == "csv" else documents_xml(docs, variant, self.now())
            name = f"documents-{route.doc_type}"
        content_type = variant.csv_content_type() if fmt == "csv" else "application/xml"
        headers = {"content-type": content_type, "content-disposition": f'attachment; filename="{name}.{fmt}"'}
        return SandboxResponse(200, headers, b"", chunks=chunks)

    def _delay(self) -> float:
        if not self.config.latency_s and not self.config.latency_jitter_s:
            return 0.0
        with self._lock:
            return self.config.latency_s + self._rng.random() * self.config.latency_jitter_s

    def _goods_page(self, request: SandboxRequest) -> SandboxResponse:
        _check_format(request)
        limit, offset = self._paging(request)
        since, until = self._instant(request, "modified_since"), self._instant(request, "modified_until")
        with self._lock:
            rows = self._selection(("goods", since, until), lambda: self._filter_goods(since, until))
            taken = self._rendered.take(self._page_rows(rows, limit, offset))
        return self._page(taken, len(rows), limit, offset)

    def _documents_page(self, request: SandboxRequest, doc_type: str) -> SandboxResponse:
        _check_format(request)
        limit, offset = self._paging(request)
        date_from, date_to = self._instant(request, "date_from"), self._instant(request, "date_to")
        since, until = self._instant(request, "modified_since"), self._instant(request, "modified_until")
        number = request.param("number")
        key = ("documents", doc_type, date_from, date_to, since, until, number)
        with self._lock:
            rows = self._selection(
                key, lambda: self._filter_documents(doc_type, date_from, date_to, since, until, number)
            )
            taken = self._rendered.take(self._page_rows(rows, limit, offset))
        return self._page(taken, len(rows), limit, offset)

    def _one_document(self, doc_type: str, doc_id: str) -> SandboxResponse:
        with self._lock:
            doc = self.data.find_document(doc_type, doc_id)
            if doc is None:
                raise HttpError(404, "DOCUMENT_NOT_FOUND", f"Документ {doc_id} не найден", {"id": doc_id})
            taken = self._rendered.take([doc])
        return json_response(200, self._rendered.render(taken)[0])

    def _selection(self, key: tuple[object, ...], select: Callable[[], list[Any]]) -> list[Any]:
        """Filtered rows, remembered until the data changes, so paging a filtered set is not O(n) per page."""
        full_key = (self.data.revision, *key)
        rows = self._selections.get(full_key)
        if rows is None:
            if len(self._selections) > 256:
                self._selections.clear()
            rows = self._selections[full_key] = select()
        return rows

    def _filter_goods(self, since: datetime | None, until: datetime | None) -> list[Good]:
        goods = self.data.goods_holdings()
        if since is None and until is None:
            return goods
        return [g for g in goods if _within(g.modified_at, since, until)]

    def _filter_documents(
        self,
        doc_type: str,
        date_from: datetime | None,
        date_to: datetime | None,
        since: datetime | None,
        until: datetime | None,
        number: str | None,
    ) -> list[Document]:
        docs = self.data.documents_holdings(doc_type, date_from, date_to)
        if since is not None or until is not None:
            docs = [d for d in docs if _within(d.modified_at, since, until)]
        if number is not None:
            docs = [d for d in docs if d.number == number]
        return docs

    def _page_rows(self, rows: list[Any], limit: int, offset: int) -> list[Any]:
        """Under the lock: one page's records; sometimes (`short_page_rate`) fewer than `limit` although more
        follow (§1.9)."""
        page = rows[offset : offset + limit]
        if len(page) > 1 and offset + limit < len(rows) and self._rng.random() < self.config.short_page_rate:
            page = page[: self._rng.randrange(1, len(page))]
            self.stats.fault("short_page")
        return page

    def _page(self, taken: list[Taken], total: int, limit: int, offset: int) -> SandboxResponse:
        """Outside the lock: the page's JSON from the records taken under it."""
        pagination = orjson.dumps({"total": total, "limit": limit, "offset": offset})
        body = b",".join(self._rendered.render(taken))
        return json_response(200, b'{"data":[' + body + b'],"pagination":' + pagination + b"}")

    # --- parameters

    def _paging(self, request: SandboxRequest) -> tuple[int, int]:
        limit = _int_param(request, "limit", DEFAULT_LIMIT, minimum=1)
        return min(limit, self.config.max_page_size), _int_param(request, "offset", 0, minimum=0)

    def _instant(self, request: SandboxRequest, name: str) -> datetime | None:
        """A date parameter: a date or a local date-time (an offset is converted); empty or 1C's empty date
        mean none."""
        text = (request.param(name) or "").strip()
        if not text or text == EMPTY_DATE:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise bad_parameter(name, text, "ожидалась дата ISO 8601, например 2026-01-31T00:00:00") from None
        return value.astimezone(self._tz) if value.tzinfo else value.replace(tzinfo=self._tz)


_LOCK_CONFLICT = (
    "{ОбщийМодуль.ОбменДанными.Модуль(412)}: Ошибка при вызове метода "
    "контекста (Выполнить): Конфликт блокировок при выполнении транзакции"
)
_BASIC_CHALLENGE = 'Basic realm="1C:Enterprise", charset="UTF-8"'


def _int_param(request: SandboxRequest, name: str, default: int, minimum: int) -> int:
    text = request.param(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter(name, text, f"ожидалось целое число не меньше {minimum}") from None
    if value < minimum:
        raise bad_parameter(name, text, f"ожидалось целое число не меньше {minimum}")
    return value


def _check_format(request: SandboxRequest) -> None:
    fmt = request.param("format")
    if fmt not in (None, "", "json"):
        raise bad_parameter("format", fmt, "постраничная выдача поддерживает только format=json")


def _within(value: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """`since` inclusive, `until` exclusive; a record without a date never matches a date filter."""
    if value is None:
        return False
    return (since is None or value >= since) and (until is None or value < until)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
