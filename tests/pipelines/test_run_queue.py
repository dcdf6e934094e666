"""Limits where the limit is: Dagster's run queue, as dagster.yaml configures it, holds each 1C base to one run at a
time while the bases run side by side, and a base whose 1C fails does not stop the others.

Nothing is faked: a real instance with the QueuedRunCoordinator and the limits of `pipelines.instance`, the code
location `pipelines.definitions` served by a gRPC server, the asset backfill daemon's iteration creating the runs
(one per base × day) and the run queue daemon's iteration dequeuing them; each run is a process of its own talking
over HTTP to its base's sandbox 1C on 127.0.0.1. The loop is bounded.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_shared.yaml_utils import load_yaml_from_path

from assets.bases import RUN_BASE_TAG
from onec.config import Settings, load_bases
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import running_server
from pipelines.definitions import build_definitions
from pipelines.imports import IMPORT_JOB
from pipelines.instance import configure_instance, instance_config, instance_yaml
from tests.dagster_bases import day_key

ROOT = Path(__file__).resolve().parents[2]
ZONE = "Europe/Moscow"
BASES = ("alpha", "beta", "gamma")
FAILING = "gamma"
"""This base's sandbox answers every request with a 500."""
BUDGET = 4
"""More runs at once than bases: what keeps two runs of a base apart is the per-base limit, not the budget."""
DEADLINE_S = 420.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpan:
    base: str
    status: dg.DagsterRunStatus
    start: float
    end: float


def test_dagster_yaml_is_the_instance_config_at_the_defaults() -> None:
    assert (ROOT / "dagster.yaml").read_text("utf-8") == instance_yaml(Settings())
    assert load_yaml_from_path(str(ROOT / "dagster.yaml")) == instance_config(Settings())


@pytest.mark.timeout(DEADLINE_S + 180)  # nine run processes on a shared host: 2-4 min here, the suite's 300 s is short
def test_a_backfill_runs_one_run_per_base_at_a_time_and_a_failing_base_stops_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = date.today() - timedelta(days=8)
    days = [first + timedelta(days=n) for n in range(2, 5)]
    with ExitStack() as stack:
        urls = {base: stack.enter_context(running_server(_sandbox(base, first))) for base in BASES}
        bases_file = tmp_path / "bases.toml"
        bases_file.write_text("".join(f'[[base]]\nid = "{b}"\nurl = "{u}"\n\n' for b, u in urls.items()), "utf-8")
        for name, value in {"ONEC_BASES_FILE": str(bases_file), "ONEC_DATA_DIR": str(tmp_path / "data"),
                            "ONEC_TIMEZONE": ZONE, "ONEC_MAX_RETRIES": "1", "ONEC_RATE_LIMIT": "1000",
                            "ONEC_MAX_CONCURRENT_RUNS": str(BUDGET)}.items():  # fmt: skip
            monkeypatch.setenv(name, value)  # the code server and the runs inherit them
        spans = contextvars.copy_context().run(_backfill, days)

    by_base = {base: sorted((s for s in spans if s.base == base), key=lambda s: s.start) for base in BASES}
    assert {base: len(runs) for base, runs in by_base.items()} == {base: len(days) for base in BASES}
    for base, runs in by_base.items():
        for earlier, later in itertools.pairwise(runs):
            assert later.start >= earlier.end, f"two runs of {base} at once: {earlier} and {later}"
    assert {s.status for s in by_base[FAILING]} == {dg.DagsterRunStatus.FAILURE}
    assert all(s.status == dg.DagsterRunStatus.SUCCESS for base in BASES if base != FAILING for s in by_base[base])
    assert 2 <= _most_at_once(spans) <= len(BASES), "the bases ran one at a time, or a base ran twice at once"


def _sandbox(base: str, first: date) -> SandboxEngine:
    data = SandboxData.generate(seed=len(base), documents=120, start=first, days=8, timezone=ZONE)
    faults = FaultConfig(error_500=1.0) if base == FAILING else FaultConfig()
    return SandboxEngine(data, SandboxConfig(faults=faults))


