"""The exchange HTTP service of §1 as a framework-free engine: a request in, a response out, nothing about
sockets.

Why framework-free: the same engine runs in-process under httpx (fast tests, many threads) and behind uvicorn
(real HTTP, TLS, dropped connections), and both must behave identically. The engine decides *what* happens
(status, body, how long to wait, where to cut the connection); the adapters only carry it out.

It is deliberately awkward in every way §1.9 allows: it caps page sizes, sends short pages, lets totals drift
mid-run, throttles per credential, limits concurrent connections, fails with 500/503, drops connections and
truncates bodies, all from a seeded generator so a failing run can be replayed.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hmac
import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import orjson

from onec.sandbox.data import Document, Good, SandboxData
from onec.sandbox.render import EMPTY_DATE, Renderer
from onec.schema import DOCUMENT_SLUGS, DOCUMENT_TYPE_BY_SLUG

VERSION = {"version": "1.4.2", "api_versions": ["v1"]}
AUTH_METHODS = ("none", "basic", "bearer", "api_key")
JSON = "application/json; charset=utf-8"
DEFAULT_LIMIT = 100

LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>1С:Предприятие</title></head><body>'
    '<form method="post" action="e1cib/login"><h1>Вход в 1С:Предприятие</h1>'
    '<label>Пользователь <input name="user"></label><label>Пароль <input type="password" name="pwd"></label>'
    "<button>Войти</button></form></body></html>"
).encode()


@dataclass(frozen=True)
class FaultConfig:
    """Per-request probabilities of each fault on data endpoints (GET goods/documents), plus total drift."""

    error_500: float = 0.0
    error_503: float = 0.0
    drop: float = 0.0
    truncate: float = 0.0
    drift_every: int = 0
    """After every N data requests, post a new document into the data (offsets shift, totals grow)…"""
    drift_limit: int = 0
    """…at most this many times."""

    def __post_init__(self) -> None:
        rates = (self.error_500, self.error_503, self.drop, self.truncate)
        if any(not 0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("fault probabilities must be within [0, 1] and add up to at most 1")
        if self.drift_every < 0 or self.drift_limit < 0:
            raise ValueError("drift_every and drift_limit must be >= 0")


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

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise ValueError(f"auth must be one of {', '.join(AUTH_METHODS)}, got {self.auth!r}")
        if self.max_page_size < 1 or not 0 <= self.short_page_rate <= 1:
            raise ValueError("max_page_size must be >= 1 and short_page_rate within [0, 1]")
        if (self.rate_limit is not None and self.rate_limit <= 0) or (
            self.max_connections is not None and self.max_connections < 1
        ):
            raise ValueError("rate_limit and max_connections must be positive when set")

    @classmethod
    def faulty(cls, rate: float = 0.05, **changes: Any) -> SandboxConfig:
        """Every fault kind on at `rate` (short pages too), with a few mid-run drift inserts."""
        faults = FaultConfig(
            error_500=rate,
            error_503=rate,
            drop=rate,
            truncate=rate,
            drift_every=max(1, round(1 / rate)) if rate > 0 else 0,
            drift_limit=5,
        )
        return cls(**{"faults": faults, "short_page_rate": rate, **changes})


class _MultiItems(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class SandboxRequest:
    """What the engine needs of a request. `path` is the full URL path (base path included), percent-decoded;
    `query` takes lists per name or any multi-dict with `multi_items()`; header names are case-insensitive."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]] | _MultiItems = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {name.lower(): value for name, value in self.headers.items()})
        object.__setattr__(self, "query", _query_lists(self.query))

    def param(self, name: str) -> str | None:
        values = self.query.get(name) if isinstance(self.query, Mapping) else None
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class SandboxResponse:
    """What to send. `cut_at`: announce len(body) but send only body[:cut_at], then drop the connection.
    `delay_s`: how long the adapter waits before answering (inside `engine.connection()`)."""

    status: int
    headers: dict[str, str]
    body: bytes
    cut_at: int | None = None
    delay_s: float = 0.0


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


