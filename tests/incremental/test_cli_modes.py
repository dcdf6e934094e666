"""`onec-etl sync --incremental` keeps cursors; `--full` reaches back to ONEC_PARTITIONS_START and leaves them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from onec.cli import main
from onec.config import Settings
from onec.sync import local_today
from onec.warehouse import Warehouse


def test_incremental_then_full_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env()
    assert main(["sync", "--incremental", "--types", "shipment"]) == 0
    assert "the beginning (first run)" in capsys.readouterr().err
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    cursors = warehouse.query("SELECT entity, doc_type, cursor FROM sync_cursors ORDER BY ALL")
    assert cursors.select("entity", "doc_type").rows() == [("documents", "shipment"), ("goods", "")]
    start = local_today(settings.timezone) - timedelta(days=20)
    monkeypatch.setenv("ONEC_PARTITIONS_START", start.isoformat())
    assert main(["sync", "--full", "--types", "inventory"]) == 0
    logged = warehouse.query("SELECT min(range_start) FROM load_log WHERE doc_type = 'inventory'").item()
    assert logged == start
    assert warehouse.query("SELECT entity, doc_type, cursor FROM sync_cursors ORDER BY ALL").equals(cursors)
    with pytest.raises(SystemExit) as refused:  # one mode at a time
        main(["sync", "--full", "--incremental"])
    assert refused.value.code == 2
