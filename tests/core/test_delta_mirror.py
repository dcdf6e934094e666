"""ONEC_LAKE_FORMAT=delta on one machine: landings mirror to the Delta lake in the same order as to the Parquet lake
(warehouse commit, then lake, the work recorded in `lake_pending`), so the Delta lake equals the warehouse after any
sequence of runs, each killed (or not) at any of its Delta commits, once the next run has opened the warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import deltalake
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onec import delta_lake
from onec.cli import main
from onec.config import Settings
from onec.delta_lake import DeltaLake, DeltaTarget, Partitions, replace_frame
from onec.lake_check import check_lake
from onec.warehouse import Warehouse
from tests.core.test_lake_mirror import GOODS, SPREAD_DOCUMENTS, Killed, apply, merge_documents, merge_goods, steps
from tests.core.test_warehouse import ZONE
from tests.lake_equality import assert_delta_lake_equals_warehouse, lake_rows
from tests.s3_server import S3Server


def delta_warehouse(data_dir: Path, base: str = delta_lake.DEFAULT_BASE) -> Warehouse:
    """A warehouse mirroring to the Delta lake its settings name (ONEC_LAKE_FORMAT=delta, the default location)."""
    configured = Settings.from_env({"ONEC_DATA_DIR": str(data_dir), "ONEC_LAKE_FORMAT": "delta"})
    return Warehouse(data_dir, ZONE, base=base, delta=delta_lake.configured_target(configured, base))


def test_landings_mirror_to_the_delta_lake_partitioned_by_base_and_not_to_parquet(tmp_path: Path) -> None:
    warehouse = delta_warehouse(tmp_path / "data")
    warehouse.initialize()
    merge_documents(warehouse, SPREAD_DOCUMENTS, "first")
    merge_goods(warehouse, GOODS, dt.date(2026, 1, 31), "first")

    assert_delta_lake_equals_warehouse(warehouse)
    assert lake_rows(warehouse, "documents") is None, "the Parquet lake is not written as well"
    assert warehouse.delta is not None
    table = warehouse.delta.lake.table("document_lines")
    assert table is not None
    assert table.metadata().partition_columns == ["base", "doc_type", "doc_date"]
    assert (tmp_path / "data" / "delta" / "document_lines" / "base=main" / "doc_type=goods-receipt").is_dir()


def test_a_landing_mirrors_to_the_delta_lake_on_s3_and_check_compares_it_there(
    tmp_path: Path, s3_server: S3Server
) -> None:
    configured = Settings.from_env({"ONEC_DATA_DIR": str(tmp_path / "data"), **s3_server.environment("mirror")})
    warehouse = Warehouse(tmp_path / "data", ZONE, delta=delta_lake.configured_target(configured))
    warehouse.initialize()
    merge_documents(warehouse, SPREAD_DOCUMENTS, "first")
    merge_goods(warehouse, GOODS, dt.date(2026, 1, 31), "first")

    assert_delta_lake_equals_warehouse(warehouse)
    assert not (tmp_path / "data" / "delta").exists()
    assert check_lake(warehouse, repair=False).lake_equals_warehouse


def test_two_bases_share_the_lake_and_replace_only_their_own_partitions(tmp_path: Path) -> None:
    """Two warehouses (one per base) mirror to one lake; each landing replaces its base's partitions only."""
    lake_root = tmp_path / "lake"
    north = Warehouse(tmp_path / "north", ZONE, base="north", delta=DeltaTarget(DeltaLake(str(lake_root)), "north"))
    south = Warehouse(tmp_path / "south", ZONE, base="south", delta=DeltaTarget(DeltaLake(str(lake_root)), "south"))
    for warehouse in (north, south):
        warehouse.initialize()
        merge_documents(warehouse, SPREAD_DOCUMENTS, "first")
        merge_goods(warehouse, GOODS, dt.date(2026, 1, 31), "first")
    merge_documents(north, SPREAD_DOCUMENTS[:2], "again")
    merge_goods(south, GOODS[:1], dt.date(2026, 1, 31), "again")

    assert_delta_lake_equals_warehouse(north)
    assert_delta_lake_equals_warehouse(south)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(st.tuples(steps, st.none() | st.integers(1, 6)), min_size=1, max_size=5))
