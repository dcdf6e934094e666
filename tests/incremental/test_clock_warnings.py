"""When 1C's stamps, its clock and `ONEC_TIMEZONE` disagree, runs say so loudly (CLI, Dagster) and lose nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import dagster as dg
import httpx
import pytest

from assets.incremental import incremental_sync
from onec.cli import main
from onec.config import Settings
from onec.connect import open_client
from onec.http.server_clock import ServerClock, parse_http_date
from onec.incremental import next_cursor, run_warnings
from onec.sandbox.mutations import SandboxMutator
from onec.sandbox.server import running_server
from resources import OneCResource, WarehouseResource
from tests.dagster_bases import instance_with_bases
from tests.incremental.incremental_helpers import assert_same_warehouse, full_extract, new_warehouse
from tests.incremental.test_clock_and_zone import LA_PAZ, MOSCOW, one_c_and_client


def test_a_zone_west_of_1cs_warns_in_every_run_with_changes_and_loses_nothing(tmp_path: Path) -> None:
    setup = one_c_and_client(tmp_path, MOSCOW, LA_PAZ)
    warehouse = new_warehouse(tmp_path / "inc", LA_PAZ)
    setup.incremental(warehouse, "boot")
    for round_number in range(1, 3):
        setup.edit_round()
        results = setup.incremental(warehouse, f"round-{round_number}")
        warned = {r.entity for r in results if r.warnings}
        assert "goods" in warned and "shipment" in warned  # every round edits a shipment and a price
        goods = next(r for r in results if r.entity == "goods")
        assert goods.clock.future_by > timedelta(hours=6, minutes=59)
        (warning,) = goods.warnings
        assert f"ONEC_TIMEZONE={LA_PAZ}" in warning and "about 7 h" in warning and "west" in warning
        assert goods.cursor is not None and goods.cursor <= datetime.now(UTC)  # held at 1C's clock
        expected = full_extract(setup.client_for, setup.data, tmp_path / f"full-{round_number}", LA_PAZ)
        assert_same_warehouse(warehouse, expected, LA_PAZ)


def test_a_1c_clock_minutes_away_is_reported_but_its_stamps_are_not_called_future(tmp_path: Path) -> None:
    """1C's stamps run 8 minutes ahead of this machine, and so does its Date header: measured against 1C's own
    clock they are not in the future, and only the skew is worth a line."""
    setup = one_c_and_client(tmp_path, MOSCOW, MOSCOW, offset_s=480)
    warehouse = new_warehouse(tmp_path / "inc", MOSCOW)
    setup.incremental(warehouse, "boot")
    setup.edit_round()
    results = setup.incremental(warehouse, "round")
    assert not any(r.warnings for r in results)
    assert all(r.clock.skew is not None and abs(r.clock.skew - timedelta(minutes=8)) < timedelta(seconds=3)
               for r in results)  # fmt: skip
    (skew_line,) = run_warnings(results)
    assert re.search(r"is 0:0(7:5\d|8:0\d) ahead of this machine's", skew_line)  # the Date header is whole seconds


def test_no_warning_when_zone_and_clocks_agree(tmp_path: Path) -> None:
    setup = one_c_and_client(tmp_path, MOSCOW, MOSCOW)
    warehouse = new_warehouse(tmp_path / "inc", MOSCOW)
    setup.incremental(warehouse, "boot")
    setup.edit_round()
    assert run_warnings(setup.incremental(warehouse, "round")) == []


def test_the_command_line_and_dagster_print_the_warning_and_exit_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = one_c_and_client(tmp_path, MOSCOW, LA_PAZ)
    data_dir = tmp_path / "cli"
    with running_server(setup.engine) as base_url:
        for name, value in {"ONEC_BASE_URL": base_url, "ONEC_DATA_DIR": str(data_dir), "ONEC_TIMEZONE": LA_PAZ,
                            "ONEC_PAGE_SIZE": "50", "ONEC_RATE_LIMIT": "10000"}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        assert main(["sync", "--incremental", "--types", "shipment"]) == 0
        setup.edit_round()
        capsys.readouterr()
        assert main(["sync", "--incremental", "--types", "shipment"]) == 0
        lines = capsys.readouterr().err.splitlines()
        assert any(line.startswith("WARNING goods: ") and "west" in line for line in lines), lines
        assert any(line.startswith("WARNING shipment: ") for line in lines), lines

        setup.edit_round()
        environment = Settings.from_env()  # the CLI's, as set above
        resources = {
            "onec": OneCResource.from_settings(environment),
            "warehouse": WarehouseResource.from_settings(environment),
        }
        result = dg.materialize(
            [incremental_sync], resources=resources, partition_key="main", instance=instance_with_bases()
        )
    assert result.success
    metadata = result.asset_materializations_for_node("incremental_sync")[0].metadata
    warnings = metadata["warning_count"].value
    assert isinstance(warnings, int) and warnings >= 2
    assert "WARNING goods: " in str(metadata["warnings"].value)
    settings = Settings(timezone=LA_PAZ, page_size=50, rate_limit=10_000)
    expected = full_extract(lambda: open_client(settings, engine=setup.engine), setup.data, tmp_path / "full", LA_PAZ)
    assert_same_warehouse(new_warehouse(data_dir, LA_PAZ), expected, LA_PAZ)


def test_the_sandbox_dates_its_answers_with_its_own_clock_in_gmt(tmp_path: Path) -> None:
    """Like any HTTP server (RFC 9110 §6.6.1): one `Date` header, GMT, from 1C's clock, whatever 1C's zone; and 1C
    stamps a change with the same clock as local wall time in its zone (§1)."""
    setup = one_c_and_client(tmp_path, MOSCOW, LA_PAZ, offset_s=-900)
    with running_server(setup.engine) as base_url, httpx.Client() as http:
        answer = http.get(f"{base_url}/api/version")
    (header,) = answer.headers.get_list("date")
    assert header.endswith(" GMT")
    behind = datetime.now(UTC) - parsedate_to_datetime(header)
    assert timedelta(minutes=15) - timedelta(seconds=3) < behind < timedelta(minutes=15) + timedelta(seconds=3)
    event = SandboxMutator(setup.data, seed=1, clock=setup.engine.now).change_price()
    stamped = event.occurred_at
    assert stamped.utcoffset() == timedelta(hours=3)  # Moscow wall time, whatever the client is told
    assert abs(datetime.now(UTC) - timedelta(minutes=15) - stamped) < timedelta(seconds=3)


def test_next_cursor_follows_1cs_stamps_and_never_passes_its_clock_or_moves_back() -> None:
    one_c_now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    second = timedelta(seconds=1)
    assert next_cursor(None, None, one_c_now, second) is None  # nothing seen, nothing to follow
    assert next_cursor(one_c_now, None, one_c_now, second) == one_c_now  # a quiet run keeps its cursor
    newest = one_c_now - timedelta(hours=7)  # a zone east of 1C's reads its stamps 7 h early: still its stamps
    assert next_cursor(None, newest, one_c_now, second) == newest - second
    assert next_cursor(None, one_c_now + timedelta(hours=7), one_c_now, second) == one_c_now - second
    assert next_cursor(one_c_now, newest, one_c_now, second) == one_c_now
    quick, slow = timedelta(milliseconds=20), timedelta(milliseconds=300)  # whole seconds, as 1C stamps
    assert next_cursor(None, newest, one_c_now, quick) == next_cursor(None, newest, one_c_now, slow) == newest - second


def test_server_clock_keeps_the_newest_date_and_ignores_garbage() -> None:
    local = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    clock = ServerClock(now=lambda: local)
    assert clock.latest() is None
    for header in (None, "", "yesterday", "Sun, 01 Mar 2026 12:10:00 GMT", "Sun, 01 Mar 2026 12:05:00 GMT"):
        clock.observe(header)
    reading = clock.latest()
    assert reading is not None and reading.server == datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    assert reading.skew == timedelta(minutes=9, seconds=30)
    assert parse_http_date("Sun, 01 Mar 2026 15:00:00 +0300") == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
