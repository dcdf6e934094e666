"""The inbox sensor and its load job: each dropped file is landed and moved to processed/ or failed/ with why."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg

from onec.config import Settings
from onec.exchange_files import INBOX_DIR, inbox_groups
from pipelines.exchange_inbox import build_exchange_inbox_sensor, load_exchange_files_job
from resources import WarehouseResource

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
    sensor = build_exchange_inbox_sensor(load_exchange_files_job, Settings(data_dir=tmp_path))
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
    sensor = build_exchange_inbox_sensor(load_exchange_files_job, Settings(data_dir=tmp_path))
    result = sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    assert result.skip_reason is not None
    message = result.skip_reason.skip_message or ""
    assert message.startswith("waiting for prices and rests of package import0_1.xml since "), message
    assert "ONEC_CML_WAIT_SECONDS" in message
