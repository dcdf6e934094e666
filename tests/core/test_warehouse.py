"""Landing: partition replace is idempotent, uniqueness is settled across the extract, failures leave no
trace, and the Parquet lake mirrors the tables."""

# ruff: noqa: S608 — table and column names below are test constants.

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from onec.validation import CheckedBatch, check_documents, check_goods
from onec.warehouse import ShrinkGuard, ShrinkRefused, Warehouse, WarehouseBusy

ZONE = "Europe/Moscow"
DAY = dt.date(2026, 1, 31)
JAN = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    return w


def doc(
    number: str, date: str = "2026-01-15T10:00:00", modified: str = "2026-01-31T10:00:00", qty: int = 10
) -> dict[str, Any]:
    return {
        "id": f"id-{number}", "number": number, "date": date, "status": "posted", "posted": True,
        "supplier": "ООО Поставщик", "warehouse": "wh-main", "modified_at": modified,
        "items": [{"line": 1, "sku": "PROD-001", "name": "Товар", "quantity": qty, "unit_price": "1.5",
                   "total": qty * 1.5}],
    }  # fmt: skip


def good(sku: str, quantity: Any = 1, modified: str = "2026-01-31T10:00:00") -> dict[str, Any]:
    return {
        "sku": sku,
        "name": "Товар",
        "quantity": quantity,
        "warehouse": "wh-main",
        "modified_at": modified,
    }


def docs_batch(records: list[Any], window: tuple[dt.date, dt.date] = JAN) -> CheckedBatch:
    return check_documents(records, doc_type="goods-receipt", date_from=window[0], date_to=window[1],
                           timezone=ZONE, run_id="r")  # fmt: skip


def goods_batch(records: list[Any]) -> CheckedBatch:
    return check_goods(records, snapshot_date=DAY, timezone=ZONE, run_id="r")


def land_documents(w: Warehouse, *pages: list[Any], window: tuple[dt.date, dt.date] = JAN) -> Any:
    with w.document_range("goods-receipt", *window, run_id="r", source="json") as landing:
        for page in pages:
            landing.add(docs_batch(page, window))
        return landing.commit({"pages": len(pages)})


def land_goods(w: Warehouse, *pages: list[Any]) -> Any:
    with w.goods_snapshot(DAY, run_id="r", source="json") as landing:
        for page in pages:
            landing.add(goods_batch(page))
        return landing.commit()


def snapshot(w: Warehouse) -> dict[str, pl.DataFrame]:
    return {
        "documents": w.query("SELECT * FROM documents ORDER BY number"),
        "lines": w.query("SELECT * FROM document_lines ORDER BY number, line"),
        "goods": w.query("SELECT * FROM goods ORDER BY sku"),
        "rejected": w.query("SELECT * EXCLUDE (rejected_at) FROM rejected_rows ORDER BY record_key, reason"),
    }


def test_initialize_is_idempotent_and_creates_the_tables(warehouse: Warehouse) -> None:
    warehouse.initialize()
    assert warehouse.table_counts() == dict.fromkeys(
        ("goods", "documents", "document_lines", "rejected_rows", "load_log"), 0
    )
    types = dict(warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'document_lines'"
    ).rows())  # fmt: skip
    assert types["quantity"] == "DECIMAL(18,3)" and types["unit_price"] == "DECIMAL(18,4)"
    assert types["total"] == "DECIMAL(18,2)" and types["line"] == "INTEGER"


def test_rerunning_a_partition_replaces_it(warehouse: Warehouse) -> None:
    pages = ([doc("1"), doc("2"), {"number": "bad"}], [doc("3", date="2026-01-31T23:30:00")])
    first = land_documents(warehouse, *pages)
    before = snapshot(warehouse)
    second = land_documents(warehouse, *pages)
    assert (first.rows, first.lines, first.rejected, second.rows) == (3, 3, 1, 3)
    for name, frame in snapshot(warehouse).items():
        assert_frame_equal(frame, before[name])
    assert warehouse.table_counts()["load_log"] == 2
    assert warehouse.query("SELECT doc_date FROM documents WHERE number = '3'").item() == dt.date(2026, 1, 31)


def test_a_partition_rerun_with_fewer_documents_removes_the_missing_ones(warehouse: Warehouse) -> None:
    land_documents(warehouse, [doc("1"), doc("2")])
    land_documents(warehouse, [doc("1")])
    assert warehouse.query("SELECT number FROM documents")["number"].to_list() == ["1"]
    assert warehouse.table_counts()["document_lines"] == 1