def _backfill(days: list[date]) -> list[RunSpan]:
    """Run a backfill of every base × day of the sync job's assets to its end; (base, status, start, end) per run.
    In a copy of the context: leaving `instance_for_test` leaves its state storage current (tests/dagster_bases.py)."""
    bases = load_bases()
    with instance_for_test(overrides=instance_config(bases.settings)) as instance:
        configure_instance(instance, bases)  # what the onec_bases sensor does
        target = ModuleTarget(
            module_name="pipelines.definitions", attribute=None, working_directory=str(ROOT), location_name="onec"
        )
        with create_test_daemon_workspace_context(target, instance) as workspace:
            backfill_id = _start_backfill(instance, days, bases.ids)
            _drive(workspace, instance, backfill_id)
            records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
            return [
                RunSpan(_base(r.dagster_run), r.dagster_run.status, r.start_time or 0.0, r.end_time or 0.0)
                for r in records
            ]


def _base(run: dg.DagsterRun) -> str:
    """The base of a backfill run, read from the partition (range) Dagster gave it: `<base>|<day>`."""
    key = run.tags.get("dagster/partition") or run.tags["dagster/asset_partition_range_start"]
    assert key == run.tags.get("dagster/asset_partition_range_end", key), f"a run of several partitions: {run.tags}"
    base = key.split("|")[0]
    assert run.tags.get(RUN_BASE_TAG, base) == base
    return base


def _start_backfill(instance: dg.DagsterInstance, days: list[date], base_ids: list[str]) -> str:
    graph = build_definitions(load_bases()).resolve_asset_graph()
    job = graph.get_all_asset_keys()
    selection = [key for key in job if graph.get(key).partitions_def is not None and key.path[0] != "incremental_sync"]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="multibase",
        asset_graph=graph,
        partition_names=[day_key(day, base) for base in base_ids for day in days],
        asset_selection=selection,
        backfill_timestamp=datetime.now().timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def _drive(workspace: object, instance: dg.DagsterInstance, backfill_id: str) -> None:
    """Iterate the backfill daemon and the run queue daemon until the backfill is done and no run is left."""
    queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        list(execute_backfill_iteration(workspace, _log))  # type: ignore[arg-type]
        list(queue.run_iteration(workspace))  # type: ignore[arg-type]
        backfill = instance.get_backfill(backfill_id)
        unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=list(_UNFINISHED)))
        if backfill is not None and backfill.status != BulkActionStatus.REQUESTED and not unfinished:
            return
        time.sleep(0.5)
    raise AssertionError(f"the backfill did not finish within {DEADLINE_S:.0f}s")


_UNFINISHED = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def _most_at_once(spans: list[RunSpan]) -> int:
    events = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


@pytest.mark.parametrize(
    ("run_config", "tagged"),
    [
        ({"ops": {"push_import": {"config": {"path": "x.csv", "type": "shipment", "base": "south"}}}}, "south"),
        ({"ops": {"push_import": {"config": {"path": "x.csv", "type": "shipment"}}}}, None),
    ],
)
def test_an_import_launched_by_hand_is_held_to_its_base(run_config: dict[str, object], tagged: str | None) -> None:
    """A run from the launchpad has no partition and no tag: the base its op config names is what the per-base limit
    must count it against (an import into a base while that base syncs would share its 1C and its warehouse)."""
    with instance_for_test(overrides=instance_config(Settings())) as instance:
        run = create_run_for_test(
            instance, job_name=IMPORT_JOB, run_config=run_config, remote_job_origin=_origin(IMPORT_JOB)
        )
        submitted = instance.run_coordinator.submit_run(dg.SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]
        assert submitted.status == dg.DagsterRunStatus.QUEUED
        assert submitted.tags.get(RUN_BASE_TAG) == tagged


def _origin(job: str) -> RemoteJobOrigin:
    """Where a queued run's job comes from (the queue insists on one); this code location, loaded in process."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.definitions"))
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job)
