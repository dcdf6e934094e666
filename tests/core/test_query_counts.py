"""Each landing's request counts are its own, exactly, while entities are fetched at once over one session: what
the client reports per entity equals what 1C counted for that entity's paths (429s, faults and retries included)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from onec.config import Settings
from onec.connect import open_session
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.protocol import SandboxRequest, SandboxResponse
from onec.sandbox.server import running_server
from onec.sources import open_source
from onec.sync import extract_all, local_today
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
TYPES = ["shipment", "goods-receipt", "transfer"]


class CountingSandbox(SandboxEngine):
    """A sandbox 1C that counts every request it is asked to answer, by the entity its path reads."""

    def __init__(self, data: SandboxData, config: SandboxConfig) -> None:
        super().__init__(data, config)
        self.counted: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        tail = request.path.removeprefix(self.config.base_path + "/api/v1/").split("/")
        entity = tail[1] if tail[0] == "documents" else tail[0]
        with self._count_lock:
            self.counted[entity] += 1
        return super().handle(request)


@pytest.mark.e2e
def test_per_entity_requests_equal_what_1c_counted(tmp_path: Path) -> None:
    start = local_today(ZONE) - timedelta(days=10)
    data = SandboxData.generate(seed=5, documents=1500, start=start, days=10)
    faults = FaultConfig(error_500=0.04, error_503=0.04, drop=0.02)
    engine = CountingSandbox(data, SandboxConfig(rate_limit=10, faults=faults, max_page_size=50, seed=9))
    with running_server(engine) as base_url:
        settings = Settings(
            base_url=base_url, data_dir=tmp_path, page_size=50, rate_limit=60, max_connections=4, timeout_s=10
        )
        warehouse = Warehouse(tmp_path, ZONE)
        warehouse.initialize()
        with open_session(settings) as session:
            results = extract_all(
                open_source(settings, session),
                warehouse,
                date_from=start,
                date_to=local_today(ZONE) + timedelta(days=1),
                snapshot_date=local_today(ZONE),
                run_id="counting",
                timezone=ZONE,
                doc_types=TYPES,
                parallel=2,
            )
    reported = {r.doc_type or r.entity: r.http["requests"] for r in results}
    assert reported == {"goods": engine.counted["goods"], **{t: engine.counted[t] for t in TYPES}}
    throttled = sum(r.http["throttled"] for r in results)
    retried = sum(r.http["retries"] for r in results)
    assert throttled > 0 and retried > 0, "the run must have met 429s and faults for the counts to mean anything"
    assert throttled == engine.stats.snapshot()["throttled"]
