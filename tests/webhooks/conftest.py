"""The webhook and incremental settings of the developer's shell must not leak into these tests."""

from __future__ import annotations

import pytest

VARIABLES = ("ONEC_WEBHOOK_SECRET", "ONEC_WEBHOOK_MAX_BYTES", "ONEC_WEBHOOK_MAX_AGE_S", "ONEC_WEBHOOK_RATE",
             "ONEC_INCREMENTAL_OVERLAP_MINUTES", "ONEC_PARTITIONS_START")  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_webhook_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
