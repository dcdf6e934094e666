"""Dagster test helpers for the base dimension: an instance that knows the bases, a base × day partition key."""

from __future__ import annotations

import contextvars
from datetime import date, datetime

import dagster as dg

from assets.bases import BASE_DIMENSION, DAY_DIMENSION, register_bases
from onec.config import DEFAULT_BASE


def instance_with_bases(*bases: str) -> dg.DagsterInstance:
    """An ephemeral instance whose base dimension holds `bases` (default: `main`), as the `onec_bases` sensor
    leaves it."""
    instance = dg.DagsterInstance.ephemeral()
    register_bases(instance, list(bases or (DEFAULT_BASE,)))
    return instance


def day_key(day: date | str, base: str = DEFAULT_BASE) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({BASE_DIMENSION: base, DAY_DIMENSION: str(day)})


def sensor_tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, defs: dg.Definitions
) -> dg.SensorExecutionData:
    """A sensor's tick as the daemon evaluates it: run requests of base partitions are checked against the
    instance's base dimension, which a bare `evaluate_tick` cannot see."""
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))


def schedule_requests(defs: dg.Definitions, name: str, at: datetime) -> list[dg.RunRequest]:
    """The run requests of schedule `name`'s tick at `at`, as the daemon evaluates it, on an instance of its own (the
    schedules add the configured bases to it, which a bare ephemeral instance cannot take from a schedule context).
    In a copy of the context: leaving `instance_for_test` leaves the instance's state storage as the current one
    (dagster 1.13.28 `DagsterInstance.__exit__` never closes what `__enter__` set), and every later `materialize`
    in the process then fails on the dead instance's weakref."""
    return contextvars.copy_context().run(_schedule_requests, defs, name, at)


def _schedule_requests(defs: dg.Definitions, name: str, at: datetime) -> list[dg.RunRequest]:
    with dg.instance_for_test() as instance, dg.partition_loading_context(dynamic_partitions_store=instance):
        repository = defs.get_repository_def()
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at, repository_def=repository)
        return list(defs.resolve_schedule_def(name).evaluate_tick(context).run_requests or [])
