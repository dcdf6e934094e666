"""The inbox sensor and its load job: each dropped file is landed and moved to processed/ or failed/ with why."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg

from onec.config import Bases, Settings
from onec.errors import UserFacingError
from onec.exchange_files import INBOX_DIR, inbox_groups, load_and_file_away, load_files
from onec.warehouse import Warehouse
from pipelines.exchange_inbox import build_exchange_inbox_sensor, load_exchange_files_job
from resources import WarehouseResource
from tests.sources.file_helpers import goods_agree_with_history, goods_csv, offers_of_one, shipments_csv

ZONE = "Europe/Moscow"
SAMPLES = Path("/work/shared/samples/commerceml/cml207_1c_export_dobromyslov")


def _drop(inbox: Path, source: Path, name: str | None = None) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    shutil.copy(source, target)
    past = time.time() - 60
    os.utime(target, (past, past))
    return target


def test_sensor_groups_then_job_files_away(tmp_path: Path) -> None:
    inbox = tmp_path / INBOX_DIR
    _drop(inbox, SAMPLES / "import0_1.xml")
    assert inbox_groups(inbox) == []  # a catalog waits for its offers
    _drop(inbox, SAMPLES / "offers0_1.xml")
    broken = inbox / "goods.csv"
    broken.write_bytes(b"SKU,Name,Quantity\nP1,One,1\n")
    os.utime(broken, (time.time() - 60, time.time() - 60))
    fresh = inbox / "fresh.csv"
    fresh.write_bytes(b"SKU,Name,Quantity,Warehouse\nP1,One,1,wh\n")  # still being copied: waits
    os.utime(fresh, (time.time() + 600, time.time() + 600))  # "just written", however slow this machine is

    instance = dg.DagsterInstance.ephemeral()
    sensor = build_exchange_inbox_sensor(load_exchange_files_job, Bases.single(Settings(data_dir=tmp_path)))
    result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    groups = [r.run_config["ops"]["load_exchange_group"]["config"]["paths"] for r in result.run_requests or []]
    assert [[Path(p).name for p in g] for g in groups] == [["goods.csv"], ["import0_1.xml", "offers0_1.xml"]]

    resources = {"warehouse": WarehouseResource.from_settings(Settings(data_dir=tmp_path / "data", timezone=ZONE))}
    outcomes = [
        load_exchange_files_job.execute_in_process(
            run_config=request.run_config, resources=resources, instance=instance, raise_on_error=False
        ).success
        for request in result.run_requests or []
    ]
    assert outcomes == [False, True]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["import0_1.xml", "offers0_1.xml"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["goods.csv", "goods.csv.reason.txt"]
    reason = (inbox / "failed" / "goods.csv.reason.txt").read_text("utf-8")
    assert "no Warehouse (or Склад) column" in reason
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["fresh.csv"]


def test_sensor_names_a_package_waiting_for_its_parts(tmp_path: Path) -> None:
    inbox = tmp_path / INBOX_DIR
    _drop(inbox, SAMPLES / "import0_1.xml")
    sensor = build_exchange_inbox_sensor(load_exchange_files_job, Bases.single(Settings(data_dir=tmp_path)))
    result = sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    assert result.skip_reason is not None
    message = result.skip_reason.skip_message or ""
    assert message.startswith("waiting for prices and rests of package import0_1.xml since "), message
    assert "ONEC_CML_WAIT_SECONDS" in message


def test_inbox_files_replace_only_what_they_declare_complete(tmp_path: Path) -> None:
    """As the inbox job loads them: a shipments file with a mistyped year deletes no other shipment, a lone offers
    file merges into the snapshot, and a goods file of one row is refused (moved to failed/ saying how to force)."""
    warehouse = Warehouse(tmp_path / "data", ZONE)
    warehouse.initialize()
    load_files([SAMPLES / "import0_1.xml", SAMPLES / "offers0_1.xml"], warehouse, timezone=ZONE, run_id="set")
    held = [(f"S-{n:03d}", f"2026-01-{1 + n % 28:02d}") for n in range(100)]
    load_files([shipments_csv(tmp_path / "shipment-jan.csv", held)], warehouse, timezone=ZONE, run_id="jan")
    inbox = tmp_path / INBOX_DIR
    drops = {
        "shipment-fix.csv": shipments_csv(tmp_path / "fix.csv", [("S-900", "2026-01-10"), ("S-901", "0002-06-01")]),
        "offers.xml": offers_of_one(tmp_path / "offers.xml", quantity="300"),
        "goods.csv": goods_csv(tmp_path / "goods.csv", [("PM-421-WP", "7")]),
    }
    for name, source in drops.items():
        _drop(inbox, source, name)
    groups = inbox_groups(inbox)
    assert sorted(p.name for group in groups for p in group) == sorted(drops)
    outcomes = {}
    for group in groups:
        try:
            load_and_file_away(group, warehouse, Settings(timezone=ZONE), run_id="inbox")
            outcomes[group[0].name] = "processed"
        except UserFacingError:
            outcomes[group[0].name] = "failed"
    assert outcomes == {"shipment-fix.csv": "processed", "offers.xml": "processed", "goods.csv": "failed"}
    numbers = set(warehouse.query("SELECT number FROM documents")["number"].to_list())
    assert {number for number, _ in held} | {"S-900"} <= numbers
    assert len(goods_agree_with_history(warehouse)) == 132
    moscow = warehouse.query("SELECT quantity FROM goods WHERE sku = 'PM-421-WP' AND warehouse = 'Москва'").item()
    assert moscow == 300
    reason = (inbox / "failed" / "goods.csv.reason.txt").read_text("utf-8")
    assert "ShrinkRefused" in reason and "would remove" in reason and "ONEC_FORCE_REPLACE" in reason
