"""A generated month of the sandbox 1C, extracted into a fresh warehouse through the real client and sync."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest

from onec.config import Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.schema import DOCUMENT_SLUGS
from onec.sync import extract_all
from onec.warehouse import Warehouse

MONTH_START = date(2026, 1, 1)
MONTH_DAYS = 31
MONTH_END = MONTH_START + timedelta(days=MONTH_DAYS)


@dataclasses.dataclass
class LandedMonth:
    data: SandboxData
    warehouse: Warehouse
    settings: Settings
    engine: SandboxEngine

    def sync(self, snapshot_date: date, run_id: str, *, doc_types: tuple[str, ...] = DOCUMENT_SLUGS) -> None:
        """Extract what the sandbox holds now (documents up to a week past the month), with the goods snapshot
        labelled `snapshot_date`."""
        with open_client(self.settings, engine=self.engine) as client:
            extract_all(
                client,
                self.warehouse,
                date_from=MONTH_START,
                date_to=MONTH_END + timedelta(days=7),
                snapshot_date=snapshot_date,
                run_id=run_id,
                timezone=self.settings.timezone,
                doc_types=doc_types,
            )


@pytest.fixture
def landed_month(tmp_path: Path) -> LandedMonth:
    """400 documents in January 2026 (with 7 deliberately bad records), synced once, snapshot dated 1 February."""
    settings = dataclasses.replace(Settings.from_env(), data_dir=tmp_path / "data", page_size=200)
    data = SandboxData.generate(seed=7, documents=400, start=MONTH_START, days=MONTH_DAYS, bad_records=7)
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    warehouse.initialize()
    month = LandedMonth(data, warehouse, settings, SandboxEngine(data, SandboxConfig()))
    month.sync(MONTH_END, run_id="run-month")
    return month
