"""The incremental job, its schedule, and the webhook sensor that turns queued 1C events into runs.

Scheduling decision: incremental runs every 15 minutes (`onec_incremental`, off by default like every schedule
here), and the existing `onec_nightly` stays the periodic full refresh (goods snapshot + the last days' documents
replaced wholesale), which also corrects anything incremental cannot see, such as a document 1C really deleted
instead of marking it. Webhooks only make changes arrive sooner; the schedule is the safety net if a delivery is lost.

The sensor coalesces: one run for all events pending at a tick, limited to the entities they touch, and no new
run while one is in flight (events arriving meanwhile wait for the next). Events are marked done only once their
run succeeded; a failed or cancelled run puts them back, and so does a claimed batch whose run never appeared.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from assets.bases import register_bases
from assets.incremental import INCREMENTAL_SYNC, incremental_run_config
from onec.config import Bases
from onec.webhooks.queue import EventQueue
from onec.webhooks.routing import affected_entities
from pipelines.instance import configure_instance

INCREMENTAL_JOB = "onec_incremental"
BATCH_TAG = "onec/webhook_batch"
LOST_BATCH_AFTER = timedelta(minutes=15)
_FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def build_incremental_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        INCREMENTAL_JOB,
        selection=dg.AssetSelection.assets(INCREMENTAL_SYNC),
        description="Only what a base's 1C changed since each entity's cursor, merged by key.",
    )


def build_incremental_schedule(job: dg.UnresolvedAssetJobDefinition, bases: Bases) -> dg.ScheduleDefinition:
    base_ids = bases.ids

    @dg.schedule(
        name="onec_incremental",
        cron_schedule="*/15 * * * *",
        execution_timezone=bases.settings.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Incremental sync of every entity, one run per base, every 15 minutes (onec_nightly stays the "
        "full refresh).",
    )
    def onec_incremental(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        configure_instance(context.instance, bases)
        return [dg.RunRequest(partition_key=base) for base in base_ids]

    return onec_incremental


def build_webhook_sensor(job: dg.UnresolvedAssetJobDefinition, queue_path: Path, base: str) -> dg.SensorDefinition:
    """The webhook receiver's queue holds one base's events (`base`, the first configured): a receiver per base is
    not built yet."""

    @dg.sensor(
        name="onec_webhooks",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Runs {INCREMENTAL_JOB} of base {base} for the entities that webhook events from 1C touched "
            f"({queue_path})."
        ),
    )
    def onec_webhooks(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        queue = EventQueue(queue_path)
        waiting = settle_batches(queue, context.instance)
        if waiting:
            return dg.SkipReason(f"waiting for the run of webhook batch {waiting[0]}")
        events = queue.pending()
        if not events:
            return dg.SkipReason("no pending webhook events")
        batch = uuid.uuid4().hex
        queue.claim(batch, [event.id for event in events])
        entities = list(affected_entities(events))
        context.log.info(f"{len(events)} webhook events → one run for {', '.join(entities)} (batch {batch})")
        register_bases(context.instance, [base])
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=batch,
                    partition_key=base,
                    run_config=incremental_run_config(entities),
                    tags={BATCH_TAG: batch},
                )
            ]
        )

    return onec_webhooks


def settle_batches(queue: EventQueue, instance: dg.DagsterInstance) -> list[str]:
    """Finish batches whose run succeeded, release those whose run failed or never appeared; returns the batches
    still waiting for their run."""
    waiting = []
    now = datetime.now(UTC)
    for batch, claimed_at in queue.batches_in_flight().items():
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: batch}), limit=1)
        if runs and runs[0].status == dg.DagsterRunStatus.SUCCESS:
            queue.finish(batch)
        elif (runs and runs[0].status in _FAILED) or (not runs and now - claimed_at > LOST_BATCH_AFTER):
            queue.release(batch)
        else:
            waiting.append(batch)
    return waiting
