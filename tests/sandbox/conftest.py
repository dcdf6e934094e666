"""Fixtures for the sandbox tests: a small shared base and in-process clients that are closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxEngine
from onec.sandbox.transport import SandboxTransport
from tests.sandbox.sandbox_helpers import BASE_URL


@pytest.fixture(scope="session")
def small_data() -> SandboxData:
    """Shared, read-only: tests that mutate data generate their own."""
    return SandboxData.generate(documents=300)


@pytest.fixture
def make_client() -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(engine: SandboxEngine, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(transport=SandboxTransport(engine), **{"base_url": BASE_URL, **kwargs})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
