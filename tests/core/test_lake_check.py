"""`onec-etl check`: a lake file deleted, truncated, edited, left over or never written is found, named, and rewritten
from the warehouse; `--no-repair` only reports and exits 1."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from onec import lake
from onec.cli import main
from onec.lake_check import check_lake
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, doc, good, land_documents, land_goods
from tests.lake_equality import assert_lake_equals_warehouse

RECEIPTS = "documents/doc_type=goods-receipt"
OPEN_HISTORY = "goods_history/closed_month=__HIVE_DEFAULT_PARTITION__"
Damage = Callable[[Path], str]
"""Breaks the lake under the given folder; returns the partition the check must name."""


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Warehouse:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONEC_TIMEZONE", ZONE)
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    land_documents(w, [doc(str(n), date=f"2026-01-{n:02d}T10:00:00", qty=n) for n in range(1, 29, 3)])
    land_goods(w, [good("A"), good("B", "2,5"), good("C", 4)])
    return w


def delete_file(root: Path) -> str:
    (root / RECEIPTS / "doc_date=2026-01-04" / lake.FILE_NAME).unlink()
    return f"{RECEIPTS}/doc_date=2026-01-04: missing from the lake"


def truncate_file(root: Path) -> str:
    target = root / "document_lines/doc_type=goods-receipt/doc_date=2026-01-07" / lake.FILE_NAME
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    return "document_lines/doc_type=goods-receipt/doc_date=2026-01-07: unreadable lake file"


def edit_a_value(root: Path) -> str:
    target = root / "goods/snapshot_date=2026-01-31" / lake.FILE_NAME
    frame = pl.read_parquet(target)
    frame.with_columns(pl.when(pl.col("sku") == "B").then(pl.col("quantity") + 1).otherwise("quantity")).write_parquet(
        target
    )
    return "goods/snapshot_date=2026-01-31: same row count (3), different content"


def drop_a_row(root: Path) -> str:
    target = root / OPEN_HISTORY / lake.FILE_NAME
    pl.read_parquet(target).head(2).write_parquet(target)
    return f"{OPEN_HISTORY}: lake 2 rows, warehouse 3"


def leave_a_stale_partition(root: Path) -> str:
    source = root / RECEIPTS / "doc_date=2026-01-10"
    shutil.copytree(source, root / RECEIPTS / "doc_date=2026-01-11")
    return f"{RECEIPTS}/doc_date=2026-01-11: in the lake (1 rows) but not in the warehouse"


DAMAGES = [delete_file, truncate_file, edit_a_value, drop_a_row, leave_a_stale_partition]


def test_an_intact_lake_passes(warehouse: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--no-repair"]) == 0
    out = capsys.readouterr().out
    assert "The lake equals the warehouse." in out
    partitions = (
        10 + 10 + 1 + 1
    )  # receipts and their lines on 10 days, one goods snapshot, goods_history's open versions
    assert f"Compared {partitions} lake partitions" in out


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_lake_is_reported_then_repaired(
    warehouse: Warehouse, damage: Damage, capsys: pytest.CaptureFixture[str]
) -> None:
    named = damage(warehouse.lake_dir)

    assert main(["check", "--no-repair"]) == 1
    report = capsys.readouterr()
    assert named in report.out
    assert "1 partitions differed" in report.out
    assert "the lake differs from the warehouse in 1 partitions" in report.err

    assert main(["check"]) == 0
    assert "the lake now equals the warehouse" in capsys.readouterr().out
    assert_lake_equals_warehouse(warehouse)
    assert main(["check", "--no-repair"]) == 0


def test_every_damage_at_once_is_found_and_repaired_in_one_pass(warehouse: Warehouse) -> None:
    named = sorted(damage(warehouse.lake_dir).split(":")[0] for damage in DAMAGES)
    litter = warehouse.lake_dir / RECEIPTS / "doc_date=2026-01-01" / ".data.parquet.dead.tmp"
    litter.write_bytes(b"PAR1")

    result = check_lake(warehouse, repair=True)

    assert sorted(d.partition.describe() for d in result.differences) == named
    assert result.repaired and result.lake_equals_warehouse and result.litter_removed == 1
    assert_lake_equals_warehouse(warehouse)


def test_a_lake_never_written_is_rebuilt_whole(warehouse: Warehouse) -> None:
    shutil.rmtree(warehouse.lake_dir)
    result = check_lake(warehouse, repair=True)
    assert len(result.differences) == result.partitions == 22
    assert_lake_equals_warehouse(warehouse)


def test_check_without_a_warehouse_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["check"]) == 1
    assert capsys.readouterr().err.startswith("onec-etl: error: no warehouse at ")