def test_other_partitions_and_types_are_left_alone(warehouse: Warehouse) -> None:
    land_documents(warehouse, [doc("old", date="2025-12-15T10:00:00")], window=(dt.date(2025, 12, 1), JAN[0]))
    land_documents(warehouse, [doc("1")])
    land_documents(warehouse, [doc("2")])
    assert warehouse.query("SELECT number FROM documents ORDER BY 1")["number"].to_list() == ["2", "old"]


def test_a_document_whose_date_moved_is_not_kept_twice(warehouse: Warehouse) -> None:
    land_documents(
        warehouse, [doc("1", date="2026-01-10T10:00:00")], window=(dt.date(2026, 1, 10), dt.date(2026, 1, 11))
    )
    report = land_documents(
        warehouse, [doc("1", date="2026-01-20T10:00:00")], window=(dt.date(2026, 1, 20), dt.date(2026, 1, 21))
    )
    assert warehouse.query("SELECT doc_date FROM documents")["doc_date"].to_list() == [dt.date(2026, 1, 20)]
    assert dt.date(2026, 1, 10) in report.partitions
    lake = warehouse.lake_dir / "documents" / "doc_type=goods-receipt"
    assert not (lake / "doc_date=2026-01-10").exists()
    assert (lake / "doc_date=2026-01-20" / "data.parquet").exists()


def test_identical_duplicates_collapse_silently(warehouse: Warehouse) -> None:
    report = land_documents(warehouse, [doc("1"), doc("2")], [doc("1")], [doc("1")])
    assert (report.rows, report.lines, report.duplicates, report.rejected) == (2, 2, 2, 0)
    assert warehouse.table_counts()["rejected_rows"] == 0


def test_differing_duplicates_keep_the_latest_and_reject_the_others(warehouse: Warehouse) -> None:
    older, newer = (
        doc("1", modified="2026-01-31T09:00:00", qty=5),
        doc("1", modified="2026-01-31T12:00:00", qty=7),
    )
    report = land_documents(warehouse, [newer], [older])
    assert (report.rows, report.duplicates, report.rejected) == (1, 1, 1)
    assert warehouse.query("SELECT quantity FROM document_lines").item() == 7
    rejected = warehouse.query("SELECT * FROM rejected_rows").row(0, named=True)
    assert rejected["reason"] == "duplicate key (doc_type, number): another version was kept"
    assert rejected["record_key"] == "1" and '"quantity":5' in rejected["raw"]


def test_same_key_and_time_but_different_lines_keeps_the_first_staged(warehouse: Warehouse) -> None:
    land_documents(warehouse, [doc("1", qty=3)], [doc("1", qty=4)])
    assert warehouse.query("SELECT quantity FROM document_lines").item() == 3


def test_duplicates_within_one_page_are_told_apart(warehouse: Warehouse) -> None:
    report = land_documents(warehouse, [doc("1", qty=5), doc("1", modified="2026-01-31T12:00:00", qty=9)])
    assert (report.rows, report.lines, report.rejected) == (1, 1, 1)
    assert warehouse.query("SELECT quantity FROM document_lines").item() == 9


def test_goods_snapshot_dedupe_and_replace(warehouse: Warehouse) -> None:
    report = land_goods(warehouse, [good("A"), good("B", 2)], [good("A"), good("B", 3, "2026-01-31T11:00:00")])
    assert (report.rows, report.duplicates, report.rejected) == (2, 2, 1)
    assert warehouse.query("SELECT sku, quantity FROM goods ORDER BY sku").rows() == [("A", 1), ("B", 3)]
    before = snapshot(warehouse)
    land_goods(warehouse, [good("A"), good("B", 2)], [good("A"), good("B", 3, "2026-01-31T11:00:00")])
    for name, frame in snapshot(warehouse).items():
        assert_frame_equal(frame, before[name])


def test_a_landing_that_raises_before_commit_leaves_the_warehouse_as_it_was(warehouse: Warehouse) -> None:
    land_documents(warehouse, [doc("1")])
    before = snapshot(warehouse)
    with (
        pytest.raises(RuntimeError, match="boom"),
        warehouse.document_range("goods-receipt", *JAN, run_id="r2", source="json") as landing,
    ):
        landing.add(docs_batch([doc("2"), doc("3")]))
        raise RuntimeError("boom")
    for name, frame in snapshot(warehouse).items():
        assert_frame_equal(frame, before[name])
    assert list(warehouse.staging_dir.iterdir()) == []