def test_any_sequence_of_runs_killed_at_any_delta_commit_leaves_the_lake_equal_to_the_warehouse(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, runs: list[Any]
) -> None:
    data_dir = tmp_path_factory.mktemp("runs") / "data"
    delta_warehouse(data_dir).initialize()
    for step, kill_at in runs:
        with monkeypatch.context() as patched, contextlib.suppress(Killed):
            patched.setattr(delta_lake, "write_deltalake", KillAtCommit(kill_at))
            apply(delta_warehouse(data_dir), step)
    warehouse = delta_warehouse(data_dir)
    warehouse.initialize()
    assert_delta_lake_equals_warehouse(warehouse)


class KillAtCommit:
    """delta_lake.write_deltalake that kills the run instead of making its n-th commit (None: never)."""

    commit = staticmethod(deltalake.write_deltalake)

    def __init__(self, kill_at: int | None) -> None:
        self._kill_at = kill_at
        self._commits = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self._commits += 1
        if self._commits == self._kill_at:
            raise Killed
        self.commit(*args, **kwargs)


def test_check_finds_and_repairs_a_delta_lake_changed_behind_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone else's commits (a day of lines deleted, one goods quantity changed) are found by `check`, named,
    and replaced from the warehouse; the other base's partitions are not this warehouse's business."""
    warehouse = delta_warehouse(tmp_path / "data")
    warehouse.initialize()
    merge_documents(warehouse, SPREAD_DOCUMENTS, "first")
    merge_goods(warehouse, GOODS, dt.date(2026, 1, 31), "first")
    assert warehouse.delta is not None
    lake = warehouse.delta.lake
    other_base = lake.scan("goods").collect().with_columns(pl.lit("north").alias("base"))
    replace_frame(lake, "goods", Partitions("north", None, "snapshot_date", (dt.date(2026, 1, 31),)), other_base)
    lines = lake.table("document_lines")
    assert lines is not None
    lines.delete("base = 'main' AND doc_date = '2026-01-04'")
    goods = lake.scan("goods").filter(pl.col("base") == "main").collect()
    bumped = pl.when(pl.col("sku") == "B").then(pl.col("quantity") + 1).otherwise("quantity")
    edited = goods.with_columns(bumped.cast(pl.Decimal(18, 3)))
    replace_frame(lake, "goods", Partitions("main", None, "snapshot_date", (dt.date(2026, 1, 31),)), edited)

    found = check_lake(warehouse, repair=False)
    assert [d.describe() for d in found.differences] == [
        "goods/snapshot_date=2026-01-31: same row count (3), different content",
        "document_lines/doc_type=goods-receipt/doc_date=2026-01-04: missing from the lake; warehouse 1 rows",
    ]
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONEC_TIMEZONE", ZONE)
    monkeypatch.setenv("ONEC_LAKE_FORMAT", "delta")
    assert main(["check"]) == 0
    assert "Rewrote them from the warehouse" in capsys.readouterr().out
    assert_delta_lake_equals_warehouse(warehouse)
    assert lake.scan("goods").filter(pl.col("base") == "north").collect().height == len(GOODS)


def test_onec_etl_sync_writes_the_delta_lake_on_s3_from_the_environment(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line as a worker runs it: ONEC_LAKE_* name the S3 lake; the secret never shows."""
    for name, value in {**s3_server.environment("cli-sync"), "ONEC_SANDBOX_DOCUMENTS": "120"}.items():
        monkeypatch.setenv(name, value)
    assert main(["sync", "--types", "shipment"]) == 0
    assert main(["check", "--no-repair"]) == 0
    settings = Settings.from_env()
    warehouse = Warehouse(settings.data_dir, settings.timezone, delta=delta_lake.configured_target(settings))
    assert_delta_lake_equals_warehouse(warehouse)
    assert warehouse.query("SELECT count(*) FROM documents").item() > 0
    shown = capsys.readouterr()
    assert s3_server.environment("x")["ONEC_LAKE_S3_SECRET_ACCESS_KEY"] not in shown.out + shown.err
    assert "of base main in the Delta lake s3://lake/cli-sync" in shown.out
