"""Credentials as request headers, and the bearer token life cycle (login, proactive refresh, re-login) as an
httpx auth flow.

The token manager does not talk HTTP itself: it is handed a `post` function so every token call goes through
the session's retry loop, rate limiter, concurrency cap and error mapping like any other request.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from onec.config import AuthMethod, Settings
from onec.http.errors import OneCAuthError, OneCError, OneCProtocolError, error_fields
from onec.redact import Scrubber

TOKEN_PATH = "api/v1/auth/token"  # noqa: S105 (a path, not a password)
TokenPost = Callable[[dict[str, str]], Any]


def basic_header(username: str, password: str) -> str:
    """Built by hand: the credentials must be UTF-8 (Cyrillic user names), whatever the library default."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class _Token:
    access: str
    refresh: str | None
    expires_at: float


class BearerTokens:
    """One login shared by all threads; refreshed shortly before expiry and when 1C says TOKEN_EXPIRED."""

    def __init__(
        self,
        settings: Settings,
        post: TokenPost,
        *,
        clock: Callable[[], float],
        scrubber: Scrubber,
        on_refresh: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._post = post
        self._clock = clock
        self._scrubber = scrubber
        self._on_refresh = on_refresh
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def current(self) -> str:
        with self._lock:
            token = self._token
            if token is None:
                token = self._login()
            elif self._clock() >= token.expires_at:
                token = self._renew(token)
            return token.access

    def expired(self, used: str) -> None:
        """Called after a TOKEN_EXPIRED answer; only the first thread holding the stale token renews it."""
        with self._lock:
            token = self._token
            if token is None or token.access != used:
                return
            self._renew(token)

    def _renew(self, token: _Token) -> _Token:
        self._on_refresh()
        if token.refresh:
            try:
                return self._store(self._post({"refresh_token": token.refresh}))
            except OneCError:
                pass  # a refresh token can be revoked or expired too; the password still works
        return self._login()

    def _login(self) -> _Token:
        return self._store(
            self._post({"username": self._settings.username, "password": self._settings.password.reveal()})
        )

    def _store(self, answer: Any) -> _Token:
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise OneCProtocolError("1C's token endpoint did not answer with an access_token")
        expires_in = _seconds(answer.get("expires_in"))
        refresh = answer.get("refresh_token") if isinstance(answer.get("refresh_token"), str) else None
        self._scrubber.add(answer["access_token"])
        if refresh:
            self._scrubber.add(refresh)
        margin = min(30.0, expires_in / 10)
        self._token = _Token(answer["access_token"], refresh, self._clock() + expires_in - margin)
        return self._token


class BearerAuth(httpx.Auth):
    """Send with the current token; when 1C answers 401 TOKEN_EXPIRED (§1: refresh once, repeat the request),
    refresh once and send again. Concurrent requests that hit the same expired token refresh it once between them.

    The flow logs in over the network and under a lock, which httpx wants done in `sync_auth_flow` rather than in
    the I/O-free `auth_flow`: the session's client is synchronous, and an asynchronous one is refused.
    """

    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self._tokens.current()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401 or not _says_token_expired(response):
            return
        self._tokens.expired(used)
        request.headers["Authorization"] = f"Bearer {self._tokens.current()}"
        yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("BearerAuth logs in with blocking calls: use it with httpx.Client, not httpx.AsyncClient")


def _says_token_expired(response: httpx.Response) -> bool:
    """Only the 401 body is read here, so a streamed export that is let through stays streamed."""
    fields = error_fields(response.read())
    return fields is not None and fields.get("code") == "TOKEN_EXPIRED"


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 300.0  # the contract promises expires_in; without it, assume a short life and let 401 correct us
    return max(seconds, 1.0)


def static_headers(settings: Settings) -> dict[str, str]:
    """Headers for the methods that need no round trip; bearer is added per request by `BearerAuth`."""
    if settings.auth is AuthMethod.BASIC:
        return {"Authorization": basic_header(settings.username, settings.password.reveal())}
    if settings.auth is AuthMethod.API_KEY:
        return {"X-API-Key": settings.api_key.reveal()}
    return {}


def auth_failure(status: int, where: str, detail: str) -> OneCAuthError:
    hint = {401: "check the user name and password (or API key)", 403: "the 1C user lacks rights for this"}
    return OneCAuthError(
        f"1C refused authentication ({status}) at {where}: {detail or hint.get(status, '')}".rstrip(": ")
    )
