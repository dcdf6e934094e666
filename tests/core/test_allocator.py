"""The allocator setting the entry points make: taken by glibc here, left alone when the environment sets it."""

from __future__ import annotations

import importlib
import subprocess
import sys

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
    monkeypatch.setattr(onec.allocator, "pin_mmap_threshold", lambda: calls.append("code location") or True)
    monkeypatch.setattr(onec.cli, "pin_mmap_threshold", lambda: calls.append("cli") or True)
    with pytest.raises(SystemExit):
        onec.cli.main(["--help"])
    importlib.reload(pipelines.definitions)
    assert calls == ["cli", "code location"]
