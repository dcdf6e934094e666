"""The allocator setting the entry points make: taken by glibc here, left alone when the environment sets it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable

import pytest

from onec.allocator import pin_mmap_threshold


def _in_fresh_process(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    return result.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_the_threshold() -> None:
    assert _in_fresh_process("from onec.allocator import pin_mmap_threshold; print(pin_mmap_threshold())") == "True"


def test_a_threshold_set_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert pin_mmap_threshold() is False


def test_the_cli_and_the_code_location_pin_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import onec.allocator
    import onec.cli
    import pipelines.definitions

    calls: list[str] = []

    def pinning(caller: str) -> Callable[[], bool]:
        def pin() -> bool:
            calls.append(caller)
            return True

        return pin

    monkeypatch.setattr(onec.allocator, "pin_mmap_threshold", pinning("code location"))
    monkeypatch.setattr(onec.cli, "pin_mmap_threshold", pinning("cli"))
    with pytest.raises(SystemExit):
        onec.cli.main(["--help"])
    importlib.reload(pipelines.definitions)
    assert calls == ["cli", "code location"]
