"""Exchange files dropped into a base's exchange inbox (`main`: `data/inbox/exchange/`; base `<id>`:
`data/bases/<id>/inbox/exchange/`): a sensor starts one load run per file (per CommerceML package; a package still
waiting for its parts is named in the tick's log and skip reason) into that base's warehouse.

Thin over `onec.exchange_files`: the sensor asks it which groups are ready in each configured base's inbox, the op
loads a group into its base's warehouse and files it away to `processed/` or `failed/` (with a `.reason.txt`). The
run key is the base and the group's names, sizes and times, so a file dropped again under the same name is loaded
again, a tick that sees the same files twice starts one run, and the same file dropped for two bases is two runs.
Each run is tagged with its base (`RUN_BASE_TAG`): the run queue holds it and the base's syncs to one at a time.
"""

from pathlib import Path

import dagster as dg

from assets.bases import RUN_BASE_TAG
from onec.config import Bases
from onec.exchange_files import INBOX_DIR, load_and_file_away, scan_inbox
from resources import WarehouseResource, failing_cleanly

LOAD_JOB = "load_exchange_files"
SENSOR = "exchange_inbox"


class LoadFilesConfig(dg.Config):
    paths: list[str]
    base: str | None = None
    """The base whose warehouse the files land in; None: the first configured (`main` without ONEC_BASES_FILE)."""


@dg.op(description="Land one group of exchange files, then move them to processed/ or failed/ (with the reason).")
@failing_cleanly
def load_exchange_group(
    context: dg.OpExecutionContext, config: LoadFilesConfig, warehouse: WarehouseResource
) -> dg.Output[int]:
    paths = [Path(p) for p in config.paths]
    warehouse_of_base, settings = warehouse.warehouse(config.base), warehouse.base_settings(config.base)
    results = load_and_file_away(paths, warehouse_of_base, settings, run_id=context.run.run_id)
    for result in results:
        context.log.info(
            f"{result.doc_type or result.entity}: {result.rows} rows, {result.lines} lines, {result.rejected} rejected,"
            f" noted {result.notes or 'none'}"
        )
    return dg.Output(
        sum(r.rows for r in results),
        metadata={
            "files": [p.name for p in paths],
            "rejected": sum(r.rejected for r in results),
            "noted": sum(r.noted for r in results),
        },
    )


@dg.job(name=LOAD_JOB, description="Load exchange files (UDE XML, CSV export, CommerceML) dropped in the inbox.")
def load_exchange_files_job() -> None:
    load_exchange_group()


def build_exchange_inbox_sensor(job: dg.JobDefinition, bases: Bases) -> dg.SensorDefinition:
    inboxes, wait_s = bases.inboxes(INBOX_DIR), bases.settings.commerceml.wait_s

    @dg.sensor(name=SENSOR, job=job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
    def exchange_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        requests, waiting = [], []
        for base, inbox in inboxes.items():
            scan = scan_inbox(inbox, wait_s=wait_s)
            for group in scan.groups:
                key = "|".join([base, *(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in group)])
                config = {"paths": [str(p) for p in group], "base": base}
                run_config = {"ops": {"load_exchange_group": {"config": config}}}
                requests.append(dg.RunRequest(run_key=key, run_config=run_config, tags={RUN_BASE_TAG: base}))
            named = f"base {base}: " if len(inboxes) > 1 else ""
            waiting += [f"{named}{package.describe()}" for package in scan.waiting]
        for note in waiting:
            context.log.info(note)
        if not requests and waiting:
            return dg.SensorResult(skip_reason="; ".join(waiting))
        return dg.SensorResult(run_requests=requests)

    return exchange_inbox
