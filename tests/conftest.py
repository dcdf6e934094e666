"""Test-wide guards: no test may reach the user's real 1C or write into the repository's data/ folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

ONEC_VARIABLES = (
    "ONEC_BASE_URL", "ONEC_AUTH", "ONEC_USERNAME", "ONEC_PASSWORD", "ONEC_API_KEY", "ONEC_CLIENT_CERT",
    "ONEC_CLIENT_KEY", "ONEC_CA_BUNDLE", "ONEC_RATE_LIMIT", "ONEC_MAX_CONNECTIONS", "ONEC_TIMEZONE",
    "ONEC_DATA_DIR", "ONEC_PAGE_SIZE", "ONEC_TIMEOUT", "ONEC_SANDBOX_DOCUMENTS", "ONEC_SANDBOX_SEED",
)  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for name in ONEC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    yield
