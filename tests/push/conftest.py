"""Fixtures for the push tests: a fresh warehouse per test (ONEC_DATA_DIR is a temp dir, see tests/conftest.py)."""

from __future__ import annotations

import pytest

from onec.config import Settings
from onec.warehouse import Warehouse


@pytest.fixture
def warehouse() -> Warehouse:
    settings = Settings.from_env()
    store = Warehouse(settings.data_dir, settings.timezone)
    store.initialize()
    return store