class HttpError(Exception):
    """An error answer with the §1.7 body; `auth_failure` ones may be answered with the HTML login page."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth_failure: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}
        self.auth_failure = auth_failure

    def response(self, html_on_auth_failure: bool) -> SandboxResponse:
        if self.auth_failure and html_on_auth_failure:
            return SandboxResponse(200, {"content-type": "text/html; charset=utf-8"}, LOGIN_PAGE)
        body = {
            "error": True,
            "message": self.message,
            "code": self.code,
            "httpStatus": self.status,
            "details": self.details,
        }
        return SandboxResponse(self.status, {"content-type": JSON, **self.headers}, orjson.dumps(body))


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
        self._renderer = Renderer(self.config.awkward, self.config.seed)
        self._rendered: dict[int, tuple[object, bytes]] = {}
        self._selections: dict[tuple[object, ...], list[Any]] = {}
        self._data_requests = 0
        self._drifts = 0
        self._auth_lock = threading.Lock()
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._buckets: dict[str, _Bucket] = {}

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
        yield HttpError(
            429,
            "TOO_MANY_CONNECTIONS",
            "Превышено число одновременных соединений",
            {"max_connections": self.config.max_connections},
            {"retry-after": "1"},
        ).response(html_on_auth_failure=False)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request (the connection limit is `connection()`'s business, not this method's)."""
        self.stats.request()
        try:
            response = self._dispatch(request)
        except HttpError as error:
            response = error.response(self.config.html_on_bad_auth)
        self.stats.response(response.status)
        return replace(response, delay_s=self._delay())

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
            return _json(200, orjson.dumps(VERSION))
        if route.name == "token":
            return self._token(request)
        self._throttle(self._authenticate(request))
        return self._data(request, route)

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
        if rest == ["auth", "token"]:
            return _Route("token", ("POST",))
        if rest == ["goods"]:
            return _Route("goods", ("GET",))
        if len(rest) in (2, 3) and rest[0] == "documents":
            if rest[1] not in DOCUMENT_TYPE_BY_SLUG:
                raise HttpError(
                    404,
                    "NOT_FOUND",
                    f"Неизвестный вид документа {rest[1]!r}",
                    {"known_types": list(DOCUMENT_SLUGS)},
                )
            if len(rest) == 2:
                return _Route("documents", ("GET",), rest[1])
            return _Route("document", ("GET",), rest[1], rest[2])
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
                raise _unauthorized("Неверный или отсутствующий ключ API")
            return "key"
        return "anonymous"

    def _basic(self, request: SandboxRequest) -> str:
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        try:
            username, _, password = (
                base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        if scheme.lower() != "basic" or not self._valid_login(username, password):
            raise _unauthorized("Пользователь не идентифицирован", {"www-authenticate": _BASIC_CHALLENGE})
        return f"user:{username}"

    def _bearer(self, request: SandboxRequest) -> str:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._auth_lock:
            known = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if known is None:
            raise _unauthorized("Требуется токен доступа", {"www-authenticate": "Bearer"})
        subject, expires_at = known
        if self._clock() >= expires_at:
            raise HttpError(
                401, "TOKEN_EXPIRED", "Срок действия токена истёк", headers={"www-authenticate": "Bearer"}
            )
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
                raise HttpError(
                    401, "INVALID_REFRESH_TOKEN", "Токен обновления недействителен или уже использован"
                )
        else:
            username, password = str(body.get("username", "")), str(body.get("password", ""))
            if not self._valid_login(username, password):
                raise _unauthorized("Неверное имя пользователя или пароль")
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
        return _json(200, orjson.dumps(payload))

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
        if fault == "error_500":
            raise HttpError(
                500,
                "INTERNAL_ERROR",
                "{ОбщийМодуль.ОбменДанными.Модуль(412)}: Ошибка при вызове метода "
                "контекста (Выполнить): Конфликт блокировок при выполнении транзакции",
            )
        if fault == "error_503":
            raise HttpError(
                503, "SERVICE_UNAVAILABLE", "Сервер 1С:Предприятия недоступен", headers=self._retry_hint()
            )
        if route.name == "goods":
            response = self._goods_page(request)
        elif route.name == "documents":
            response = self._documents_page(request, route.doc_type or "")
        else:
            response = self._one_document(route.doc_type or "", route.doc_id or "")
        return self._spoil(response, fault)

    def _drift(self, doc_type: str | None) -> None:
        """Every `drift_every` data requests post a document, into the type being read if any, so the run
        feels it."""
        faults = self.config.faults
        self._data_requests += 1
        if (
            not faults.drift_every
            or self._drifts >= faults.drift_limit
            or self._data_requests % faults.drift_every
        ):
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
        roll = self._rng.random()
        for kind, rate in (
            ("error_500", faults.error_500),
            ("error_503", faults.error_503),
            ("drop", faults.drop),
            ("truncate", faults.truncate),
        ):
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
            return self._page(rows, limit, offset, self._render_good)

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
            return self._page(rows, limit, offset, self._render_document)

    def _one_document(self, doc_type: str, doc_id: str) -> SandboxResponse:
        with self._lock:
            doc = self.data.find_document(doc_type, doc_id)
            if doc is None:
                raise HttpError(404, "DOCUMENT_NOT_FOUND", f"Документ {doc_id} не найден", {"id": doc_id})
            return _json(200, self._render_document(doc))

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

    def _page(
        self, rows: list[Any], limit: int, offset: int, render: Callable[[Any], bytes]
    ) -> SandboxResponse:
        """One page; sometimes (`short_page_rate`) fewer rows than `limit` although more follow (§1.9)."""
        page = rows[offset : offset + limit]
        if len(page) > 1 and offset + limit < len(rows) and self._rng.random() < self.config.short_page_rate:
            page = page[: self._rng.randrange(1, len(page))]
            self.stats.fault("short_page")
        pagination = orjson.dumps({"total": len(rows), "limit": limit, "offset": offset})
        return _json(
            200,
            b'{"data":[' + b",".join(render(row) for row in page) + b'],"pagination":' + pagination + b"}",
        )

    def _render_good(self, good: Good) -> bytes:
        # Drift changes quantities in place: the fingerprint notices and the row is rendered afresh.
        return self._cached(good, (good.quantity, good.modified_at), self._renderer.good)

    def _render_document(self, doc: Document) -> bytes:
        return self._cached(doc, None, self._renderer.document)

    def _cached(self, record: Any, fingerprint: object, render: Callable[[Any], bytes]) -> bytes:
        hit = self._rendered.get(id(record))
        if hit is not None and hit[0] == fingerprint:
            return hit[1]
        body = render(record)
        self._rendered[id(record)] = (fingerprint, body)
        return body

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
            raise _bad_parameter(
                name, text, "ожидалась дата ISO 8601, например 2026-01-31T00:00:00"
            ) from None
        return value.astimezone(self._tz) if value.tzinfo else value.replace(tzinfo=self._tz)


_BASIC_CHALLENGE = 'Basic realm="1C:Enterprise", charset="UTF-8"'


def _json(status: int, body: bytes) -> SandboxResponse:
    return SandboxResponse(status, {"content-type": JSON}, body)


def _unauthorized(message: str, headers: dict[str, str] | None = None) -> HttpError:
    return HttpError(401, "UNAUTHORIZED", message, headers=headers, auth_failure=True)


def _bad_parameter(name: str, value: str, expected: str) -> HttpError:
    return HttpError(
        400,
        "INVALID_PARAMETER",
        f"Неверное значение параметра {name}: {expected}",
        {"parameter": name, "value": value},
    )


def _int_param(request: SandboxRequest, name: str, default: int, minimum: int) -> int:
    text = request.param(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise _bad_parameter(name, text, f"ожидалось целое число не меньше {minimum}") from None
    if value < minimum:
        raise _bad_parameter(name, text, f"ожидалось целое число не меньше {minimum}")
    return value


def _check_format(request: SandboxRequest) -> None:
    fmt = request.param("format")
    if fmt not in (None, "", "json"):
        raise _bad_parameter("format", fmt, "постраничная выдача поддерживает только format=json")


def _within(value: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """`since` inclusive, `until` exclusive; a record without a date never matches a date filter."""
    if value is None:
        return False
    return (since is None or value >= since) and (until is None or value < until)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _query_lists(query: Mapping[str, Sequence[str]] | _MultiItems) -> dict[str, list[str]]:
    """Lists per name from a plain mapping or a multi-dict (httpx/starlette `QueryParams` are both)."""
    if isinstance(query, Mapping) and not hasattr(query, "multi_items"):
        return {name: [values] if isinstance(values, str) else list(values) for name, values in query.items()}
    lists: dict[str, list[str]] = {}
    for name, value in cast(_MultiItems, query).multi_items():
        lists.setdefault(name, []).append(value)
    return lists
