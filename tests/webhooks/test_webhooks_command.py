"""`onec-etl webhooks --port …` as a real process on 127.0.0.1, and the CLI's refusals without a secret."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from onec.cli import main
from onec.webhooks.queue import QUEUE_FILE, EventQueue
from onec.webhooks.signature import HEADER, sign

SECRET = "cli-secret"
DEADLINE_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_the_webhooks_command_serves_and_queues(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "ONEC_DATA_DIR": str(tmp_path), "ONEC_WEBHOOK_SECRET": SECRET}
    command = [sys.executable, "-m", "onec.cli", "webhooks", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/webhooks/1c"
        now = datetime.now(ZoneInfo("Europe/Moscow")).replace(tzinfo=None).isoformat()
        event = {"id": str(uuid.uuid4()), "event": "goods.updated", "data": {"sku": "A"}, "occurred_at": now}
        body = orjson.dumps(event)
        status = _post_when_up(url, body, server)
        assert status == 202
        assert EventQueue(tmp_path / QUEUE_FILE).counts()["pending"] == 1
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert SECRET.encode() not in err


def test_serving_or_registering_without_a_secret_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhooks", "--port", "1"]) == 2
    assert "ONEC_WEBHOOK_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("ONEC_BASE_URL", "http://127.0.0.1:9/trade/hs/exchange")
    assert main(["webhooks", "register", "--url", "http://127.0.0.1:1/h", "--event", "goods.updated"]) == 2
    assert "ONEC_WEBHOOK_SECRET is not set" in capsys.readouterr().err


def _post_when_up(url: str, body: bytes, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        assert server.poll() is None, "the receiver exited"
        try:
            return httpx.post(url, content=body, headers={HEADER: sign(body, SECRET)}, timeout=5).status_code
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "the receiver did not start in time"
            time.sleep(0.1)
