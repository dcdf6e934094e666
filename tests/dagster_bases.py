"""Dagster test helpers for the base dimension: an instance that knows the bases, a base × day partition key."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.bases import BASE_DIMENSION, DAY_DIMENSION, register_bases
from onec.config import DEFAULT_BASE
from onec.sandbox.engine import SandboxEngine
from onec.sandbox.server import running_server


def instance_with_bases(*bases: str) -> dg.DagsterInstance:
    """An ephemeral instance whose base dimension holds `bases` (default: `main`), as the `onec_bases` sensor
    leaves it."""
    instance = dg.DagsterInstance.ephemeral()
    register_bases(instance, list(bases or (DEFAULT_BASE,)))
    return instance


@contextmanager
def served_bases(
    engines: dict[str, SandboxEngine], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, SandboxEngine]]:
    """Each engine served on 127.0.0.1 as the 1C of the base its key names, listed in ONEC_BASES_FILE (in `folder`)
    for as long as the context lasts; fast pacing."""
    with ExitStack() as stack:
        urls = {base: stack.enter_context(running_server(engine)) for base, engine in engines.items()}
        bases_file = folder / "bases.toml"
        bases_file.write_text("".join(f'[[base]]\nid = "{b}"\nurl = "{u}"\n\n' for b, u in urls.items()), "utf-8")
        monkeypatch.setenv("ONEC_BASES_FILE", str(bases_file))
        monkeypatch.setenv("ONEC_RATE_LIMIT", "1000")
        yield engines


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
