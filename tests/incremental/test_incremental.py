"""Incremental sync against a sandbox that keeps changing: the warehouse ends equal to a full extract, failures
lose nothing, quiet days cost a handful of requests, and cursors only move with the rows they cover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from onec.client import OneCClient
from onec.config import ConfigError, Settings
from onec.http import RequestStats
from onec.http.server_clock import ServerClock
from onec.incremental import ENTITIES, change_window, sync_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.mutations import SandboxMutator
from onec.sources.typing import Batch
from onec.sync import extract_documents, local_today
from onec.warehouse import Warehouse
from tests.incremental.incremental_helpers import ZONE, OpenClient, assert_same_warehouse, full_extract, new_warehouse


def run_incremental(client_for: OpenClient, warehouse: Warehouse, run_id: str, **options: Any) -> list[Any]:
    with client_for() as client:
        return sync_changes(client, warehouse, run_id=run_id, timezone=ZONE, **options)


def test_rounds_of_changes_end_equal_to_a_full_extract(
    client_for: OpenClient, data: SandboxData, mutator: SandboxMutator, tmp_path: Path
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    first = run_incremental(client_for, warehouse, "boot")
    assert [r.window.bootstrap for r in first] == [True] * len(ENTITIES)
    assert_same_warehouse(warehouse, full_extract(client_for, data, tmp_path / "full-0"))
    for round_number in range(1, 4):
        mutator.edit_document("shipment")  # a month-old document gets new lines
        mutator.mark_deleted("goods-receipt", timedelta(days=25))
        mutator.move_document("transfer", -4)  # changes partition
        mutator.random_changes(12)
        results = run_incremental(client_for, warehouse, f"round-{round_number}")
        assert not any(r.window.bootstrap for r in results)
        assert_same_warehouse(warehouse, full_extract(client_for, data, tmp_path / f"full-{round_number}"))
    deleted = warehouse.query("SELECT count(*) FROM documents WHERE deleted").item()
    assert deleted >= 3


def test_a_moved_document_leaves_its_old_partition_in_table_and_lake(
    client_for: OpenClient, mutator: SandboxMutator, tmp_path: Path
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    run_incremental(client_for, warehouse, "boot")
    event = mutator.move_document("shipment", 5, older_than=timedelta(days=30))
    number = event.data["number"]
    before = warehouse.query("SELECT doc_date FROM documents WHERE number = ?", [number]).item()
    run_incremental(client_for, warehouse, "after-move", entities=["shipment"])
    rows = warehouse.query("SELECT doc_date FROM documents WHERE number = ?", [number])
    assert rows.height == 1 and rows.item() == before + timedelta(days=5)
    lake = warehouse.lake_dir / "documents" / "doc_type=shipment"
    old_file = lake / f"doc_date={before.isoformat()}" / "data.parquet"
    if old_file.exists():
        assert number not in pl.read_parquet(old_file)["number"].to_list()
    new_file = lake / f"doc_date={(before + timedelta(days=5)).isoformat()}" / "data.parquet"
    assert number in pl.read_parquet(new_file)["number"].to_list()


class FailingSource:
    """A client that fails (an exception, as from a crash) after `pages` pages of one document type."""

    def __init__(self, client: OneCClient, doc_type: str, pages: int) -> None:
        self._client, self._doc_type, self._pages = client, doc_type, pages
        self.name = client.name

    @property
    def stats(self) -> RequestStats:
        return self._client.stats

    @property
    def server_clock(self) -> ServerClock:
        return self._client.server_clock

    def goods(self, modified_since: datetime | None = None, modified_until: datetime | None = None) -> Iterator[Batch]:
        return self._client.goods(modified_since, modified_until)

    def documents(
        self,
        doc_type: str,
        date_from: date | None = None,
        date_to: date | None = None,
        modified_since: datetime | None = None,
        modified_until: datetime | None = None,
    ) -> Iterator[Batch]:
        pages = self._client.documents(doc_type, date_from, date_to, modified_since, modified_until)
        if doc_type != self._doc_type:
            yield from pages
            return
        for number, page in enumerate(pages):
            if number == self._pages:
                raise ConnectionResetError("killed mid-run")
            yield page


def test_a_run_failing_midway_and_the_next_run_lose_nothing(
    client_for: OpenClient, data: SandboxData, mutator: SandboxMutator, tmp_path: Path
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    run_incremental(client_for, warehouse, "boot")
    cursors = {e: warehouse.cursor("documents", e) for e in ("goods-receipt", "shipment", "inventory")}
    for _ in range(35):  # more than a page of changed shipments
        mutator.edit_document("shipment")
        mutator.new_document("shipment")
    mutator.random_changes(10)
    with client_for() as client, pytest.raises(ConnectionResetError):
        sync_changes(FailingSource(client, "shipment", 1), warehouse, run_id="dies", timezone=ZONE)
    receipts_after, receipts_before = warehouse.cursor("documents", "goods-receipt"), cursors["goods-receipt"]
    assert receipts_after is not None and receipts_before is not None
    assert receipts_after > receipts_before  # landed before the failure
    assert warehouse.cursor("documents", "shipment") == cursors["shipment"]  # not a row of it landed
    assert warehouse.cursor("documents", "inventory") == cursors["inventory"]  # never reached
    assert warehouse.query("SELECT count(*) FROM load_log WHERE run_id = 'dies' AND doc_type = 'shipment'").item() == 0
    mutator.random_changes(5)
    run_incremental(client_for, warehouse, "resumes")
    assert_same_warehouse(warehouse, full_extract(client_for, data, tmp_path / "full"))


def test_a_commit_that_fails_keeps_rows_and_cursor_as_they_were(
    client_for: OpenClient, mutator: SandboxMutator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    run_incremental(client_for, warehouse, "boot")
    cursor = warehouse.cursor("goods")
    mutator.change_price()
    before = warehouse.query("SELECT * FROM goods ORDER BY ALL")

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("disk full")

    monkeypatch.setattr("onec.warehouse._record_goods_history", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_incremental(client_for, warehouse, "fails", entities=["goods"])
    assert warehouse.cursor("goods") == cursor
    assert warehouse.query("SELECT * FROM goods ORDER BY ALL").equals(before)


def test_a_quiet_day_costs_a_handful_of_requests(client_for: OpenClient, data: SandboxData, tmp_path: Path) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    boot = run_incremental(client_for, warehouse, "boot")
    quiet = run_incremental(client_for, warehouse, "quiet")
    full_requests = sum(r.extract.http.get("requests", 0) for r in boot)
    quiet_requests = sum(r.extract.http.get("requests", 0) for r in quiet)
    assert quiet_requests == len(ENTITIES) < full_requests  # one (nearly empty) page per entity
    for result in quiet:  # only what 1C stamped inside the overlap before the cursor comes back
        since = result.window.since
        held = data.goods_holdings() if result.entity == "goods" else data.documents_holdings(result.entity)
        assert result.extract.records == sum(1 for r in held if r.modified_at and r.modified_at >= since)
        assert result.cursor == next(r.cursor for r in boot if r.entity == result.entity)  # nothing new: kept
    assert sum(r.extract.records for r in quiet) < 60


def test_full_refresh_and_backfill_leave_cursors_alone(
    client_for: OpenClient, data: SandboxData, tmp_path: Path
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    run_incremental(client_for, warehouse, "boot")
    cursors = warehouse.query("SELECT * FROM sync_cursors ORDER BY ALL")
    with client_for() as client:
        extract_documents(client, warehouse, doc_type="shipment", date_from=data.start,
                          date_to=data.start + timedelta(days=5), run_id="backfill", timezone=ZONE)  # fmt: skip
    assert warehouse.query("SELECT * FROM sync_cursors ORDER BY ALL").equals(cursors)


def test_goods_history_answers_the_price_on_any_instant(
    client_for: OpenClient, mutator: SandboxMutator, tmp_path: Path
) -> None:
    warehouse = new_warehouse(tmp_path / "inc")
    run_incremental(client_for, warehouse, "boot")
    # Runs pin their start to whole seconds: the second run must start in a later second than the first, or the old
    # price's validity is empty and there is no instant to ask about.
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
    event = mutator.change_price(factor=Decimal("2"))
    sku, warehouse_code = event.data["sku"], event.data["warehouse"]
    run_incremental(client_for, warehouse, "prices", entities=["goods"])
    history = warehouse.query(
        "SELECT price, valid_from, valid_to FROM goods_history WHERE sku = ? AND warehouse = ? ORDER BY valid_from",
        [sku, warehouse_code],
    )
    assert history.height == 2
    old, new = history.row(0), history.row(1)
    assert new[0] == Decimal(event.data["price"]) and old[2] == new[1] and new[2] is None
    as_of = "SELECT price FROM goods_history WHERE sku = ? AND warehouse = ? AND valid_from <= ?"
    as_of += " AND (valid_to IS NULL OR valid_to > ?)"
    before = new[1] - timedelta(seconds=1)
    assert warehouse.query(as_of, [sku, warehouse_code, before, before]).item() == old[0]
    open_rows = warehouse.query("SELECT count(*) FROM goods_history WHERE valid_to IS NULL").item()
    today = local_today(ZONE)
    assert open_rows == warehouse.query("SELECT count(*) FROM goods WHERE snapshot_date = ?", [today]).item()


def test_change_window_reaches_back_by_the_overlap_and_has_no_end() -> None:
    cursor = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert change_window(cursor, timedelta(minutes=10)).since == cursor - timedelta(minutes=10)
    assert change_window(None, timedelta(0)).bootstrap
    with pytest.raises(ValueError, match="negative"):
        change_window(cursor, timedelta(minutes=-1))
    assert Settings.from_env({"ONEC_INCREMENTAL_OVERLAP_MINUTES": "2.5"}).incremental.overlap == timedelta(minutes=2.5)
    with pytest.raises(ConfigError, match="not a number"):
        Settings.from_env({"ONEC_INCREMENTAL_OVERLAP_MINUTES": "soon"})


def test_cursor_must_be_aware_and_never_moves_back(tmp_path: Path) -> None:
    warehouse = new_warehouse(tmp_path / "w")
    today = local_today(ZONE)
    later, earlier = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    for cursor in (later, earlier):
        with warehouse.goods_changes(today, run_id="r", source="json") as landing:
            landing.commit(cursor=cursor)
    assert warehouse.cursor("goods") == later
    with warehouse.goods_changes(today, run_id="r", source="json") as landing, pytest.raises(ValueError):
        landing.commit(cursor=datetime(2026, 3, 3))
