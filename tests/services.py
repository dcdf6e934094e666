"""Real servers for end-to-end tests, started and stopped by the test: Debian's PostgreSQL and Redis on 127.0.0.1.

Each runs from its own temporary directory on a free port, with a bounded start-up and a stop that escalates to a
kill, and its directory removed afterwards. PostgreSQL refuses to run as root (CI runs as root): its processes then
run as an unprivileged user through `runuser`. A missing binary is a skip with the package to install on a developer
machine, and a failure under CI, whose .ci/run installs the packages.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
POSTGRES_USER = "dagster"
POSTGRES_DATABASE = "dagster"
UNPRIVILEGED_USERS = ("postgres", "nobody")
"""Who runs PostgreSQL when the test runs as root: Debian's package creates `postgres`; `nobody` exists anywhere."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(what: str, found: object, install: str) -> None:
    """Skip (developer machine) or fail (CI) when a server binary is missing."""
    if found:
        return
    message = f"{what} is missing: {install}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def postgres_bindir() -> Path | None:
    """Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<major>/bin: the newest one there."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return candidates[-1].parent if candidates else None


@contextmanager
def running_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields its SQLAlchemy URL (psycopg2 driver) with an empty database."""
    bindir = postgres_bindir()
    require("PostgreSQL (initdb, pg_ctl)", bindir, "apt-get install -y postgresql (.ci/run does this)")
    assert bindir is not None
    owner = _unprivileged_owner()
    # Under /tmp when root: the unprivileged owner must reach it, and a TMPDIR of root's need not let it through.
    root = Path(tempfile.mkdtemp(prefix="onec-postgres-", dir="/tmp" if owner is not None else None))
    cluster, log = root / "cluster", root / "postgres.log"
    port = free_port()
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        _as(owner, [str(bindir / "initdb"), "-D", str(cluster), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--no-instructions"], cwd=root)  # fmt: skip
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off"
        _as(owner, [str(bindir / "pg_ctl"), "-D", str(cluster), "-l", str(log), "-o", options,
                    "-w", "-t", str(START_TIMEOUT_S), "start"], cwd=root)  # fmt: skip
        try:
            _as(owner, [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER,
                        POSTGRES_DATABASE], cwd=root)  # fmt: skip
            yield f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/{POSTGRES_DATABASE}"
        finally:
            _as(owner, [str(bindir / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "-w",
                        "-t", str(STOP_TIMEOUT_S), "stop"], cwd=root)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unprivileged_owner() -> pwd.struct_passwd | None:
    """None when this process may run PostgreSQL itself (not root)."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail(f"running as root and none of the users {UNPRIVILEGED_USERS} exists to run PostgreSQL as")


def _as(owner: pwd.struct_passwd | None, command: list[str], *, cwd: Path) -> None:
    prefix = ["runuser", "-u", owner.pw_name, "--"] if owner is not None else []
    done = subprocess.run([*prefix, *command], cwd=cwd, capture_output=True, text=True,
                          timeout=START_TIMEOUT_S + 10, check=False)  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stdout}{done.stderr}")


@contextmanager
def running_redis() -> Iterator[str]:
    """A Redis without persistence on a free 127.0.0.1 port; yields its URL (database 0)."""
    server = shutil.which("redis-server")
    require("redis-server", server, "apt-get install -y redis-server (.ci/run does this)")
    assert server is not None
    import redis

    root = Path(tempfile.mkdtemp(prefix="onec-redis-"))
    port = free_port()
    log = (root / "redis.log").open("wb")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: redis.Redis.from_url(url, socket_timeout=1).ping(), f"redis-server on {port}", process)
        yield url
    finally:
        stop(process)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def wait_until(ready: object, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `ready()` until true, within START_TIMEOUT_S; its exceptions mean "not yet", but an AssertionError
    (something it saw die) ends the wait."""
    assert callable(ready)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode} during start-up")
        try:
            if ready():
                return
        except AssertionError:
            raise
        except Exception:  # noqa: S110 - not up yet: connection refused, timeouts
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} was not ready within {START_TIMEOUT_S} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (started with `start_new_session`), SIGKILL after STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
