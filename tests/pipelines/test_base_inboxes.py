"""Every base has its own inboxes: a file dropped for one base reaches that base's 1C or warehouse, and no other.

Two bases, each its own sandbox 1C on 127.0.0.1: the sensors scan both bases' inboxes, each run request names its
base (config and the `onec/base` tag the run queue limits by), and the runs talk to that base only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets.bases import RUN_BASE_TAG
from onec.config import DEFAULT_BASE, Settings, load_bases
from onec.exchange_files import INBOX_DIR
from onec.push.inbox import IMPORT_INBOX
from onec.sandbox.engine import SandboxEngine
from onec.warehouse import DATABASE_FILE, Warehouse
from pipelines.definitions import build_definitions
from tests.dagster_bases import served_bases
from tests.push.push_helpers import document_lines, fresh_data, numbers, write_csv
from tests.sources.file_helpers import shipments_csv

TYPE = "goods-receipt"
NORTH, SOUTH = "north", "south"


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, SandboxEngine]]:
    """Bases `north` and `south` in ONEC_BASES_FILE, each its own sandbox 1C served on 127.0.0.1."""
    engines = {NORTH: SandboxEngine(fresh_data()), SOUTH: SandboxEngine(fresh_data())}
    with served_bases(engines, tmp_path, monkeypatch):
        yield engines


def _inbox(base: str, inbox: Path) -> Path:
    """Where the README says a base's inbox is: in its own folder `bases/<id>/` of the data directory."""
    return Settings.from_env().data_dir / "bases" / base / inbox


