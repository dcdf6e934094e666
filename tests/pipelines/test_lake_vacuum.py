"""The weekly vacuum of the Delta lake in Dagster: defined only with ONEC_LAKE_FORMAT=delta, scheduled after the
nightly sync, and running it deletes the files replaced longer ago than ONEC_LAKE_VACUUM_RETENTION_HOURS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from onec.config import Settings, load_bases
from onec.delta_lake import DeltaLake
from pipelines.definitions import build_definitions
from pipelines.lake_maintenance import VACUUM_JOB, VACUUM_SCHEDULE, delta_lake_vacuum_job
from resources import WarehouseResource
from tests.delta_workload import TABLE, data_files, read_files, three_versions_of_one_day


def test_the_vacuum_exists_only_for_the_delta_lake_and_runs_weekly_after_the_night() -> None:
    default = build_definitions(load_bases())
    assert VACUUM_JOB not in {job.name for job in default.jobs or ()}
    delta = build_definitions(load_bases({"ONEC_LAKE_FORMAT": "delta", "ONEC_TIMEZONE": "Asia/Novosibirsk"}))
    assert VACUUM_JOB in {job.name for job in delta.jobs or ()}
    (schedule,) = [s for s in delta.schedules or () if s.name == VACUUM_SCHEDULE]
    assert isinstance(schedule, dg.ScheduleDefinition)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 4 * * 0", "Asia/Novosibirsk")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_running_it_deletes_the_replaced_files_past_the_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONEC_LAKE_FORMAT", "delta")
    monkeypatch.setenv("ONEC_LAKE_VACUUM_RETENTION_HOURS", "1")
    lake = DeltaLake(str(tmp_path / "delta"))
    three_versions_of_one_day(lake, dt.date(2025, 3, 1), dt.date(2025, 3, 2))
    resources = {"warehouse": WarehouseResource.from_settings(Settings.from_env())}

    kept = delta_lake_vacuum_job.execute_in_process(resources=resources)
    assert kept.success and kept.output_for_node("vacuum_delta_lake") == 0, "files replaced just now are kept"
    assert len(data_files(lake)) == 4

    monkeypatch.setenv("ONEC_LAKE_VACUUM_RETENTION_HOURS", "0")
    resources = {"warehouse": WarehouseResource.from_settings(Settings.from_env())}
    done = delta_lake_vacuum_job.execute_in_process(resources=resources)
    assert done.success
    (output,) = [e for e in done.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.step_output_data.metadata
    assert (metadata["files_expired"].value, metadata[f"files_expired_{TABLE}"].value) == (2, 2)
    assert metadata["files_current"].value == 2
    assert data_files(lake) == read_files(lake)


def test_without_the_delta_lake_it_fails_saying_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path))
    resources = {"warehouse": WarehouseResource.from_settings(Settings.from_env())}
    result = delta_lake_vacuum_job.execute_in_process(resources=resources, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_node_events if e.is_failure]
    assert "set ONEC_LAKE_FORMAT=delta" in str(failure.step_failure_data.error)
