"""A mutable sandbox 1C (in-process), warehouses, and the comparison "incremental == full extract"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sync import local_today

ZONE = "Europe/Moscow"
DAYS = 40

OpenClient = Callable[[], AbstractContextManager[OneCClient]]


@pytest.fixture(autouse=True)
def isolated_incremental_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEC_INCREMENTAL_OVERLAP_MINUTES", raising=False)


@pytest.fixture
def data() -> SandboxData:
    start = local_today(ZONE) - timedelta(days=DAYS)
    return SandboxData.generate(seed=11, documents=400, start=start, days=DAYS, bad_records=7, timezone=ZONE)


@pytest.fixture
def engine(data: SandboxData) -> SandboxEngine:
    return SandboxEngine(data, SandboxConfig(max_page_size=60, short_page_rate=0.1))


@pytest.fixture
def mutator(data: SandboxData) -> SandboxMutator:
    """Stamps changes a second in the past: 1C's clock a little behind ours, as the overlap expects."""
    zone = ZoneInfo(ZONE)
    return SandboxMutator(data, seed=5, clock=lambda: datetime.now(zone) - timedelta(seconds=1))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(timezone=ZONE, data_dir=tmp_path / "incremental", page_size=50, rate_limit=10_000)


@pytest.fixture
def client_for(engine: SandboxEngine, settings: Settings) -> OpenClient:
    @contextmanager
    def opened() -> Iterator[OneCClient]:
        with open_client(settings, engine=engine) as client:
            yield client

    return opened