def test_a_failing_commit_rolls_back(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    land_documents(warehouse, [doc("1")])
    before = snapshot(warehouse)
    import onec.warehouse as module

    def explode(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(module, "_dedupe_documents", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        land_documents(warehouse, [doc("2")])
    for name, frame in snapshot(warehouse).items():
        assert_frame_equal(frame, before[name])


def test_batches_outside_the_scope_are_refused(warehouse: Warehouse) -> None:
    with warehouse.document_range("goods-receipt", dt.date(2026, 1, 1), dt.date(2026, 1, 2), run_id="r",
                                  source="json") as landing:  # fmt: skip
        with pytest.raises(ValueError, match="outside the landing's range"):
            landing.add(docs_batch([doc("1")]))
        with pytest.raises(ValueError, match="needs batches with goods"):
            wrong = goods_batch([good("A")])
            with warehouse.goods_snapshot(DAY, run_id="r", source="json") as goods_landing:
                goods_landing.add(CheckedBatch(goods=None, documents=None, lines=None, rejected=wrong.rejected))


def _hold_lock(path: str, ready: Any, release: Any) -> None:
    import fcntl

    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        ready.set()
        release.wait(10)


def test_a_second_writer_waits_then_fails_with_a_clear_error(tmp_path: Path) -> None:
    w = Warehouse(tmp_path, ZONE, lock_timeout_s=0.3)
    w.initialize()
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(tmp_path / ".warehouse.lock"), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(WarehouseBusy, match="one writer at a time"):
            land_documents(w, [doc("1")])
    finally:
        release.set()
        holder.join()
    assert land_documents(w, [doc("1")]).rows == 1


def test_stale_staging_is_removed_but_live_staging_is_kept(warehouse: Warehouse) -> None:
    stale = warehouse.staging_dir / "documents-dead"
    stale.mkdir(parents=True)
    (stale / "documents-000001.parquet").write_bytes(b"half")
    with warehouse.goods_snapshot(DAY, run_id="r", source="json") as landing:
        landing.add(goods_batch([good("A")]))
        warehouse.initialize()
        assert not stale.exists()
        assert len(list(warehouse.staging_dir.iterdir())) == 1
        assert landing.commit().rows == 1


def test_lake_is_readable_with_hive_partitioning_and_equals_the_tables(warehouse: Warehouse) -> None:
    land_documents(warehouse, [doc("1", date="2026-01-31T23:30:00"), doc("2", date="2026-01-02T00:10:00")])
    land_goods(warehouse, [good("A"), good("B", "2,5")])
    lake = warehouse.lake_dir
    for table, key in (("documents", "number"), ("document_lines", "number, line"), ("goods", "sku")):
        pattern = str(lake / table / "**" / "*.parquet")
        expected = warehouse.query(f"SELECT * FROM {table} ORDER BY {key}")
        with duckdb.connect() as con:
            con.execute(f"SET TimeZone = '{ZONE}'")
            from_duckdb = con.sql(
                f"SELECT * FROM read_parquet(?, hive_partitioning = true) ORDER BY {key}", params=[pattern]
            ).pl()
        from_polars = pl.scan_parquet(pattern, hive_partitioning=True).collect()
        assert_frame_equal(from_duckdb.select(expected.columns), expected)
        sort = [k.strip() for k in key.split(",")]
        assert_frame_equal(from_polars.select(expected.columns).sort(sort), expected, check_dtypes=False)
        assert from_polars.select(expected.columns).sort(sort).schema == expected.schema
    files = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))
    assert "documents/doc_type=goods-receipt/doc_date=2026-01-31/data.parquet" in files
    assert "goods/snapshot_date=2026-01-31/data.parquet" in files
    assert pl.read_parquet(lake / files[0]).columns.count("doc_date") == 0


def test_lake_partition_that_became_empty_is_removed(tmp_path: Path) -> None:
    forced = Warehouse(tmp_path, ZONE, shrink_guard=ShrinkGuard(force=True))
    forced.initialize()
    land_documents(forced, [doc("1")])
    target = forced.lake_dir / "documents" / "doc_type=goods-receipt" / "doc_date=2026-01-15" / "data.parquet"
    assert target.exists()
    report = land_documents(forced, [])
    assert not target.exists() and report.lake_files == ()


def test_report_and_load_log(warehouse: Warehouse) -> None:
    report = land_documents(warehouse, [doc("1"), doc("2")], [{"number": "x"}])
    assert (report.rows, report.lines, report.rejected, report.duplicates) == (2, 2, 1, 0)
    assert len(report.lake_files) == 2 and report.lake_bytes > 0 and report.elapsed_s > 0
    log = warehouse.query("SELECT * FROM load_log").row(0, named=True)
    assert (log["entity"], log["doc_type"], log["rows"], log["lines"], log["rejected"]) == (
        "documents",
        "goods-receipt",
        2,
        2,
        1,
    )
    assert log["range_start"] == JAN[0] and log["range_end"] == JAN[1] and log["stats"] == '{"pages":2}'


def test_an_empty_or_all_rejected_replace_deletes_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    land_documents(warehouse, [doc("1"), doc("2")])
    land_goods(warehouse, [good("A"), good("B")])
    before = snapshot(warehouse)
    assert land_documents(warehouse, []).rows == 0
    all_rejected = land_documents(warehouse, [{"number": "3", "date": "2026-01-15T10:00:00"}])
    goods_rejected = land_goods(warehouse, [good("A", quantity="много")])
    assert (all_rejected.rows, all_rejected.rejected, goods_rejected.rows, goods_rejected.rejected) == (0, 1, 0, 1)
    after = snapshot(warehouse)
    for name in ("documents", "lines", "goods"):
        assert_frame_equal(after[name], before[name])
    assert sorted(after["rejected"]["record_key"].to_list()) == ["3", "A|wh-main"]
    forced = Warehouse(warehouse.data_dir, ZONE, shrink_guard=ShrinkGuard(force=True))
    land_documents(forced, [])
    assert forced.table_counts()["documents"] == 0  # forced: 1C really holds nothing on those days


def _many(prefix: str, count: int, date: str = "2026-01-15T10:00:00") -> list[dict[str, Any]]:
    return [doc(f"{prefix}{n:04d}", date=date) for n in range(count)]


def test_shrink_guard_refuses_a_replace_that_removes_most_of_a_partition(warehouse: Warehouse) -> None:
    land_documents(warehouse, _many("A", 30))
    before = snapshot(warehouse)
    with pytest.raises(ShrinkRefused) as refused:
        land_documents(warehouse, _many("A", 10))
    message = str(refused.value)
    assert "goods-receipt documents dated [2026-01-01, 2026-02-01)" in message
    assert "remove 20 of the 30 rows held" in message and "--force-replace" in message and "\n" not in message
    for name, frame in snapshot(warehouse).items():
        assert_frame_equal(frame, before[name])
    assert land_documents(warehouse, _many("A", 16)).rows == 16  # 14 of 30 removed: not more than half
    forced = Warehouse(warehouse.data_dir, ZONE, shrink_guard=ShrinkGuard(force=True))
    assert land_documents(forced, _many("A", 1)).rows == 1
    assert forced.table_counts()["documents"] == 1


def test_shrink_guard_looks_at_each_day_and_at_the_whole_range(warehouse: Warehouse) -> None:
    small_days = [d for day in range(1, 29) for d in _many(f"D{day:02d}-", 2, f"2026-01-{day:02d}T10:00:00")]
    land_documents(warehouse, small_days)
    with pytest.raises(ShrinkRefused, match=r"dated \[2026-01-01, 2026-02-01\)"):
        land_documents(warehouse, small_days[:10])  # no day holds 20, the range 56
    big_day = _many("B", 40, "2026-01-30T10:00:00")
    land_documents(warehouse, [*small_days, *big_day])
    with pytest.raises(ShrinkRefused, match="dated 2026-01-30: it would remove 40 of the 40"):
        land_documents(warehouse, [*small_days, *_many("C", 30, "2026-01-29T10:00:00")])


def test_shrink_guard_on_goods_compares_with_the_current_snapshot(warehouse: Warehouse) -> None:
    land_goods(warehouse, [good(f"P{n:03d}") for n in range(40)])
    with pytest.raises(ShrinkRefused, match=f"the goods snapshot of {DAY}: it would remove 39 of the 40"):
        land_goods(warehouse, [good("P000")])
    next_day = DAY + dt.timedelta(days=1)
    with (
        pytest.raises(ShrinkRefused, match=f"snapshot of {next_day} \\(the latest before it is {DAY}\\)"),
        warehouse.goods_snapshot(next_day, run_id="r", source="json") as landing,
    ):
        landing.add(check_goods([good("P000")], snapshot_date=next_day, timezone=ZONE, run_id="r"))
        landing.commit()
    assert warehouse.query("SELECT count(*) FROM goods").item() == 40
    lenient = Warehouse(warehouse.data_dir, ZONE, shrink_guard=ShrinkGuard(max_removed_share=0.99, min_rows=5))
    assert land_goods(lenient, [good("P000")]).rows == 1
