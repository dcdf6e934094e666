"""A model-based test of incremental sync against a 1C whose zone and clock are not the client's: hypothesis drives
random sequences of edit rounds, incremental runs and 1C clock corrections; after every run the warehouse must equal
a fresh full extract through the same client configuration, and goods_history must be one chain per position.

Bounded, derandomized and not shrunk in CI (a failure prints its whole sequence); `ONEC_CLOCK_MODEL_EXAMPLES=200`
(say) makes it a random soak that shrinks. 1C's clock may be corrected forward by any amount and back by less than
the overlap (10 min): a clock set back further between two runs stamps changes before the cursor's overlap, which no
cursor on 1C's stamps can see (a full refresh does).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.incremental import sync_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.schema import DOCUMENT_SLUGS
from onec.sync import local_today
from onec.warehouse import Warehouse
from tests.incremental.incremental_helpers import (
    assert_history_consistent,
    assert_same_warehouse,
    full_extract,
    new_warehouse,
)

ONE_C_ZONE = "Europe/Moscow"
CONFIGURED_ZONES = ("Europe/Moscow", "Asia/Novosibirsk", "Asia/Vladivostok", "America/La_Paz", "Atlantic/Cape_Verde")
DAYS = 20
SOAK_EXAMPLES = os.environ.get("ONEC_CLOCK_MODEL_EXAMPLES")
"""Unset in CI: a few derandomized examples (the same sequences every time); set, a soak of that many random ones."""


class IncrementalAgainstAStrangeClock(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="clock-model-"))
        self.checks = 0
        start = local_today(ONE_C_ZONE) - timedelta(days=DAYS)
        self.data = SandboxData.generate(
            seed=3, documents=160, start=start, days=DAYS, bad_records=3, timezone=ONE_C_ZONE
        )
        self.engine = SandboxEngine(self.data, SandboxConfig(max_page_size=40, short_page_rate=0.1))
        self.mutator = SandboxMutator(self.data, seed=9, clock=self.engine.now)
        self.zone = ONE_C_ZONE
        self.warehouse: Warehouse | None = None

    @initialize(zone=st.sampled_from(CONFIGURED_ZONES), offset_s=st.sampled_from([-1500, -240, 0, 200, 2400]))
    def bootstrap(self, zone: str, offset_s: int) -> None:
        self.zone = zone
        self.engine.config = replace(self.engine.config, clock_offset_s=offset_s)
        self.warehouse = new_warehouse(self.directory / "inc", zone)
        self.run()

    @contextmanager
    def client(self) -> Iterator[OneCClient]:
        configured = Settings(timezone=self.zone, data_dir=self.directory / "unused", page_size=30, rate_limit=10_000)
        with open_client(configured, engine=self.engine) as client:
            yield client

    @rule(count=st.integers(1, 10))
    def users_edit_then_a_run(self, count: int) -> None:
        self.mutator.random_changes(count)
        self.run()

    @rule(doc_type=st.sampled_from(DOCUMENT_SLUGS), days=st.sampled_from([-6, -1, 3]))
    def old_documents_change_then_a_run(self, doc_type: str, days: int) -> None:
        self.mutator.edit_document("shipment")
        self.mutator.move_document(doc_type, days, older_than=timedelta(days=10))
        self.mutator.mark_deleted(doc_type, timedelta(days=12))
        self.mutator.new_document(doc_type)
        self.mutator.change_price()
        self.run()

    @rule()
    def a_quiet_run(self) -> None:
        self.run()

    @rule(seconds=st.sampled_from([-300, -45, 30, 900, 4 * 3600]))
    def one_c_clock_is_corrected(self, seconds: int) -> None:
        config = self.engine.config
        self.engine.config = replace(config, clock_offset_s=config.clock_offset_s + seconds)

    def run(self) -> None:
        """An incremental run, then the invariants."""
        assert self.warehouse is not None
        with self.client() as client:
            sync_changes(client, self.warehouse, run_id=f"run-{self.checks}", timezone=self.zone)
        self.checks += 1
        expected = full_extract(self.client, self.data, self.directory / f"full-{self.checks}", self.zone)
        assert_same_warehouse(self.warehouse, expected, self.zone)
        assert_history_consistent(self.warehouse, self.zone)

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


IncrementalAgainstAStrangeClock.TestCase.settings = settings(
    max_examples=int(SOAK_EXAMPLES or 4),
    derandomize=SOAK_EXAMPLES is None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SOAK_EXAMPLES else []),
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_incremental_against_a_strange_clock = IncrementalAgainstAStrangeClock.TestCase
