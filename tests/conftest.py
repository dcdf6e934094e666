"""Test-wide guards: no test may reach the user's real 1C or write into the repository's data/ folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("ONEC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    yield
