"""The `onec_import` job and the inbox sensor: a dropped file is imported, reported as metadata and filed away."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from onec.config import Settings, load_bases
from onec.filing import REASON_SUFFIX
from onec.push.inbox import IMPORT_INBOX
from pipelines.definitions import build_definitions
from tests.push.push_helpers import document_lines, numbers, write_csv

TYPE = "goods-receipt"


def _run_sensor_and_jobs(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    sensor = defs.resolve_sensor_def("import_inbox")
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    job = defs.resolve_job_def("onec_import")
    return [
        job.execute_in_process(run_config=request.run_config, instance=instance, raise_on_error=False)
        for request in result.run_requests or []
    ]


def test_the_sensor_imports_each_dropped_file_and_files_it_away(tmp_path: Path) -> None:
    settings = Settings.from_env()
    inbox = settings.data_dir / IMPORT_INBOX / TYPE
    inbox.mkdir(parents=True)
    good_rows = document_lines(8)
    bad_rows = document_lines(3, prefix="BAD")
    bad_rows[0]["Quantity"] = "много"
    good, bad = write_csv(inbox / "good.csv", good_rows), write_csv(inbox / "bad.csv", bad_rows)
    past = time.time() - 60
    for path in (good, bad):
        os.utime(path, (past, past))
    defs = build_definitions(load_bases())
    instance = dg.DagsterInstance.ephemeral()

    runs = _run_sensor_and_jobs(defs, instance)

    assert sorted(run.success for run in runs) == [False, True]
    assert (inbox / "processed" / "good.csv").exists() and (inbox / "failed" / "bad.csv").exists()
    reason = (inbox / "failed" / ("bad.csv" + REASON_SUFFIX)).read_text("utf-8")
    assert "BAD-000000\tinvalid\t" in reason and "quantity: not a number" in reason
    succeeded = next(run for run in runs if run.success)
    output = next(e for e in succeeded.all_node_events if e.event_type_value == "STEP_OUTPUT")
    metadata = output.step_output_data.metadata
    assert metadata["created"].value == len(numbers(good_rows)) and metadata["complete"].value is True
    assert _run_sensor_and_jobs(defs, instance) == [], "filed-away files are not imported again"
