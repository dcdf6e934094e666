"""Warehouse and lake move together: a run killed between its DuckDB commit and its lake files leaves no hole in the
lake once any later run has opened the warehouse, and temporary files killed writers leave behind are removed.

The kill is a real one (`os._exit` in a child process, no `finally` runs), placed deterministically: the child's
lake writer ends the process the moment the landing, already committed, starts writing files.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from onec import lake
from onec.validation import check_goods
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, doc, docs_batch, good
from tests.lake_equality import assert_lake_equals_warehouse, lake_rows

REPOSITORY = Path(__file__).resolve().parents[2]
KILLED = 9
DAY = dt.date(2026, 1, 31)
CURSOR = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
SPREAD_DOCUMENTS = [doc(str(n), date=f"2026-01-{n:02d}T10:00:00") for n in range(2, 26, 2)]
"""Twelve receipts on twelve days: an incremental run's first, full scan."""
GOODS = [good(sku) for sku in ("A", "B", "C")]


def merge_documents(warehouse: Warehouse, records: list[Any], run_id: str) -> None:
    """What an incremental run does with one document type: merge by key, cursor in the same transaction."""
    with warehouse.document_changes("goods-receipt", run_id=run_id, source="json") as landing:
        landing.add(docs_batch(records))
        landing.commit(cursor=CURSOR)


def merge_goods(warehouse: Warehouse, records: list[Any], day: dt.date, run_id: str) -> None:
    with warehouse.goods_changes(day, run_id=run_id, source="json") as landing:
        landing.add(check_goods(records, snapshot_date=day, timezone=ZONE, run_id=run_id))
        landing.commit(cursor=CURSOR)


def killed_landing(data_dir: str, entity: str, kill_at: str) -> None:
    """Run in a child process: an incremental landing whose process dies at `kill_at` (a function of onec.lake),
    after the DuckDB commit."""
    import os

    def die(*args: object, **kwargs: object) -> None:
        os._exit(KILLED)

    setattr(lake, kill_at, die)
    warehouse = Warehouse(Path(data_dir), ZONE)
    if entity == "documents":
        merge_documents(warehouse, SPREAD_DOCUMENTS, "killed")
    else:
        merge_goods(warehouse, GOODS, DAY, "killed")
    raise AssertionError("the landing finished: the kill never happened")


def run_killed_landing(data_dir: Path, entity: str, kill_at: str = "write_partitions") -> None:
    arguments = f"{str(data_dir)!r}, {entity!r}, {kill_at!r}"
    code = f"from tests.core.test_lake_mirror import killed_landing; killed_landing({arguments})"
    child = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, timeout=120, check=False)
    assert child.returncode == KILLED, child.stderr.decode()


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    return w


@pytest.mark.parametrize("next_run", ["initialize", "landing"])
def test_documents_committed_by_a_run_killed_before_its_lake_write_reach_the_lake(
    warehouse: Warehouse, next_run: str
) -> None:
    run_killed_landing(warehouse.data_dir, "documents")
    assert warehouse.query("SELECT count(*) FROM documents").item() == len(SPREAD_DOCUMENTS)
    assert warehouse.cursor("documents", "goods-receipt") == CURSOR, "the kill must come after the commit"
    assert lake_rows(warehouse, "documents") is None, "the kill must come before the lake write"

    if next_run == "initialize":
        Warehouse(warehouse.data_dir, ZONE).initialize()
    merge_documents(Warehouse(warehouse.data_dir, ZONE), [doc("late", date="2026-01-28T10:00:00")], "next")

    assert warehouse.query("SELECT count(*) FROM documents").item() == len(SPREAD_DOCUMENTS) + 1
    assert_lake_equals_warehouse(warehouse)


def test_a_goods_snapshot_and_its_history_committed_by_a_killed_run_reach_the_lake(warehouse: Warehouse) -> None:
    run_killed_landing(warehouse.data_dir, "goods")
    assert warehouse.query("SELECT count(*) FROM goods_history").item() == len(GOODS)
    assert lake_rows(warehouse, "goods") is None

    merge_goods(Warehouse(warehouse.data_dir, ZONE), [good("B", 7)], DAY + dt.timedelta(days=1), "next")

    assert warehouse.query("SELECT count(DISTINCT snapshot_date) FROM goods").item() == 2
    assert_lake_equals_warehouse(warehouse)


def test_a_run_killed_with_its_temporary_file_written_leaves_no_litter(warehouse: Warehouse) -> None:
    """Killed just before the rename: the temporary file is complete and in the partition directory."""
    run_killed_landing(warehouse.data_dir, "documents", kill_at="_commit_file")
    litter = list(warehouse.lake_dir.rglob(".data.parquet.*.tmp"))
    assert len(litter) == 1

    Warehouse(warehouse.data_dir, ZONE).initialize()

    assert not litter[0].exists()
    assert_lake_equals_warehouse(warehouse)


def test_initialize_removes_temporary_files_anywhere_in_the_lake_and_nothing_else(warehouse: Warehouse) -> None:
    merge_documents(warehouse, SPREAD_DOCUMENTS, "first")
    partition = warehouse.lake_dir / "documents" / "doc_type=goods-receipt" / "doc_date=2026-01-02"
    litter = [
        partition / ".data.parquet.0123456789abcdef0123456789abcdef.tmp",
        warehouse.lake_dir / ".views.sql.0123456789abcdef0123456789abcdef.tmp",
        warehouse.lake_dir / "marts" / "stock_movements" / "month=2026-01" / ".data.parquet.feed.tmp",
    ]
    for path in litter:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PAR1 half a file")
    kept = [partition / lake.FILE_NAME, warehouse.lake_dir / "notes.tmp"]
    kept[1].write_text("not ours: not a hidden temporary name")

    warehouse.initialize()

    assert [path.exists() for path in litter] == [False] * len(litter)
    assert all(path.exists() for path in kept)
    kept[1].unlink()
    assert_lake_equals_warehouse(warehouse)
