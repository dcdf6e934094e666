"""The spine's promise: whatever the sandbox 1C throws at the client, the warehouse ends equal to what it holds.

Over real HTTP (uvicorn on 127.0.0.1): 429s from a server rate limit tighter than the client's, 500s, 503s, dropped
connections, truncated pages, short pages and `total` drifting while documents are posted mid-run.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onec.config import AuthMethod, Secret, Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import running_server
from onec.schema import DOCUMENT_SLUGS
from onec.sync import extract_all
from onec.warehouse import Warehouse
from tests.expected_frames import (
    expected_documents,
    expected_goods,
    expected_lines,
    landed_documents,
    landed_goods,
    landed_lines,
    normalized,
)

pytestmark = pytest.mark.e2e
START, END = date(2026, 1, 1), date(2026, 2, 1)


def _settings(base_url: str, data_dir: Path, **changes: Any) -> Settings:
    return dataclasses.replace(
        Settings(), base_url=base_url, data_dir=data_dir, page_size=20, rate_limit=200, max_connections=4,
        max_retries=10, **changes,
    )  # fmt: skip


def _sync(base_url: str, data_dir: Path, doc_types: tuple[str, ...] = DOCUMENT_SLUGS, **changes: object) -> Warehouse:
    settings = _settings(base_url, data_dir, **changes)
    warehouse = Warehouse(data_dir, settings.timezone)
    warehouse.initialize()
    with open_client(settings) as client:
        extract_all(client, warehouse, date_from=START, date_to=END, snapshot_date=END, run_id="t",
                    timezone=settings.timezone, doc_types=doc_types)  # fmt: skip
    return warehouse


def test_faults_and_drift_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    """Posting documents mid-run also changes stock, so the goods snapshot is compared right after it is taken
    (drift off), and the documents are extracted under drift against the final state."""
    data = SandboxData.generate(seed=7, documents=400, start=START, days=31, bad_records=4)
    faults = FaultConfig(error_500=0.04, error_503=0.04, drop=0.04, truncate=0.04)
    config = SandboxConfig(rate_limit=10, max_connections=8, faults=faults, short_page_rate=0.05, seed=3)
    with running_server(SandboxEngine(data, config)) as base_url:
        warehouse = _sync(base_url, tmp_path, doc_types=())
    assert landed_goods(warehouse) == normalized(expected_goods(data))

    # At most 3 inserts: even if all hit one document type, the paginator's 4 passes end with a stable one (a 1C
    # that never stops changing is refused with OneCIncompleteError, which tests/client covers).
    drifting = dataclasses.replace(config, faults=dataclasses.replace(faults, drift_every=7, drift_limit=3))
    engine = SandboxEngine(data, drifting)
    with running_server(engine) as base_url:
        warehouse = _sync(base_url, tmp_path)

    stats = engine.stats.snapshot()
    assert stats["throttled"] > 0, "the server's rate limit was never hit: the test would prove nothing"
    assert stats["drift_inserts"] > 0
    assert sum(stats["faults"].values()) > 0
    assert landed_documents(warehouse) == normalized(expected_documents(data, START, END))
    assert landed_lines(warehouse) == normalized(expected_lines(data, START, END))
    rejected = warehouse.query("SELECT count(*) FROM rejected_rows").item()
    assert rejected == len(data.bad_record_keys())


def test_cyrillic_basic_auth_over_real_http(tmp_path: Path) -> None:
    data = SandboxData.generate(seed=11, documents=120, start=START, days=31)
    config = SandboxConfig(auth="basic", username="Администратор", password="пароль-Ё")
    engine = SandboxEngine(data, config)
    with running_server(engine) as base_url:
        warehouse = _sync(
            base_url, tmp_path, auth=AuthMethod.BASIC, username="Администратор", password=Secret("пароль-Ё")
        )
    assert landed_documents(warehouse) == normalized(expected_documents(data, START, END))
    assert engine.stats.snapshot()["responses"].get(401, 0) == 0
