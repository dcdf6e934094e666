"""A user-facing error ends a Dagster step as a `dg.Failure` with its one line; a bug keeps its own error."""

from __future__ import annotations

import socket

import dagster as dg
import polars as pl
import pytest

from onec.config import ConfigError, load_bases
from pipelines.definitions import build_definitions
from resources import failing_cleanly
from tests.dagster_bases import day_key, instance_with_bases


def _failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    return next(event for event in result.all_events if event.is_step_failure)


@pytest.mark.parametrize(
    ("raised", "described"),
    [
        (ConfigError("ONEC_AUTH=basic needs ONEC_PASSWORD to be set"), "ONEC_AUTH=basic needs ONEC_PASSWORD"),
        (
            pl.exceptions.ComputeError(
                "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
            ),
            "the disk is full",
        ),
    ],
)
def test_a_user_facing_error_is_a_clean_failure(raised: Exception, described: str) -> None:
    @dg.asset
    @failing_cleanly
    def broken() -> None:
        raise raised

    result = dg.materialize([broken], raise_on_error=False)
    failure = _failure(result).step_failure_data.error
    assert failure is not None and failure.cls_name == "Failure"
    assert described in failure.message and "\n" not in failure.message.strip()


def test_a_bug_keeps_its_own_error() -> None:
    @dg.asset
    @failing_cleanly
    def buggy() -> None:
        raise ValueError("batch has lines whose document is not in the batch")

    with pytest.raises(ValueError, match="lines whose document"):
        dg.materialize([buggy])


def test_an_unreachable_1c_fails_the_asset_in_one_line_without_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ONEC_BASE_URL", f"http://user:s3cr3t@127.0.0.1:{port}/x?api_key=K3Y-42")
    monkeypatch.setenv("ONEC_MAX_RETRIES", "1")
    defs = build_definitions(load_bases())
    instance = instance_with_bases()
    goods = defs.resolve_assets_def("goods")
    result = dg.materialize([goods], instance=instance, partition_key=day_key("2026-01-15"), raise_on_error=False)
    failure = _failure(result).step_failure_data.error
    assert failure is not None and failure.cls_name == "Failure" and "not answering" in failure.message
    records = instance.get_records_for_run(result.run_id).records
    logged = "\n".join(dg.serialize_value(record.event_log_entry) for record in records)
    assert "s3cr3t" not in logged and "K3Y-42" not in logged
