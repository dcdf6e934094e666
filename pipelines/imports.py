"""The reverse pipeline in Dagster: job `onec_import` (one file into one base's 1C) and the sensor on every
configured base's import inbox (`main`: `data/inbox/import/`; base `<id>`: `data/bases/<id>/inbox/import/`).

Thin over `onec.push`: the op runs `push_file` with the run's shared session of its base's 1C and reports the
import's summary as metadata; a file the sensor picked up is then filed away to `processed/` or `failed/` (with the
reasons). An import that did not land completely fails the run, so it shows red in the UI. The sensor tags each run
with its base (`RUN_BASE_TAG`), so the run queue holds an import and a sync of the same base to one run at a time.
"""

from pathlib import Path

import dagster as dg

from assets.bases import RUN_BASE_TAG
from onec.config import Bases
from onec.push import PushOptions, push_file
from onec.push.inbox import IMPORT_INBOX, file_away, ready_imports
from onec.push.readers import GOODS
from onec.schema import DOCUMENT_SLUGS
from resources import OneCResource, WarehouseResource, failing_cleanly

IMPORT_JOB = "onec_import"
SENSOR = "import_inbox"


class ImportConfig(dg.Config):
    path: str
    type: str
    post: bool = False
    file_away: bool = False
    """Move the file to processed/ or failed/ afterwards (the sensor's runs do; a manual run leaves it)."""
    base: str | None = None
    """The base whose 1C receives the file (and whose warehouse keeps the import's ledger); None: the first
    configured (`main` without ONEC_BASES_FILE)."""


@dg.op(description="Import one file of documents (or goods) into 1C exactly once, then verify it by read-back.")
@failing_cleanly
def push_import(
    context: dg.OpExecutionContext, config: ImportConfig, onec: OneCResource, warehouse: WarehouseResource
) -> dg.Output[int]:
    if config.type not in (*DOCUMENT_SLUGS, GOODS):
        raise dg.Failure(f"unknown import type {config.type!r}; expected one of {', '.join((*DOCUMENT_SLUGS, GOODS))}")
    path = Path(config.path)
    try:
        with onec.client(config.base) as client:
            summary = push_file(
                path, config.type, client, warehouse.warehouse(config.base), run_id=context.run.run_id,
                options=PushOptions(post=config.post),
            )  # fmt: skip
    except Exception as error:
        if config.file_away:
            file_away(path, None, f"{type(error).__name__}: {error}")
        raise
    if config.file_away:
        file_away(path, summary)
    reasons = "\n".join(f"- {number} ({outcome}): {reason}" for number, outcome, reason in summary.reasons[:50])
    metadata = {**summary.as_metadata(), "file": path.name, "reasons": dg.MetadataValue.md(reasons or "none")}
    if not summary.complete:
        raise dg.Failure(summary.held(), metadata=metadata)
    return dg.Output(summary.landed, metadata=metadata)


@dg.job(
    name=IMPORT_JOB,
    description="Import a file of documents or goods into a base's 1C (config: path, type, post, base).",
)
def onec_import_job() -> None:
    push_import()


def build_import_inbox_sensor(job: dg.JobDefinition, bases: Bases) -> dg.SensorDefinition:
    inboxes = bases.inboxes(IMPORT_INBOX)

    @dg.sensor(name=SENSOR, job=job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
    def import_inbox() -> dg.SensorResult:
        requests = []
        for base, inbox in inboxes.items():
            for path, kind in ready_imports(inbox):
                stat = path.stat()
                config = {"path": str(path), "type": kind, "file_away": True, "base": base}
                requests.append(
                    dg.RunRequest(
                        run_key=f"{base}:{path}:{stat.st_mtime_ns}:{stat.st_size}",
                        run_config={"ops": {"push_import": {"config": config}}},
                        tags={RUN_BASE_TAG: base},
                    )
                )
        return dg.SensorResult(run_requests=requests)

    return import_inbox
