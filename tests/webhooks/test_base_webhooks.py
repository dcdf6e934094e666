"""Webhooks per base: each base's receiver queues into its own folder, is registered with its own 1C, and its events
become runs of that base only; a base's run in flight holds back no other base's events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest

from onec.cli import main
from onec.config import Settings, load_bases
from onec.sandbox.engine import SandboxEngine
from onec.webhooks import commands
from onec.webhooks.queue import EventQueue
from onec.webhooks.receiver import WebhookReceiver, running_receiver
from onec.webhooks.signature import HEADER, sign
from pipelines.definitions import build_definitions
from tests.dagster_bases import sensor_tick, served_bases
from tests.push.push_helpers import fresh_data

NORTH, SOUTH = "north", "south"
SECRET = "per-base-secret"


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, SandboxEngine]]:
    monkeypatch.setenv("ONEC_WEBHOOK_SECRET", SECRET)
    engines = {NORTH: SandboxEngine(fresh_data()), SOUTH: SandboxEngine(fresh_data())}
    with served_bases(engines, tmp_path, monkeypatch):
        yield engines


def _queue(base: str) -> EventQueue:
    """Where the README says a base's webhook queue is: in its own folder `bases/<id>/` of the data directory."""
    return EventQueue(Settings.from_env().data_dir / "bases" / base / "webhooks.sqlite3")


def _record(queue: EventQueue, event_id: str, event: str) -> None:
    assert queue.record(event_id, event, datetime.now(UTC), {}, b"{}")


def _requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[tuple[str | None, list[str]]]:
    tick = sensor_tick(defs.resolve_sensor_def("onec_webhooks"), instance, defs)
    ops = [request.run_config["ops"]["incremental_sync"]["config"] for request in tick.run_requests or []]
    return [(r.partition_key, config["entities"]) for r, config in zip(tick.run_requests or [], ops, strict=True)]


def test_each_bases_events_become_runs_of_that_base_only(sandboxes: dict[str, SandboxEngine]) -> None:
    defs, instance = build_definitions(load_bases()), dg.DagsterInstance.ephemeral()
    south = _queue(SOUTH)
    _record(south, "s1", "goods.updated")

    assert _requests(defs, instance) == [(SOUTH, ["goods"])]

    _record(south, "s2", "document.posted")
    _record(_queue(NORTH), "n1", "goods.updated")
    assert _requests(defs, instance) == [(NORTH, ["goods"])], "south's batch in flight held back north's events"
    assert south.counts() == {"pending": 1, "claimed": 1, "done": 0}


def test_the_webhooks_command_serves_and_registers_the_base_it_is_given(
    sandboxes: dict[str, SandboxEngine], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[WebhookReceiver] = []
    monkeypatch.setattr(commands, "serve", lambda receiver, **_: served.append(receiver))

    assert main(["--base", SOUTH, "webhooks", "--port", "1"]) == 0
    assert [receiver.queue.path for receiver in served] == [_queue(SOUTH).path]
    assert main(["webhooks", "--port", "1"]) == 2
    assert "choose one with --base" in capsys.readouterr().err

    hook = "http://127.0.0.1:1/webhooks/1c"
    assert main(["--base", SOUTH, "webhooks", "register", "--url", hook, "--event", "goods.updated"]) == 0
    assert len(sandboxes[SOUTH].webhooks.subscriptions()) == 1
    assert sandboxes[NORTH].webhooks.subscriptions() == [] and sandboxes[NORTH].stats.snapshot()["requests"] == 0


def test_a_base_with_its_own_webhook_secret_refuses_what_the_shared_secret_signs(
    sandboxes: dict[str, SandboxEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONEC_BASE_NORTH_WEBHOOK_SECRET: north's receiver verifies with it and north's 1C is registered with it; south,
    without one, keeps ONEC_WEBHOOK_SECRET. So south's 1C (or anyone holding the shared secret) cannot queue events
    for north."""
    own = "north-only-Ёж"
    monkeypatch.setenv("ONEC_BASE_NORTH_WEBHOOK_SECRET", own)
    served: dict[str, WebhookReceiver] = {}
    monkeypatch.setattr(
        commands, "serve", lambda receiver, **_: served.setdefault(receiver.queue.path.parent.name, receiver)
    )
    for base in (NORTH, SOUTH):
        assert main(["--base", base, "webhooks", "--port", "1"]) == 0
        hook = "http://127.0.0.1:1/webhooks/1c"
        assert main(["--base", base, "webhooks", "register", "--url", hook, "--event", "goods.updated"]) == 0
    assert [s.secret for s in sandboxes[NORTH].webhooks.subscriptions()] == [own]
    assert [s.secret for s in sandboxes[SOUTH].webhooks.subscriptions()] == [SECRET]

    answers: dict[tuple[str, str], int] = {}
    for base, secret in ((NORTH, SECRET), (NORTH, own), (SOUTH, SECRET)):
        body = json.dumps({"id": f"{base}-{len(answers)}", "event": "goods.updated",
                           "occurred_at": _now_in_1c(base), "data": {}}).encode()  # fmt: skip
        with running_receiver(served[base]) as url:
            headers = {"content-type": "application/json", HEADER: sign(body, secret)}
            answers[(base, secret)] = httpx.post(url, content=body, headers=headers, timeout=10).status_code
    assert answers == {(NORTH, SECRET): 403, (NORTH, own): 202, (SOUTH, SECRET): 202}
    assert _queue(NORTH).counts()["pending"] == 1 and _queue(SOUTH).counts()["pending"] == 1


def _now_in_1c(base: str) -> str:
    """Now as the base's 1C writes `occurred_at`: its wall clock, without an offset."""
    zone = ZoneInfo(load_bases().base(base).timezone)
    return datetime.now(zone).replace(tzinfo=None, microsecond=0).isoformat()
