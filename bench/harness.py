"""What every benchmark needs: a sandbox 1C in its own process, a free port, and a child run measured for memory.

The sandbox runs in a separate process so that its data (which grows with the size asked for) is not counted in the
pipeline's peak memory, and so that its CPU use is visible as what it is: the other end of the wire.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BASE_PATH = "/trade/hs/exchange"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox_process(*options: str, timeout_s: float = 120.0) -> Iterator[str]:
    """`onec-etl sandbox OPTIONS` on 127.0.0.1; yields its base URL once it answers, stops it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "onec.cli", "sandbox", "--port", str(port), *options]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}{BASE_PATH}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with code {process.returncode}")
            try:
                if httpx.get(f"{base_url}/api/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not answer within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def run_child(script: Path, args: Sequence[str], env: dict[str, str], *, timeout_s: float = 1800) -> dict[str, float]:
    """Run `script --child ARGS` in a fresh interpreter, so each measurement has its own peak memory; the child
    prints one JSON line of results (including its `child_peak_rss_mb()`)."""
    completed = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"{script.name} child failed:\n{completed.stderr[-3000:]}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def child_peak_rss_mb() -> float:
    """Peak RSS of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
