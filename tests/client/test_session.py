"""The transport against scripted fake 1C answers: auth, retries, throttling, breaker, errors, secrets."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from onec.config import AuthMethod, Secret
from onec.http import (
    OneCAuthError,
    OneCHTTPError,
    OneCProtocolError,
    OneCUnavailable,
    redact_url,
)
from onec.http.limits import RateLimiter
from onec.http.retry import parse_retry_after

OK = {"version": "1.4.2", "api_versions": ["v1"]}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def error_body(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    body = {"error": True, "message": message, "code": code, "httpStatus": status, "details": details}
    return json_response(status, body)


def scripted(*answers: httpx.Response | Exception) -> tuple[Any, list[httpx.Request]]:
    """A handler that plays answers in order (the last one repeats) and records the requests."""
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response | Exception] = iter(answers)
    last: list[httpx.Response | Exception] = [answers[-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue, last[0])
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def test_path_joins_below_the_base_url_prefix_and_sends_params(session_for: Any) -> None:
    handler, seen = scripted(json_response(200, OK))
    session = session_for(handler)
    assert session.get_json("/api/v1/goods", {"limit": 5, "offset": 10}) == OK
    url = seen[0].url
    assert url.path == "/trade/hs/exchange/api/v1/goods"
    assert dict(url.params) == {"limit": "5", "offset": "10"}


def test_basic_auth_is_utf8_for_cyrillic_user_names(session_for: Any) -> None:
    handler, seen = scripted(json_response(200, OK))
    session_for(handler, username="Иванов").get_json("api/version")
    scheme, _, encoded = seen[0].headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode("utf-8") == "Иванов:s3cr3t-пароль"


def test_api_key_goes_in_a_header(session_for: Any) -> None:
    handler, seen = scripted(json_response(200, OK))
    session_for(handler, auth=AuthMethod.API_KEY, api_key=Secret("k-123456")).get_json("api/version")
    assert seen[0].headers["X-API-Key"] == "k-123456"
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_reads_are_retried_on_transient_statuses(session_for: Any, fake_time: Any, status: int) -> None:
    handler, _ = scripted(
        error_body(status, "X", "временно"), error_body(status, "X", "временно"), json_response(200, OK)
    )
    session = session_for(handler)
    assert session.get_json("api/version") == OK
    stats = session.stats.snapshot()
    assert (stats["requests"], stats["retries"]) == (3, 2)
    assert stats["throttled" if status == 429 else "server_errors"] == 2
    assert len(fake_time.sleeps) == 2 and all(0 <= s <= 0.5 for s in fake_time.sleeps)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
def test_reads_are_retried_on_connection_trouble(session_for: Any, failure: Exception) -> None:
    handler, _ = scripted(failure, json_response(200, OK))
    session = session_for(handler)
    assert session.get_json("api/version") == OK
    assert session.stats.snapshot()["connection_errors"] == 1


def test_truncated_json_on_200_is_retried(session_for: Any) -> None:
    truncated = httpx.Response(200, content=b'{"data": [{"sku": "A"', headers={"Content-Type": "application/json"})
    handler, seen = scripted(truncated, json_response(200, OK))
    assert session_for(handler).get_json("api/version") == OK
    assert len(seen) == 2


def test_retry_after_seconds_is_a_floor_for_the_wait(session_for: Any, fake_time: Any) -> None:
    handler, _ = scripted(json_response(429, {}, {"Retry-After": "7"}), json_response(200, OK))
    session_for(handler).get_json("api/version")
    assert fake_time.sleeps == [7.0]


def test_retry_after_http_date_is_understood() -> None:
    now = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert parse_retry_after(header, now) == pytest.approx(12)
    assert parse_retry_after("garbage", now) is None
    assert parse_retry_after("3", now) == 3


def test_backoff_grows_exponentially_with_full_jitter(session_for: Any, fake_time: Any) -> None:
    handler, _ = scripted(json_response(503, {}))
    with pytest.raises(OneCUnavailable, match=r"gave up after 7 attempts"):
        session_for(handler, max_retries=6, breaker_threshold=100, rate_limit=1e12).get_json("api/version")
    assert len(fake_time.sleeps) == 6
    for retry, slept in enumerate(fake_time.sleeps):
        assert 0 <= slept <= min(30.0, 0.25 * 2**retry)


def test_exhausted_retries_give_one_clear_line(session_for: Any) -> None:
    handler, _ = scripted(error_body(500, "EXCEPTION", "Ошибка при вызове метода контекста"))
    with pytest.raises(OneCUnavailable) as caught:
        session_for(handler).get_json("api/version")
    message = str(caught.value)
    assert "\n" not in message
    assert "is not answering: 500 EXCEPTION Ошибка при вызове метода контекста; gave up after 4 attempts" in message


def test_writes_are_not_repeated_after_a_timeout(session_for: Any) -> None:
    handler, seen = scripted(httpx.ReadTimeout("slow"), json_response(201, {"id": "1"}))
    with pytest.raises(OneCUnavailable, match="may have been applied"):
        session_for(handler).post_json("api/v1/documents/shipment", {"number": "1"})
    assert len(seen) == 1


def test_writes_are_not_repeated_after_a_500(session_for: Any) -> None:
    handler, seen = scripted(json_response(500, {}), json_response(201, {"id": "1"}))
    with pytest.raises(OneCUnavailable):
        session_for(handler).post_json("api/v1/documents/shipment", {"number": "1"})
    assert len(seen) == 1


def test_writes_opt_in_to_retries(session_for: Any) -> None:
    handler, seen = scripted(httpx.ReadTimeout("slow"), json_response(201, {"id": "1"}))
    assert session_for(handler).post_json("api/v1/goods/batch", {"goods": []}, retry=True) == {"id": "1"}
    assert len(seen) == 2


@pytest.mark.parametrize(
    "refusal",
    [json_response(429, {}), json_response(503, {}), httpx.ConnectError("refused")],
    ids=["429", "503", "connect"],
)
def test_writes_are_repeated_when_nothing_was_applied(session_for: Any, refusal: Any) -> None:
    handler, seen = scripted(refusal, json_response(201, {"id": "1"}))
    assert session_for(handler).post_json("api/v1/documents/shipment", {"n": 1}) == {"id": "1"}
    assert len(seen) == 2
    assert seen[1].content == b'{"n":1}'
    assert seen[1].headers["Content-Type"] == "application/json"


def test_html_login_page_is_an_auth_error_and_not_retried(session_for: Any) -> None:
    page = httpx.Response(
        200,
        text="<html><body>Вход в 1С:Предприятие</body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    handler, seen = scripted(page)
    with pytest.raises(OneCAuthError) as caught:
        session_for(handler).get_json("api/v1/goods")
    assert str(caught.value).startswith(
        "1C answered with an HTML page instead of JSON (status 200): this usually means authentication failed"
    )
    assert len(seen) == 1


def test_other_non_json_is_a_protocol_error(session_for: Any) -> None:
    handler, seen = scripted(httpx.Response(200, text="a,b\n1,2", headers={"Content-Type": "text/csv"}))
    with pytest.raises(OneCProtocolError, match="text/csv instead of JSON"):
        session_for(handler).get_json("api/v1/goods")
    assert len(seen) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retried(session_for: Any, status: int) -> None:
    handler, seen = scripted(error_body(status, "UNAUTHORIZED", "Пользователь не идентифицирован"))
    with pytest.raises(OneCAuthError, match=f"refused authentication \\({status}\\)"):
        session_for(handler).get_json("api/version")
    assert len(seen) == 1


def test_other_4xx_carry_the_contract_error_body(session_for: Any) -> None:
    handler, _ = scripted(error_body(409, "DOCUMENT_EXISTS", "Документ уже существует", existing_id="abc"))
    with pytest.raises(OneCHTTPError) as caught:
        session_for(handler).post_json("api/v1/documents/shipment", {"number": "1"})
    error = caught.value
    assert (error.status, error.code, error.details) == (409, "DOCUMENT_EXISTS", {"existing_id": "abc"})
    assert str(error).startswith("1C refused the request with 409 DOCUMENT_EXISTS: Документ уже существует")


# --- bearer tokens ---------------------------------------------------------------------------------------


class TokenServer:
    """A fake 1C that issues tokens, expires them on demand and counts logins and refreshes."""

    def __init__(self, ttl: int = 3600) -> None:
        self.ttl = ttl
        self.logins = 0
        self.refreshes = 0
        self.valid: set[str] = set()
        self.refresh_ok = True
        self.lock = threading.Lock()

    def issue(self) -> httpx.Response:
        n = self.logins + self.refreshes
        token = f"tok-{n:04d}-abcdef"
        self.valid = {token}
        return json_response(200, {"access_token": token, "expires_in": self.ttl, "refresh_token": f"ref-{n:04d}-xyz"})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path.endswith("/api/v1/auth/token"):
                body = httpx.Request("POST", "http://x", content=request.content).read()
                if b"refresh_token" in body:
                    if not self.refresh_ok:
                        return error_body(401, "INVALID_REFRESH_TOKEN", "bad refresh")
                    self.refreshes += 1
                else:
                    self.logins += 1
                return self.issue()
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.valid:
                return error_body(401, "TOKEN_EXPIRED", "Срок действия токена истёк")
        time.sleep(0.001)
        return json_response(200, OK)


def test_bearer_logs_in_once_for_many_threads(session_for: Any) -> None:
    server = TokenServer()
    session = session_for(server, auth=AuthMethod.BEARER)
    threads = [threading.Thread(target=session.get_json, args=("api/version",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.logins == 1
    assert session.stats.snapshot()["requests"] == 9


def test_bearer_refreshes_once_on_token_expired_and_repeats(session_for: Any) -> None:
    server = TokenServer()
    session = session_for(server, auth=AuthMethod.BEARER)
    session.get_json("api/version")
    server.valid = set()  # the server forgets the token
    assert session.get_json("api/version") == OK
    assert (server.logins, server.refreshes) == (1, 1)
    assert session.stats.snapshot()["auth_refreshes"] == 1


def test_bearer_refreshes_again_when_the_token_expires_during_a_retry(session_for: Any) -> None:
    """Each attempt may refresh once: a retry after a 503 is a new attempt, with its own refresh if it needs one."""
    server = TokenServer()
    steps = iter(["expire", "503", "expire", "ok"])

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in server.valid:
            step = next(steps)
            if step == "expire":
                server.valid = set()
            elif step == "503":
                return json_response(503, {})
        return server(request)

    session = session_for(handler, auth=AuthMethod.BEARER)
    assert session.get_json("api/version") == OK
    assert (server.logins, server.refreshes) == (1, 2)
    assert session.stats.snapshot()["retries"] == 1


def test_bearer_refresh_with_a_single_connection_does_not_wait_on_itself(session_for: Any) -> None:
    """The refresh runs inside the request's auth flow; it must not need the connection slot that request holds."""
    server = TokenServer()
    session = session_for(server, auth=AuthMethod.BEARER, max_connections=1)
    session.get_json("api/version")
    server.valid = set()
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(session.get_json("api/version")), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert answers == [OK]
    assert (server.logins, server.refreshes) == (1, 1)


