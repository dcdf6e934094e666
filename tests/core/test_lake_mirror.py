"""Warehouse and lake move together: a run killed between its DuckDB commit and its lake files leaves no hole in the
lake once any later run has opened the warehouse, and temporary files killed writers leave behind are removed.

The kill is a real one (`os._exit` in a child process, no `finally` runs), placed deterministically: the child's
lake writer ends the process the moment the landing, already committed, starts writing files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onec import lake
from onec.validation import check_goods
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, doc, docs_batch, good, land_documents
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


class Killed(BaseException):
    """Stands for a kill in the in-process test below (the subprocess tests above use a real one)."""


documents = st.lists(
    st.builds(
        lambda number, day, qty: doc(str(number), date=f"2026-01-{day:02d}T10:00:00", qty=qty),
        st.integers(1, 8),
        st.integers(1, 10),
        st.integers(1, 9),
    ),
    max_size=6,
    unique_by=lambda record: record["number"],
)
goods_lists = st.lists(
    st.builds(good, st.sampled_from("ABCDE"), st.integers(0, 9)), max_size=4, unique_by=lambda g: g["sku"]
)
goods_days = st.integers(28, 31).map(lambda day: dt.date(2026, 1, day))
steps = st.one_of(
    st.tuples(st.just("replace days"), documents, st.integers(1, 10), st.integers(1, 10)),
    st.tuples(st.just("merge documents"), documents),
    st.tuples(st.just("goods snapshot"), goods_lists, goods_days),
    st.tuples(st.just("merge goods"), goods_lists, goods_days),
    st.tuples(st.just("initialize")),
)


def apply(warehouse: Warehouse, step: tuple[Any, ...]) -> None:
    kind, *arguments = step
    if kind == "replace days":
        records, first, last = arguments
        start, end = dt.date(2026, 1, min(first, last)), dt.date(2026, 1, max(first, last) + 1)
        inside = [r for r in records if start <= dt.date.fromisoformat(r["date"][:10]) < end]
        land_documents(warehouse, inside, window=(start, end))
    elif kind == "merge documents":
        merge_documents(warehouse, arguments[0], "merge")
    elif kind == "goods snapshot":
        records, day = arguments
        with warehouse.goods_snapshot(day, run_id="snapshot", source="json") as landing:
            landing.add(check_goods(records, snapshot_date=day, timezone=ZONE, run_id="snapshot"))
            landing.commit()
    elif kind == "merge goods":
        merge_goods(warehouse, arguments[0], arguments[1], "merge")
    else:
        warehouse.initialize()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(st.tuples(steps, st.none() | st.integers(1, 12)), min_size=1, max_size=6))
def test_any_sequence_of_runs_killed_at_any_lake_file_leaves_the_lake_equal_to_the_warehouse(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, runs: list[Any]
) -> None:
    """Each run is killed (or not) when it is about to put its n-th lake file in place: during its own files, or
    while it completes what an earlier killed run left. The next run starts on a fresh Warehouse object, as a new
    process would; after the last one opens the warehouse, the lake equals it."""
    data_dir = tmp_path_factory.mktemp("runs") / "data"
    Warehouse(data_dir, ZONE).initialize()
    for step, kill_at in runs:
        with monkeypatch.context() as patched, contextlib.suppress(Killed):
            patched.setattr(lake, "_commit_file", KillAtFile(kill_at))
            apply(Warehouse(data_dir, ZONE), step)
    warehouse = Warehouse(data_dir, ZONE)
    warehouse.initialize()
    assert_lake_equals_warehouse(warehouse)


class KillAtFile:
    """lake._commit_file that kills the run instead of putting its n-th file in place (None: never)."""

    put_in_place = staticmethod(lake._commit_file)

    def __init__(self, kill_at: int | None) -> None:
        self._kill_at = kill_at
        self._files = 0

    def __call__(self, temporary: Path, directory: Path) -> lake.LakeWrite:
        self._files += 1
        if self._files == self._kill_at:
            raise Killed
        return self.put_in_place(temporary, directory)
