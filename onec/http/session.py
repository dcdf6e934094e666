"""One connection to one 1C base: auth, pacing, a concurrency cap, retries and a circuit breaker, two calls.

httpx stays inside `onec.http` (it has had no release in a long time, see the engineering notes), so the
rest of the project depends only on `get_json` / `post_json` / `download` and on our own error classes.

Every call and every download goes through one retry loop (`_retrying`): the breaker admits the attempt, a
timeout, a dropped connection, a 429 or a 5xx becomes `Transient` and is waited out and repeated, anything else
is raised. Below the loop, `PacedTransport` paces, caps and counts each request on the wire and `BearerAuth`
keeps the bearer token fresh, so a retried attempt and a repeat after a token refresh are paced like the first.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

import httpx
import orjson

from onec.config import AuthMethod, ConfigError, Settings
from onec.http.auth import TOKEN_PATH, BearerAuth, BearerTokens, auth_failure, static_headers
from onec.http.errors import (
    OneCAuthError,
    OneCHTTPError,
    OneCProtocolError,
    OneCUnavailable,
    error_fields,
)
from onec.http.limits import CircuitBreaker, CircuitOpen, PacedTransport, RateLimiter, RequestStats, count
from onec.http.retry import MAX_RETRY_AFTER_S, Transient, backoff_delay, parse_retry_after
from onec.http.server_clock import ServerClock
from onec.redact import Scrubber, redact_url

log = logging.getLogger("onec.http")

Params = Mapping[str, str | int] | None
Result = TypeVar("Result")
HTML_MESSAGE = (
    "1C answered with an HTML page instead of JSON (status {status}): this usually means authentication failed"
)


class OneCSession:
    """Thread-safe: one session is shared by all page-fetching threads so they share one pace and one cap."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        breaker_threshold: int = 8,
        breaker_cooldown_s: float = 30.0,
    ) -> None:
        if settings.base_url is None:
            raise ConfigError("ONEC_BASE_URL is not set: the 1C session needs the exchange service's base URL")
        self.settings = settings
        self.stats = RequestStats()
        self.server_clock = ServerClock()
        """1C's clock as its answers' `Date` headers tell it (see `onec.http.server_clock`)."""
        self._base = settings.base_url.rstrip("/") + "/"
        self._shown_base = redact_url(settings.base_url)
        self._sleep = sleep
        self._rng = random.Random()
        self._breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_s, clock=clock)
        self._last_failure = "no answer yet"
        self._scrubber = Scrubber()
        for secret in (settings.password.reveal(), settings.api_key.reveal()):
            self._scrubber.add(secret)
        self._headers = {"Accept": "application/json", **static_headers(settings)}
        self._auth = (
            BearerAuth(
                BearerTokens(
                    settings,
                    self._post_token,
                    clock=clock,
                    scrubber=self._scrubber,
                    on_refresh=lambda: count(self.stats, "auth_refreshes"),
                )
            )
            if settings.auth is AuthMethod.BEARER
            else None
        )
        self._client = httpx.Client(
            transport=PacedTransport(
                transport or _network_transport(settings, self._base),
                limiter=RateLimiter(settings.rate_limit, clock=clock, sleep=sleep),
                max_connections=settings.max_connections,
                stats=self.stats,
            ),
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "onec-etl"},
        )

    def __repr__(self) -> str:
        return f"OneCSession(base_url={self._shown_base!r}, auth={self.settings.auth.value!r})"

    def __enter__(self) -> OneCSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get_json(self, path: str, params: Params = None, *, query: str | None = None) -> Any:
        """`query` is a query string encoded by the caller, for servers that read `+` as a plus (1C's OData)."""
        return self._call("GET", _with_query(path, query), params=params, body=None, idempotent=True)

    def get_text(self, path: str, *, query: str | None = None) -> str:
        """A plain-text answer (OData's `/$count`) under the same auth, pacing, cap and retries as JSON."""
        text: str = self._call("GET", _with_query(path, query), params=None, body=None, idempotent=True, text=True)
        return text

    def download(self, path: str, params: Params, sink: BinaryIO) -> str:
        """Stream an export body into `sink` and return its Content-Type, with the same pacing, cap and retries
        as `get_json`. A body that breaks off mid-way is fetched again from the start (the sink is emptied
        first), so the caller only ever reads a complete export. `path` may be absolute on the same server."""
        url = self._url(path)
        where = f"GET {redact_url(str(httpx.URL(url, params=params)))}"
        return self._retrying(where, True, lambda: self._download_attempt(url, params, sink, where))

    def post_json(self, path: str, body: Any, *, retry: bool = False) -> Any:
        """Writes are repeated after a timeout or a dropped connection only with `retry=True`: the first
        attempt may have been applied, and only the caller knows whether repeating is harmless."""
        return self._call("POST", path, params=None, body=body, idempotent=retry)

    def _post_token(self, body: dict[str, str]) -> Any:
        # the token endpoint only creates tokens, so repeating a login is harmless
        return self._call("POST", TOKEN_PATH, params=None, body=body, idempotent=True, authenticated=False)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params,
        body: Any,
        idempotent: bool,
        authenticated: bool = True,
        text: bool = False,
    ) -> Any:
        url = self._url(path)
        where = f"{method} {redact_url(str(httpx.URL(url, params=params)))}"
        content = None if body is None else orjson.dumps(body)
        return self._retrying(
            where, idempotent, lambda: self._attempt(method, url, params, content, where, authenticated, text)
        )

    def _retrying(self, where: str, idempotent: bool, attempt: Callable[[], Result]) -> Result:
        """The one retry loop of calls and downloads alike: repeat `attempt` while it fails transiently."""
        retries = 0
        while True:
            self._admit()
            try:
                return attempt()
            except Transient as failure:
                delay = self._retry_delay(failure, where, retries, idempotent)
                retries += 1
                count(self.stats, "retries")
                log.info(  # counted in the run's figures; one warning per retry would drown the output
                    "%s: %s; retry %d/%d in %.2f s",
                    where,
                    failure.reason,
                    retries,
                    self.settings.max_retries,
                    delay,
                )
                self._sleep(delay)

    def _admit(self) -> None:
        """Fail fast while the circuit is open: 1C is down, and hammering it delays its recovery."""
        try:
            self._breaker.before_attempt()
        except CircuitOpen as circuit:
            raise OneCUnavailable(
                f"1C at {self._shown_base} is not answering: {self._last_failure}; circuit open for "
                f"{circuit.remaining_s:.0f} s"
            ) from None

    def _url(self, path: str) -> str:
        """A path below the base URL, or an absolute URL on the base's own server (another publication of the
        same 1C, e.g. its OData root); never another server, which would be sent our credentials."""
        if "://" not in path:
            return self._base + path.lstrip("/")
        target, base = httpx.URL(path), httpx.URL(self._base)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ConfigError(f"{redact_url(path)} is not on the server of ONEC_BASE_URL ({self._shown_base})")
        return path

    def _retry_delay(self, failure: Transient, where: str, retries: int, idempotent: bool) -> float:
        """How long to wait before the next attempt, or the error to raise when there must be none."""
        if not (idempotent or failure.nothing_applied):
            raise OneCUnavailable(
                f"{where} failed: {failure.reason}; not repeated because the write may have been applied"
            ) from None
        if retries >= self.settings.max_retries:
            raise OneCUnavailable(
                f"1C at {where} is not answering: {failure.reason}; gave up after {retries + 1} attempts"
            ) from None
        delay = backoff_delay(retries, failure.retry_after, self._rng)
        if delay > MAX_RETRY_AFTER_S:
            raise OneCUnavailable(
                f"1C at {where} asked to wait {delay:.0f} s ({failure.reason}); not waiting that long"
            ) from None
        return delay

    def _attempt(
        self,
        method: str,
        url: str,
        params: Params,
        content: bytes | None,
        where: str,
        authenticated: bool,
        text: bool,
    ) -> Any:
        headers = dict(self._headers) if authenticated else {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            response = self._client.request(
                method, url, params=params, content=content, headers=headers, auth=self._auth if authenticated else None
            )
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, where) from None
        log.debug("%s -> %d in %.3f s", where, response.status_code, time.perf_counter() - started)
        self.server_clock.observe(response.headers.get("Date"))
        return self._interpret(response, where, text)

    def _download_attempt(self, url: str, params: Params, sink: BinaryIO, where: str) -> str:
        """One attempt writes the whole body from the start: what an earlier attempt left in `sink` goes first."""
        sink.seek(0)
        sink.truncate()
        headers = {**self._headers, "Accept": "*/*"}
        try:
            with self._client.stream("GET", url, params=params, headers=headers, auth=self._auth) as response:
                ctype: str = response.headers.get("Content-Type", "")
                if not 200 <= response.status_code < 300 or "html" in ctype.lower():
                    response.read()
                else:
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, where) from None
        if not 200 <= response.status_code < 300:
            self._interpret(response, where)
        if "html" in ctype.lower():
            raise OneCAuthError(HTML_MESSAGE.format(status=response.status_code) + f" ({where})")
        self._breaker.record_success()
        sink.flush()
        return ctype

    def _transport_failure(self, exc: httpx.HTTPError, where: str) -> Exception:
        """Network trouble is transient unless it is a configuration problem no retry can fix."""
        reason = f"{type(exc).__name__}: {self._scrubber.scrub(str(exc)) or 'no detail'}"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return OneCUnavailable(f"TLS verification of 1C's certificate failed at {where}: {reason}")
        if not isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
            return OneCUnavailable(f"cannot talk to 1C at {where}: {reason}")
        count(self.stats, "connection_errors")
        self._failed(reason)
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        return Transient(reason, nothing_applied=never_sent)

    def _failed(self, reason: str) -> None:
        self._last_failure = reason
        if self._breaker.record_failure():
            count(self.stats, "circuit_opens")
            log.warning("1C at %s: circuit opened after repeated failures (%s)", self._shown_base, reason)

    def _interpret(self, response: httpx.Response, where: str, text: bool = False) -> Any:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            count(self.stats, "throttled")
            self._breaker.record_neutral()
            raise Transient("429 Too Many Requests", retry_after=retry_after, nothing_applied=True)
        if status >= 500:
            count(self.stats, "server_errors")
            code, message, _ = self._error_body(response)
            reason = f"{status} {code or ''} {message}".replace("  ", " ").strip()
            self._failed(reason)
            raise Transient(reason, retry_after=retry_after, nothing_applied=status == 503)
        if status in (401, 403):
            self._breaker.record_success()
            code, message, _ = self._error_body(response)
            if status == 401 and code == "TOKEN_EXPIRED" and self._auth is not None:
                raise OneCAuthError(f"1C rejected a freshly issued token at {where}")
            raise auth_failure(status, where, message)
        if not 200 <= status < 300:
            self._breaker.record_success()
            code, message, details = self._error_body(response)
            raise OneCHTTPError(status, code, message or response.reason_phrase, details, where=where)
        value = self._decode_text(response, where) if text else self._decode(response, where)
        self._breaker.record_success()
        return value

    def _decode(self, response: httpx.Response, where: str) -> Any:
        """Check the content type first: 1C answers a failed login with an HTML page and status 200."""
        if response.status_code == 204:
            return None
        ctype = response.headers.get("Content-Type", "").lower()
        body = response.content
        if "html" in ctype or ("json" not in ctype and body.lstrip()[:1] == b"<"):
            raise OneCAuthError(HTML_MESSAGE.format(status=response.status_code) + f" ({where})")
        if ctype and "json" not in ctype:
            raise OneCProtocolError(
                f"1C answered with {ctype} instead of JSON (status {response.status_code}) at {where}"
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            reason = f"invalid or truncated JSON in a {response.status_code} answer ({len(body)} bytes)"
            self._failed(reason)
            raise Transient(reason) from None

    def _decode_text(self, response: httpx.Response, where: str) -> str:
        """A plain-text body, after the same login-page check as JSON."""
        ctype = response.headers.get("Content-Type", "").lower()
        if "html" in ctype or response.content.lstrip()[:1] == b"<":
            raise OneCAuthError(HTML_MESSAGE.format(status=response.status_code) + f" ({where})")
        return response.text

    def _error_body(self, response: httpx.Response) -> tuple[str | None, str, dict[str, Any]]:
        """Read the §1.7 error body when there is one; anything else becomes a short, secret-free excerpt."""
        fields = error_fields(response.content)
        if fields is not None:
            code = fields.get("code")
            details = fields.get("details")
            return (
                str(code) if code is not None else None,
                self._scrubber.scrub(str(fields.get("message") or "")),
                details if isinstance(details, dict) else {},
            )
        text = response.text if "html" not in response.headers.get("Content-Type", "") else ""
        return None, self._scrubber.scrub(" ".join(text.split())[:200]), {}


def _with_query(path: str, query: str | None) -> str:
    return f"{path}?{query}" if query else path


def _network_transport(settings: Settings, base_url: str) -> httpx.HTTPTransport:
    """The real connection pool. httpx reads the proxy variables only for a transport it builds itself, so the
    one proxy the environment names for 1C's server (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, unless NO_PROXY
    exempts the host) is looked up here."""
    server = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = None if urllib.request.proxy_bypass(server.host) else proxies.get(server.scheme) or proxies.get("all")
    return httpx.HTTPTransport(
        verify=_tls_context(settings),
        limits=httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections
        ),
        proxy=proxy if proxy is None or "://" in proxy else f"http://{proxy}",
    )


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """Always verifying: the CA bundle when given, else the system store; plus the client pair for mTLS."""
    context = ssl.create_default_context(cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
    if settings.client_cert is not None:
        key = str(settings.client_key) if settings.client_key else None
        context.load_cert_chain(str(settings.client_cert), key)
    return context