def test_bearer_logs_in_again_when_refresh_fails(session_for: Any) -> None:
    server = TokenServer()
    session = session_for(server, auth=AuthMethod.BEARER)
    session.get_json("api/version")
    server.valid = set()
    server.refresh_ok = False
    assert session.get_json("api/version") == OK
    assert server.logins == 2


def test_bearer_refreshes_proactively_before_expiry(session_for: Any, fake_time: Any) -> None:
    server = TokenServer(ttl=100)
    session = session_for(server, auth=AuthMethod.BEARER)
    session.get_json("api/version")
    fake_time.now += 95  # inside the safety margin before expiry
    session.get_json("api/version")
    assert (server.logins, server.refreshes) == (1, 1)
    assert session.stats.snapshot()["throttled"] == 0


def test_bearer_with_wrong_password_is_a_clear_auth_error(session_for: Any) -> None:
    handler, seen = scripted(error_body(401, "INVALID_CREDENTIALS", "Неверное имя пользователя или пароль"))
    with pytest.raises(OneCAuthError, match="Неверное имя пользователя или пароль"):
        session_for(handler, auth=AuthMethod.BEARER).get_json("api/version")
    assert len(seen) == 1


# --- pacing, cap, breaker ----------------------------------------------------------------------------------


def test_rate_limiter_spaces_attempts_without_burst(fake_time: Any) -> None:
    limiter = RateLimiter(4.0, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(5):
        limiter.acquire()
    assert fake_time.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_rate_limiter_paces_real_threads() -> None:
    limiter = RateLimiter(50.0, clock=time.monotonic, sleep=time.sleep)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert stamps[-1] - stamps[0] >= 19 / 50 - 0.01


def test_concurrency_is_capped(session_for: Any) -> None:
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return json_response(200, OK)

    session = session_for(handler, max_connections=2)
    threads = [threading.Thread(target=session.get_json, args=("api/version",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["peak"] == 2


def test_circuit_opens_fails_fast_then_probes(session_for: Any, fake_time: Any) -> None:
    healthy = {"yes": False}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, OK) if healthy["yes"] else json_response(503, {})

    session = session_for(handler, max_retries=0, breaker_threshold=3, breaker_cooldown_s=30.0)
    for _ in range(3):
        with pytest.raises(OneCUnavailable, match="gave up"):
            session.get_json("api/version")
    with pytest.raises(OneCUnavailable, match=r"is not answering: 503.*; circuit open for 30 s"):
        session.get_json("api/version")
    assert len(seen) == 3
    assert session.stats.snapshot()["circuit_opens"] == 1
    fake_time.now += 31
    healthy["yes"] = True
    assert session.get_json("api/version") == OK
    assert session.get_json("api/version") == OK
    assert len(seen) == 5


def test_429_does_not_open_the_circuit(session_for: Any) -> None:
    handler, _ = scripted(json_response(429, {}))
    session = session_for(handler, max_retries=0, breaker_threshold=2)
    for _ in range(4):
        with pytest.raises(OneCUnavailable, match="429"):
            session.get_json("api/version")
    assert session.stats.snapshot()["circuit_opens"] == 0


# --- secrets -----------------------------------------------------------------------------------------------


def test_redact_url_masks_userinfo_and_secret_params() -> None:
    shown = redact_url("https://user:pw@erp.example/hs/x?api_key=K1&limit=5&token=T1&Password=P&secret=S")
    assert shown == "https://***@erp.example/hs/x?api_key=***&limit=5&token=***&Password=***&secret=***"


def test_no_secret_in_logs_errors_or_reprs(session_for: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="onec.http")
    secrets = ["s3cr3t-пароль", "k-secret-777", "tok-0000-abcdef", "ref-0000-xyz"]
    server = TokenServer()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/version"):
            return error_body(500, "E", f"Ошибка: ключ {secrets[1]} пароль {secrets[0]}")
        return server(request)

    errors: list[str] = []
    for auth in (AuthMethod.BASIC, AuthMethod.API_KEY, AuthMethod.BEARER):
        session = session_for(handler, auth=auth, api_key=Secret(secrets[1]))
        with pytest.raises(OneCUnavailable) as caught:
            session.get_json("api/version", {"api_key": secrets[1], "token": secrets[2]})
        errors += [str(caught.value), repr(caught.value), repr(session), str(session.settings)]
    assert server.logins == 1
    text = caplog.text + "\n".join(errors)
    assert "api/version" in caplog.text and "retry" in caplog.text
    for secret in secrets:
        assert secret not in text
    assert "Authorization" not in text and "Basic " not in text
