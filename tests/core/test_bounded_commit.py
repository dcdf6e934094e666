"""A commit's memory is bounded by a batch, not by the extract: staged rows stream from their files into the tables
(only keys are held in DuckDB temp tables), and lake files are written from a stream of batches, one partition
file open at a time, each renamed into place before the next partition starts."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onec import lake, lake_mirror
from onec.delta_lake import DeltaTarget
from onec.warehouse import LANDING_THREADS, Warehouse
from tests.core.test_warehouse import ZONE, doc, good, land_documents, land_goods

D1, D2, D3 = dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)
STAGED_ROW_COLUMNS = {"counterparty", "notes", "unit_price", "total", "name", "price", "quantity"}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    return w


def temp_tables_seen_by_commit(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Record the columns of every temp table the commit's connection holds once its transaction is done."""
    seen: dict[str, set[str]] = {}
    complete = lake_mirror.complete_pending

    def spying(con: duckdb.DuckDBPyConnection, root: Path, delta: DeltaTarget | None = None) -> Any:
        rows = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'temp'"
        ).fetchall()
        for table, column in rows:
            seen.setdefault(table, set()).add(column)
        return complete(con, root, delta)

    monkeypatch.setattr(lake_mirror, "complete_pending", spying)
    return seen


def test_a_documents_commit_keeps_only_keys_in_memory(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = temp_tables_seen_by_commit(monkeypatch)
    newer = doc("2", modified="2026-01-31T11:00:00", qty=7)
    report = land_documents(warehouse, [doc("1"), doc("2")], [newer, doc("3", date="2026-01-20T09:00:00")])
    assert (report.rows, report.lines, report.duplicates, report.rejected) == (3, 3, 1, 1)
    assert "s_versions" in seen
    assert set(seen) <= {"s_versions", "s_rejected", "s_lines_hash"}
    for table in ("s_versions", "s_lines_hash"):
        assert not seen.get(table, set()) & STAGED_ROW_COLUMNS, f"{table} holds staged row columns"


def test_a_goods_commit_keeps_only_keys_in_memory(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = temp_tables_seen_by_commit(monkeypatch)
    report = land_goods(warehouse, [good("A"), good("B", "2,5")], [good("A", 3, modified="2026-01-31T12:00:00")])
    assert (report.rows, report.duplicates, report.rejected) == (2, 1, 1)
    assert not seen["s_versions"] & STAGED_ROW_COLUMNS
    assert warehouse.query("SELECT quantity FROM goods WHERE sku = 'A'").item() == 3


def batch(days: list[dt.date], numbers: list[str]) -> pa.RecordBatch:
    stamp = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    return pa.record_batch(
        {
            "doc_date": pa.array(days, pa.date32()),
            "number": pa.array(numbers, pa.string()),
            "modified_at": pa.array([stamp] * len(days), pa.timestamp("us", tz=ZONE)),
        }
    )


def test_partitions_are_written_one_at_a_time_from_the_stream(tmp_path: Path) -> None:
    directories = {day: tmp_path / f"doc_date={day.isoformat()}" for day in (D1, D2, D3)}
    stale = directories[D3] / lake.FILE_NAME
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an old partition that has no rows any more")

    def batches() -> Iterator[pa.RecordBatch]:
        yield batch([D1, D1], ["1", "2"])
        yield batch([D1, D2], ["3", "4"])
        assert (directories[D1] / lake.FILE_NAME).exists(), "D1 must be in place before D2's last batch is read"
        assert not list(tmp_path.rglob("*.tmp"))[1:], "at most one partition file is open at a time"
        yield batch([D2], ["5"])

    written = lake.write_partitions(batches(), "doc_date", directories)
    assert [w.path is not None for w in written] == [True, True, False]
    assert not stale.exists() and not directories[D3].exists()
    d1 = pl.read_parquet(directories[D1] / lake.FILE_NAME)
    assert d1["number"].to_list() == ["1", "2", "3"] and "doc_date" not in d1.columns
    assert d1.schema["modified_at"] == pl.Datetime("us", ZONE)
    assert pl.read_parquet(directories[D2] / lake.FILE_NAME)["number"].to_list() == ["4", "5"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_run_of_null_keys_is_one_partition_written_in_one_piece(tmp_path: Path) -> None:
    """goods_history's open versions have a null closed_month. DuckDB leaves whatever bytes under a null slot, and
    Arrow's run-end encoding told such nulls apart: one write, one row group, per row (15 s for 20k open versions)."""
    days = pa.Array.from_buffers(  # two null days over different bytes, then D1
        pa.date32(), 3, [pa.py_buffer(bytes([0b100])), pa.py_buffer(struct.pack("<3i", 7, 9, D1.toordinal() - 719163))]
    )
    assert days.to_pylist() == [None, None, D1]
    rows = pa.record_batch({"closed_month": days, "number": pa.array(["1", "2", "3"], pa.string())})
    directories = {None: tmp_path / "closed_month=__HIVE_DEFAULT_PARTITION__", D1: tmp_path / "closed_month=d1"}

    lake.write_partitions([rows], "closed_month", directories)

    open_versions = pq.ParquetFile(directories[None] / lake.FILE_NAME)
    assert open_versions.metadata.num_rows == 2
    assert open_versions.metadata.num_row_groups == 1


def test_unsorted_batches_are_refused_and_leave_no_temporary_file(tmp_path: Path) -> None:
    directories = {day: tmp_path / f"doc_date={day.isoformat()}" for day in (D1, D2)}
    with pytest.raises(ValueError, match="not sorted"):
        lake.write_partitions([batch([D1, D2, D1], ["1", "2", "3"])], "doc_date", directories)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_commit_runs_single_threaded(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each DuckDB thread of a sort or window claims its own share of the cap: with two threads a goods snapshot of
    360k rows ran out of memory under 64 MB (LANDING_THREADS), with one it commits."""
    settings: dict[str, str] = {}
    complete = lake_mirror.complete_pending

    def spying(con: duckdb.DuckDBPyConnection, root: Path, delta: DeltaTarget | None = None) -> Any:
        rows = con.execute("SELECT name, value FROM duckdb_settings() WHERE name = 'threads'").fetchall()
        settings.update(rows)
        return complete(con, root, delta)

    monkeypatch.setattr(lake_mirror, "complete_pending", spying)
    land_goods(warehouse, [good("A")])
    assert settings["threads"] == str(LANDING_THREADS) == "1"
