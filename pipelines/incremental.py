"""The incremental job, its schedule, and the webhook sensor that turns queued 1C events into runs.

Scheduling decision: incremental runs every 15 minutes (`onec_incremental`, off by default like every schedule
here), and the existing `onec_nightly` stays the periodic full refresh (goods snapshot + the last days' documents
replaced wholesale), which also corrects anything incremental cannot see, such as a document 1C really deleted
instead of marking it. Webhooks only make changes arrive sooner; the schedule is the safety net if a delivery is lost.

Each base has its own receiver and queue (`onec.webhooks.queue.queue_path`); the one sensor reads every configured
base's queue. Per base it coalesces: one run for all events pending at a tick, limited to the entities they touch,
and no new run of that base while one is in flight (events arriving meanwhile wait for the next). Events are marked
done only once their run succeeded; a failed or cancelled run puts them back, and so does a claimed batch whose run
never appeared.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.bases import register_bases
from assets.incremental import INCREMENTAL_SYNC, incremental_run_config
from onec.config import Bases
from onec.webhooks.queue import EventQueue, queue_path
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


def build_webhook_sensor(job: dg.UnresolvedAssetJobDefinition, bases: Bases) -> dg.SensorDefinition:
    """One sensor over every configured base's queue; a base whose receiver never ran has no queue and is passed."""
    queues = {base: queue_path(bases.settings.data_dir, base) for base in bases.ids}

    @dg.sensor(
        name="onec_webhooks",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Runs {INCREMENTAL_JOB} of a base for the entities that webhook events from its 1C touched (each base's "
            f"receiver queues into its own folder: {', '.join(str(path) for path in queues.values())})."
        ),
    )
    def onec_webhooks(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        requests, skipped = [], []
        for base, path in queues.items():
            outcome = _base_request(context, EventQueue(path), base) if path.exists() else "no webhook queue yet"
            if isinstance(outcome, dg.RunRequest):
                requests.append(outcome)
            else:
                skipped.append(f"{base}: {outcome}" if len(queues) > 1 else outcome)
        if not requests:
            return dg.SkipReason("; ".join(skipped))
        register_bases(context.instance, [request.partition_key for request in requests if request.partition_key])
        return dg.SensorResult(run_requests=requests)

    return onec_webhooks


def _base_request(context: dg.SensorEvaluationContext, queue: EventQueue, base: str) -> dg.RunRequest | str:
    """The run of base `base` for its pending events (claimed by a new batch), or why there is none."""
    waiting = settle_batches(queue, context.instance)
    if waiting:
        return f"waiting for the run of webhook batch {waiting[0]}"
    events = queue.pending()
    if not events:
        return "no pending webhook events"
    batch = uuid.uuid4().hex
    queue.claim(batch, [event.id for event in events])
    entities = list(affected_entities(events))
    context.log.info(f"base {base}: {len(events)} webhook events → one run for {', '.join(entities)} (batch {batch})")
    return dg.RunRequest(
        run_key=batch, partition_key=base, run_config=incremental_run_config(entities), tags={BATCH_TAG: batch}
    )


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
