"""The vocabulary the engine and its adapters share: a request, a response, an error answer.

Why a module of its own: the engine, the write handlers, the exports and the OData service all build responses
and raise errors, and none of them should import the others to do so. Framework-free on purpose: the in-process
httpx transport and the uvicorn app both translate to and from these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import orjson

JSON = "application/json; charset=utf-8"

LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>1С:Предприятие</title></head><body>'
    '<form method="post" action="e1cib/login"><h1>Вход в 1С:Предприятие</h1>'
    '<label>Пользователь <input name="user"></label><label>Пароль <input type="password" name="pwd"></label>'
    "<button>Войти</button></form></body></html>"
).encode()


class _MultiItems(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class SandboxRequest:
    """What the engine needs of a request. `path` is the full URL path (base path included), percent-decoded;
    `query` takes lists per name or any multi-dict with `multi_items()`; header names are case-insensitive.

    `raw_query` is the query string exactly as sent (still percent-encoded): OData must see a `+` as the plus
    it is, which the form-decoded `query` has already turned into a space.
    """

    method: str
    path: str
    query: Mapping[str, Sequence[str]] | _MultiItems = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw_query: str = ""

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
    `delay_s`: how long the adapter waits before answering (inside `engine.connection()`).

    `chunks`: a streamed body (exports reach hundreds of megabytes): `body` is then empty, no length is
    announced, and the adapters send the chunks as they come; `cut_at` counts bytes into the stream.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    cut_at: int | None = None
    delay_s: float = 0.0
    chunks: Iterable[bytes] | None = None


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


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse(status, {"content-type": JSON, **(headers or {})}, body)


def unauthorized(message: str, headers: dict[str, str] | None = None) -> HttpError:
    return HttpError(401, "UNAUTHORIZED", message, headers=headers, auth_failure=True)


def bad_parameter(name: str, value: str, expected: str) -> HttpError:
    return HttpError(
        400,
        "INVALID_PARAMETER",
        f"Неверное значение параметра {name}: {expected}",
        {"parameter": name, "value": value},
    )


def _query_lists(query: Mapping[str, Sequence[str]] | _MultiItems) -> dict[str, list[str]]:
    """Lists per name from a plain mapping or a multi-dict (httpx/starlette `QueryParams` are both)."""
    if isinstance(query, Mapping) and not hasattr(query, "multi_items"):
        return {name: [values] if isinstance(values, str) else list(values) for name, values in query.items()}
    lists: dict[str, list[str]] = {}
    for name, value in cast(_MultiItems, query).multi_items():
        lists.setdefault(name, []).append(value)
    return lists
