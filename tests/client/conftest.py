"""Fixtures for the 1C client tests: a clock that sleeps instantly, settings pointing at a fake 1C."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from onec.config import AuthMethod, Secret, Settings
from onec.http import OneCSession

BASE = "http://1c.test/trade/hs/exchange"
PASSWORD = "s3cr3t-пароль"
API_KEY = "key-0123456789abcdef"


class FakeTime:
    """Monotonic clock plus sleep that only advances the clock, so backoff tests take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": BASE,
        "auth": AuthMethod.BASIC,
        "username": "Иванов",
        "password": Secret(PASSWORD),
        "rate_limit": 1000.0,
        "max_retries": 3,
    }
    values.update(overrides)
    return Settings(**values)


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(name="make_settings")
def make_settings_fixture() -> Callable[..., Settings]:
    return make_settings


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def session_for(fake_time: FakeTime) -> Any:
    """Build sessions over a MockTransport handler; closed after the test."""
    made: list[OneCSession] = []

    def build(handler: Handler, **overrides: Any) -> OneCSession:
        breaker = {k: overrides.pop(k) for k in ("breaker_threshold", "breaker_cooldown_s") if k in overrides}
        session = OneCSession(
            make_settings(**overrides),
            transport=httpx.MockTransport(handler),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            **breaker,
        )
        made.append(session)
        return session

    yield build
    for session in made:
        session.close()
