"""The queue's life cycle, routing of events to entities, the sensor's coalescing and its done-only-after-success
rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from onec.config import load_bases
from onec.webhooks.queue import QUEUE_FILE, EventQueue, QueuedEvent
from onec.webhooks.routing import affected_entities
from pipelines.definitions import build_definitions
from pipelines.incremental import BATCH_TAG, settle_batches
from tests.dagster_bases import sensor_tick

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def queued(event: str, **data: object) -> QueuedEvent:
    return QueuedEvent(f"{event}-{data}", event, NOW, dict(data))


def record(queue: EventQueue, event_id: str, event: str = "document.posted", **data: object) -> bool:
    return queue.record(event_id, event, NOW, dict(data), b"{}")


def test_routing_names_the_entities_a_burst_touches() -> None:
    burst = [queued("document.created", type="transfer"), queued("document.posted", type="shipment"),
             queued("goods.updated", sku="X")]  # fmt: skip
    assert affected_entities(burst) == ("goods", "shipment", "transfer")
    assert affected_entities([queued("document.created", type="transfer")]) == ("transfer",)
    assert len(affected_entities([queued("document.posted", type="???")])) == 7  # unknown: everything


def test_queue_life_cycle_and_replays(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "q.sqlite3")
    assert record(queue, "a") and record(queue, "b") and not record(queue, "a")
    assert queue.claim("batch-1", ["a", "b"]) == 2 and queue.claim("batch-2", ["a"]) == 0
    assert set(queue.batches_in_flight()) == {"batch-1"}
    assert queue.release("batch-1") == 2 and queue.counts()["pending"] == 2
    queue.claim("batch-3", ["a", "b"])
    assert queue.finish("batch-3") == 2
    assert not record(EventQueue(tmp_path / "q.sqlite3"), "b")  # replays are caught after a restart too
    assert queue.counts() == {"pending": 0, "claimed": 0, "done": 2}


@pytest.fixture
def defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path / "data"))
    return build_definitions(load_bases())


def test_a_failed_run_puts_its_events_back_and_a_burst_becomes_one_run(defs: dg.Definitions, tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "data" / QUEUE_FILE)
    for number in range(30):
        record(queue, f"e{number}", type="shipment" if number % 2 else "inventory")
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("onec_webhooks")
    [request] = sensor_tick(sensor, instance, defs).run_requests or []
    assert request.run_config["ops"]["incremental_sync"]["config"]["entities"] == ["goods", "shipment", "inventory"]
    record(queue, "late", type="transfer")
    waiting = sensor_tick(sensor, instance, defs)
    assert not waiting.run_requests  # one run in flight at a time; the late event waits
    broken = {"ops": {"incremental_sync": {"config": {"entities": ["no-such-entity"]}}}}
    job = defs.resolve_job_def("onec_incremental")
    result = job.execute_in_process(
        run_config=broken, tags=request.tags, partition_key=request.partition_key, instance=instance,
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    assert settle_batches(queue, instance) == []
    assert queue.counts() == {"pending": 31, "claimed": 0, "done": 0}


def test_a_batch_whose_run_never_appeared_is_released(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "q.sqlite3")
    record(queue, "a")
    queue.claim("ghost", ["a"])
    instance = dg.DagsterInstance.ephemeral()
    assert settle_batches(queue, instance) == ["ghost"]  # recent: its run may still be starting
    with queue._connection() as con:  # claimed long ago
        con.execute("UPDATE webhook_events SET claimed_at = ?", ((NOW - timedelta(days=1)).isoformat(),))
    assert settle_batches(queue, instance) == [] and queue.counts()["pending"] == 1
    assert BATCH_TAG == "onec/webhook_batch"