def _settled(path: Path) -> Path:
    """Old enough for the sensors (a file modified in the last seconds may still be being copied in)."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def _tick(defs: dg.Definitions, sensor: str, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    result = defs.resolve_sensor_def(sensor).evaluate_tick(dg.build_sensor_context(instance=instance))
    return list(result.run_requests or [])


def _run(defs: dg.Definitions, job: str, request: dg.RunRequest, instance: dg.DagsterInstance) -> bool:
    run_config = request.run_config
    result = defs.resolve_job_def(job).execute_in_process(
        run_config=run_config, instance=instance, raise_on_error=False
    )
    return result.success


def _op_config(request: dg.RunRequest) -> dict[str, object]:
    ops: dict[str, dict[str, dict[str, object]]] = request.run_config["ops"]
    return next(iter(ops.values()))["config"]


def test_a_file_in_one_bases_import_inbox_is_pushed_into_that_bases_1c_only(
    sandboxes: dict[str, SandboxEngine],
) -> None:
    rows = document_lines(6)
    inbox = _inbox(SOUTH, IMPORT_INBOX / TYPE)
    inbox.mkdir(parents=True)
    _settled(write_csv(inbox / "receipts.csv", rows))
    defs, instance = build_definitions(load_bases()), dg.DagsterInstance.ephemeral()

    requests = _tick(defs, "import_inbox", instance)

    assert [(_op_config(r)["base"], r.tags.get(RUN_BASE_TAG)) for r in requests] == [(SOUTH, SOUTH)]
    assert _run(defs, "onec_import", requests[0], instance)
    counts = sandboxes[SOUTH].data.count_documents_by_number(TYPE)
    assert {number: counts[number] for number in numbers(rows)} == dict.fromkeys(numbers(rows), 1)
    assert sandboxes[NORTH].stats.snapshot()["requests"] == 0, "the other base's 1C was contacted"
    assert not sandboxes[NORTH].data.count_documents_by_number(TYPE).keys() & numbers(rows)
    assert (inbox / "processed" / "receipts.csv").exists() and not (inbox / "receipts.csv").exists()
    assert not (_inbox(NORTH, Path()) / DATABASE_FILE).exists(), "the import's ledger went to the other warehouse"
    assert _tick(defs, "import_inbox", instance) == [], "a filed-away file is not imported again"


def test_the_same_file_name_in_two_bases_inboxes_is_two_runs(sandboxes: dict[str, SandboxEngine]) -> None:
    for base in (NORTH, SOUTH):
        imports, exchange = _inbox(base, IMPORT_INBOX / TYPE), _inbox(base, INBOX_DIR)
        imports.mkdir(parents=True)
        exchange.mkdir(parents=True)
        _settled(write_csv(imports / "same.csv", document_lines(2)))
        _settled(shipments_csv(exchange / "shipment-same.csv", [("S-001", "2026-02-03")]))
    defs, instance = build_definitions(load_bases()), dg.DagsterInstance.ephemeral()

    for sensor in ("import_inbox", "exchange_inbox"):
        requests = _tick(defs, sensor, instance)
        assert sorted((_op_config(r)["base"], r.tags[RUN_BASE_TAG]) for r in requests) == [
            (NORTH, NORTH),
            (SOUTH, SOUTH),
        ]
        assert len({r.run_key for r in requests}) == 2, f"{sensor}: one run key for two bases' files"


def test_an_exchange_file_in_one_bases_inbox_lands_in_that_bases_warehouse_only(
    sandboxes: dict[str, SandboxEngine],
) -> None:
    inbox = _inbox(SOUTH, INBOX_DIR)
    inbox.mkdir(parents=True)
    held = [(f"S-{n:03d}", f"2026-02-{1 + n % 27:02d}") for n in range(5)]
    _settled(shipments_csv(inbox / "shipment-feb.csv", held))
    bases = load_bases()
    defs, instance = build_definitions(bases), dg.DagsterInstance.ephemeral()

    requests = _tick(defs, "exchange_inbox", instance)

    assert [(_op_config(r)["base"], r.tags.get(RUN_BASE_TAG)) for r in requests] == [(SOUTH, SOUTH)]
    assert _run(defs, "load_exchange_files", requests[0], instance)
    data_dir = bases.settings.data_dir
    south, north = (Warehouse(data_dir, bases.base(b).timezone, base=b) for b in (SOUTH, NORTH))
    assert set(south.query("SELECT number FROM documents")["number"].to_list()) == {n for n, _ in held}
    assert not north.database.exists(), "the other base's warehouse was written"
    assert (inbox / "processed" / "shipment-feb.csv").exists()
    assert sandboxes[NORTH].stats.snapshot()["requests"] == sandboxes[SOUTH].stats.snapshot()["requests"] == 0


def test_an_import_for_a_base_nobody_configured_fails_naming_the_configured_ones(
    sandboxes: dict[str, SandboxEngine], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "receipts.csv", document_lines(2))
    defs = build_definitions(load_bases())
    config = {"path": str(path), "type": TYPE, "base": "west"}

    result = defs.resolve_job_def("onec_import").execute_in_process(
        run_config={"ops": {"push_import": {"config": config}}}, raise_on_error=False
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error.message if failure.step_failure_data.error else "")
    assert "base 'west' is not configured" in message and "configured: north, south" in message
    assert all(engine.stats.snapshot()["requests"] == 0 for engine in sandboxes.values())


def test_without_a_bases_file_the_one_base_keeps_the_data_inbox_folders() -> None:
    data_dir = Settings.from_env().data_dir
    imports, exchange = data_dir / "inbox" / "import" / TYPE, data_dir / "inbox" / "exchange"
    for inbox in (imports, exchange):
        inbox.mkdir(parents=True)
    _settled(write_csv(imports / "receipts.csv", document_lines(1)))
    _settled(shipments_csv(exchange / "shipment-feb.csv", [("S-001", "2026-02-03")]))
    defs, instance = build_definitions(load_bases()), dg.DagsterInstance.ephemeral()

    for sensor in ("import_inbox", "exchange_inbox"):
        requests = _tick(defs, sensor, instance)
        assert [(_op_config(r)["base"], r.tags.get(RUN_BASE_TAG)) for r in requests] == [(DEFAULT_BASE, DEFAULT_BASE)]
