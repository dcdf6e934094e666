"""Turning settings into a working client: the configured 1C, or the embedded sandbox when none is configured.

The embedded sandbox is why the Dagster UI and `onec-etl sync` work out of the box on a fresh machine. It runs
in-process (no port), is generated deterministically, and covers the last `EMBEDDED_DAYS` days up to yesterday so
that recent daily partitions have data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from onec import delta_lake
from onec.client import OneCClient
from onec.config import Settings
from onec.http.session import OneCSession
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.transport import SandboxTransport
from onec.sources import Source, open_source
from onec.sync import local_today
from onec.warehouse import ShrinkGuard, Warehouse

EMBEDDED_BASE_URL = "http://sandbox.invalid/trade/hs/exchange"
EMBEDDED_DAYS = 30


def sandbox_window(timezone: str, days: int = EMBEDDED_DAYS) -> tuple[date, date]:
    """[start, end) of the generated documents: the `days` days before today in the 1C zone."""
    end = local_today(timezone)
    return end - timedelta(days=days), end


def embedded_sandbox_data(settings: Settings) -> SandboxData:
    """The deterministic data of the embedded sandbox; size and seed can be set for demos and benchmarks
    (`settings.sandbox`)."""
    start, end = sandbox_window(settings.timezone)
    return SandboxData.generate(
        seed=settings.sandbox.seed,
        documents=settings.sandbox.documents,
        start=start,
        days=(end - start).days,
        timezone=settings.timezone,
    )


@contextmanager
def open_session(settings: Settings, *, engine: SandboxEngine | None = None) -> Iterator[OneCSession]:
    """A session with the configured 1C; with no base URL, with an in-process sandbox (`engine`, or a fresh one)."""
    transport = None
    if settings.base_url is None:
        engine = engine or SandboxEngine(embedded_sandbox_data(settings), SandboxConfig())
        transport = SandboxTransport(engine)
        settings = dataclasses.replace(settings, base_url=EMBEDDED_BASE_URL)
    with OneCSession(settings, transport=transport) as session:
        yield session


@contextmanager
def open_client(settings: Settings, *, engine: SandboxEngine | None = None) -> Iterator[OneCClient]:
    """The JSON client (§1.2) of the configured 1C or the embedded sandbox."""
    with open_session(settings, engine=engine) as session:
        yield OneCClient(session, page_size=settings.page_size)


@contextmanager
def open_configured_source(settings: Settings, *, engine: SandboxEngine | None = None) -> Iterator[Source]:
    """The source `settings.source` (ONEC_SOURCE) names: what the CLI, the Dagster resource and tests sync from."""
    with open_session(settings, engine=engine) as session:
        yield open_source(settings, session)


def open_warehouse(settings: Settings, *, force_replace: bool = False) -> Warehouse:
    """The warehouse of `settings`' base, initialized, its shrink guard forced by the flag or the setting: the one
    place the CLI and the Dagster resource build it, so both land with the same guard and lake."""
    guard = ShrinkGuard(
        max_removed_share=settings.shrink_guard_share,
        min_rows=settings.shrink_guard_min_rows,
        force=force_replace or settings.force_replace,
    )
    warehouse = Warehouse(
        settings.data_dir,
        settings.timezone,
        base=settings.base_id,
        shrink_guard=guard,
        delta=delta_lake.configured_target(settings, settings.base_id),
    )
    warehouse.initialize()
    return warehouse
