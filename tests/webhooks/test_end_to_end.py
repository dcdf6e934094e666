"""End to end over real HTTP on 127.0.0.1: the sandbox 1C changes, sends signed webhooks (with re-deliveries, out
of order) to the receiver, the sensor turns the burst into one incremental run, and the changes are in the
warehouse; events are done only after that run succeeded."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from onec.cli import main
from onec.config import Secret, load_bases
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sandbox.server import running_server
from onec.sync import local_today
from onec.warehouse import Warehouse
from onec.webhooks.events import EVENTS
from onec.webhooks.queue import QUEUE_FILE, EventQueue
from onec.webhooks.receiver import ReceiverSettings, WebhookReceiver, running_receiver
from pipelines.definitions import build_definitions
from tests.dagster_bases import instance_with_bases, sensor_tick

ZONE = "Europe/Moscow"
SECRET = "whsec-e2e-секрет"
USER, PASSWORD = "обмен", "пароль"

pytestmark = pytest.mark.e2e


def test_webhooks_reach_the_warehouse_through_the_sensor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = SandboxData.generate(seed=3, documents=300, start=local_today(ZONE) - timedelta(days=40), days=40,
                                timezone=ZONE)  # fmt: skip
    faults = FaultConfig(webhook_duplicate=0.5)  # deliveries also go out shuffled
    engine = SandboxEngine(data, SandboxConfig(auth="basic", username=USER, password=PASSWORD, faults=faults, seed=1))
    zone = ZoneInfo(ZONE)
    mutator = SandboxMutator(data, seed=2, clock=lambda: datetime.now(zone) - timedelta(seconds=1))
    data_dir = tmp_path / "data"
    queue = EventQueue(data_dir / QUEUE_FILE)
    receiver = WebhookReceiver(ReceiverSettings(Secret(SECRET), ZONE), queue)
    with running_server(engine) as base_url, running_receiver(receiver) as hook_url:
        for name, value in {"ONEC_BASE_URL": base_url, "ONEC_AUTH": "basic", "ONEC_USERNAME": USER,
                            "ONEC_PASSWORD": PASSWORD, "ONEC_DATA_DIR": str(data_dir),
                            "ONEC_WEBHOOK_SECRET": SECRET}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        events_flags = [flag for event in EVENTS[:4] for flag in ("--event", event)]
        assert main(["webhooks", "register", "--url", hook_url, *events_flags]) == 0
        output = capsys.readouterr()
        assert SECRET not in output.out + output.err
        assert len(engine.webhooks.subscriptions()) == 4

        defs = build_definitions(load_bases())
        instance = instance_with_bases()
        job = defs.resolve_job_def("onec_incremental")
        assert job.execute_in_process(instance=instance, partition_key="main").success  # bootstrap: a full scan

        edited = mutator.edit_document("shipment")
        deleted = mutator.mark_deleted("goods-receipt", timedelta(days=20))
        created = mutator.new_document("transfer")
        priced = mutator.change_price()
        for change in (edited, deleted, created, priced):
            engine.webhooks.publish_change(change)
        with httpx.Client(timeout=10) as client:
            deliveries = engine.webhooks.flush(client)
        assert len(deliveries) > 4  # re-deliveries included
        assert {d.status for d in deliveries} == {200, 202}
        assert receiver.snapshot() == {"accepted": 4, "replayed": len(deliveries) - 4}

        sensor = defs.resolve_sensor_def("onec_webhooks")
        tick = sensor_tick(sensor, instance, defs)
        [request] = tick.run_requests or []
        entities = request.run_config["ops"]["incremental_sync"]["config"]["entities"]
        assert entities == ["goods", "goods-receipt", "shipment", "transfer"]
        assert queue.counts()["claimed"] == 4
        assert job.execute_in_process(
            run_config=request.run_config, tags=request.tags, partition_key=request.partition_key, instance=instance
        ).success
        after = sensor_tick(sensor, instance, defs)
        assert not after.run_requests
        assert queue.counts() == {"pending": 0, "claimed": 0, "done": 4}

    warehouse = Warehouse(data_dir, ZONE)
    shipment = data.find_by_number("shipment", edited.data["number"])
    assert shipment is not None
    lines = warehouse.query(
        "SELECT line, quantity, unit_price, total FROM document_lines WHERE doc_type = 'shipment' AND number = ?"
        " ORDER BY line",
        [edited.data["number"]],
    )
    assert lines.rows() == [(i.line, i.quantity, i.unit_price, i.total) for i in shipment.items]
    assert warehouse.query(
        "SELECT deleted FROM documents WHERE doc_type = 'goods-receipt' AND number = ?", [deleted.data["number"]]
    ).item()
    assert warehouse.query("SELECT count(*) FROM documents WHERE number = ?", [created.data["number"]]).item() == 1
    price = warehouse.query(
        "SELECT DISTINCT price FROM goods WHERE sku = ? AND snapshot_date = ?", [priced.data["sku"], local_today(ZONE)]
    )
    assert [str(p) for p in price["price"].to_list()] == [priced.data["price"] + "00"]
