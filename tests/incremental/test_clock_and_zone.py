"""Incremental sync against a 1C whose zone or clock is not what the client is configured with (issue 12 item 3).

The sandbox acts the real thing out (contract §1): 1C stamps `modified_at` with its own clock as wall time in its
own zone, and dates its answers in GMT. The client is told another zone (`ONEC_TIMEZONE`, a copied configuration, a
moved base) or runs a clock minutes away. After every incremental run the warehouse must equal a fresh full extract
through the same client configuration, and goods_history must stay one chain per position.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.incremental import sync_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sync import local_today
from onec.warehouse import Warehouse
from tests.incremental.incremental_helpers import (
    OpenClient,
    assert_history_consistent,
    assert_same_warehouse,
    full_extract,
    new_warehouse,
)

MOSCOW = "Europe/Moscow"
VLADIVOSTOK = "Asia/Vladivostok"  # UTC+10 all year: 7 hours east of Moscow
LA_PAZ = "America/La_Paz"  # UTC−4 all year: 7 hours west of Moscow
DAYS = 40


@dataclass
class OneCAndClient:
    """A sandbox 1C in `one_c_zone` with its clock `offset_s` away from the real time, and a client configured
    with `configured_zone`."""

    data: SandboxData
    engine: SandboxEngine
    mutator: SandboxMutator
    zone: str
    client_for: OpenClient

    def incremental(self, warehouse: Warehouse, run_id: str) -> list[Any]:
        with self.client_for() as client:
            return sync_changes(client, warehouse, run_id=run_id, timezone=self.zone)

    def edit_round(self) -> None:
        """What users do between two runs: every kind of change, old documents included."""
        self.mutator.edit_document("shipment")
        self.mutator.mark_deleted("goods-receipt", timedelta(days=25))
        self.mutator.move_document("transfer", -4)
        self.mutator.new_document("adjustment-up")
        self.mutator.change_price()
        self.mutator.random_changes(12)


def one_c_and_client(tmp_path: Path, one_c_zone: str, configured_zone: str, offset_s: float = 0.0) -> OneCAndClient:
    start = local_today(one_c_zone) - timedelta(days=DAYS)
    data = SandboxData.generate(seed=11, documents=400, start=start, days=DAYS, bad_records=7, timezone=one_c_zone)
    engine = SandboxEngine(data, SandboxConfig(max_page_size=60, short_page_rate=0.1, clock_offset_s=offset_s))
    mutator = SandboxMutator(data, seed=5, clock=engine.now)
    settings = Settings(timezone=configured_zone, data_dir=tmp_path / "unused", page_size=50, rate_limit=10_000)

    @contextmanager
    def opened() -> Iterator[OneCClient]:
        with open_client(settings, engine=engine) as client:
            yield client

    return OneCAndClient(data, engine, mutator, configured_zone, opened)


CASES = {
    "zone 7 h east of 1C's": (MOSCOW, VLADIVOSTOK, 0.0),
    "zone 7 h west of 1C's": (MOSCOW, LA_PAZ, 0.0),
    "1C's clock 4 min ahead": (MOSCOW, MOSCOW, 240.0),
    "1C's clock 15 min behind": (MOSCOW, MOSCOW, -900.0),
    "zone east and 1C's clock 20 min ahead": (MOSCOW, VLADIVOSTOK, 1200.0),
}


@pytest.mark.parametrize(("one_c_zone", "configured_zone", "offset_s"), CASES.values(), ids=CASES.keys())
def test_three_rounds_of_edits_end_equal_to_a_full_extract_after_every_run(
    tmp_path: Path, one_c_zone: str, configured_zone: str, offset_s: float
) -> None:
    setup = one_c_and_client(tmp_path, one_c_zone, configured_zone, offset_s)
    warehouse = new_warehouse(tmp_path / "inc", configured_zone)
    setup.incremental(warehouse, "boot")
    for round_number in range(1, 4):
        setup.edit_round()
        setup.incremental(warehouse, f"round-{round_number}")
        expected = full_extract(setup.client_for, setup.data, tmp_path / f"full-{round_number}", configured_zone)
        assert_same_warehouse(warehouse, expected, configured_zone)
        assert_history_consistent(warehouse, configured_zone)


def test_cursors_saved_before_the_upgrade_are_not_trusted(tmp_path: Path) -> None:
    """The previous version saved each cursor as this machine's clock at its run's start: with the zone 7 h east of
    1C's, that is 7 h past every stamp 1C will write for the next 7 h. Such a cursor is not a cursor: the entity is
    read in full once, and the new cursor replaces it."""
    setup = one_c_and_client(tmp_path, MOSCOW, VLADIVOSTOK)
    warehouse = new_warehouse(tmp_path / "inc", VLADIVOSTOK)
    setup.incremental(warehouse, "boot")
    old_run_start = datetime.now(UTC).replace(microsecond=0)
    with warehouse.writer() as con:  # the table as the previous version left it
        keys = con.execute("SELECT entity, doc_type FROM sync_cursors").fetchall()
        con.execute("DROP TABLE sync_cursors")
        con.execute(
            "CREATE TABLE sync_cursors (entity VARCHAR, doc_type VARCHAR, cursor TIMESTAMPTZ, run_id VARCHAR,"
            " updated_at TIMESTAMPTZ, PRIMARY KEY (entity, doc_type))"
        )
        for entity, doc_type in keys:
            con.execute("INSERT INTO sync_cursors VALUES (?, ?, ?, 'old', now())", [entity, doc_type, old_run_start])
    warehouse.initialize()  # what every run does first
    assert warehouse.cursors() == {}
    setup.edit_round()
    results = setup.incremental(warehouse, "first-after-upgrade")
    assert all(r.window.bootstrap for r in results)
    expected = full_extract(setup.client_for, setup.data, tmp_path / "full", VLADIVOSTOK)
    assert_same_warehouse(warehouse, expected, VLADIVOSTOK)
    assert warehouse.query("SELECT DISTINCT basis FROM sync_cursors").rows() == [("1c-stamps",)]
    assert all(cursor < old_run_start for cursor in warehouse.cursors().values())  # on 1C's stamps now
    setup.edit_round()
    setup.incremental(warehouse, "second-after-upgrade")
    expected = full_extract(setup.client_for, setup.data, tmp_path / "full-2", VLADIVOSTOK)
    assert_same_warehouse(warehouse, expected, VLADIVOSTOK)
