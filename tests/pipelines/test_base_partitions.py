"""Several bases in one code location: the base dimension follows the configuration, and a run of one base's
partition talks to that base's 1C and lands in that base's warehouse only."""

from __future__ import annotations

import contextvars
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from onec.config import load_bases
from onec.connect import embedded_sandbox_data, sandbox_window
from onec.schema import DOCUMENT_TYPES
from onec.warehouse import Warehouse
from pipelines.definitions import build_definitions
from tests.dagster_bases import day_key, instance_with_bases, sensor_tick

TWO_SANDBOXES = '[[base]]\nid = "north"\nsandbox_seed = 1\n\n[[base]]\nid = "south"\nsandbox_seed = 2\n'


@pytest.fixture
def two_bases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bases_file = tmp_path / "bases.toml"
    bases_file.write_text(TWO_SANDBOXES, "utf-8")
    monkeypatch.setenv("ONEC_BASES_FILE", str(bases_file))
    monkeypatch.setenv("ONEC_SANDBOX_DOCUMENTS", "200")
    return tmp_path


def test_the_bases_sensor_adds_each_configured_base_once_and_sets_the_onec_api_pool(two_bases: Path) -> None:
    contextvars.copy_context().run(_two_ticks)  # instance_for_test leaves its storage current (tests/dagster_bases.py)


def _two_ticks() -> None:
    defs = build_definitions(load_bases())
    sensor = defs.resolve_sensor_def("onec_bases")
    with dg.instance_for_test() as instance:
        first = sensor_tick(sensor, instance, defs)
        assert instance.get_dynamic_partitions("onec_bases") == ["north", "south"]
        assert instance.event_log_storage.get_concurrency_info("onec_api").slot_count == 4  # ONEC_MAX_CONCURRENT_RUNS
        again = sensor_tick(sensor, instance, defs)
        assert instance.get_dynamic_partitions("onec_bases") == ["north", "south"]
    assert "added bases north, south" in str(first.skip_message) and "no new base" in str(again.skip_message)


def test_a_run_of_one_base_lands_that_base_only(two_bases: Path) -> None:
    bases = load_bases()
    defs = build_definitions(bases)
    settings = bases.base("south")
    day = sandbox_window(settings.timezone)[0] + timedelta(days=5)
    instance = instance_with_bases("north", "south")
    job = defs.resolve_job_def("onec_sync")
    assert job.execute_in_process(partition_key=day_key(day, "south"), instance=instance).success

    south = Warehouse(settings.data_dir, settings.timezone, base="south")
    data = embedded_sandbox_data(settings)
    held = sum(len(data.documents_holdings(t.slug, day, day + timedelta(days=1))) for t in DOCUMENT_TYPES)
    assert south.query("SELECT count(*) FROM documents").item() == held > 0
    assert south.query("SELECT count(*) FROM goods").item() == len(data.goods_holdings())
    assert not Warehouse(settings.data_dir, settings.timezone, base="north").database.exists()
    assert sorted(p.name for p in (settings.data_dir / "lake").iterdir() if p.is_dir()) == ["base=south"]
