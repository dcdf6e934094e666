"""goods_history in the lake is partitioned by the UTC month its version closed, so a night's work is bounded by what
changed, not by all the history ever kept: a goods landing rewrites the open versions' partition and the months its
closings fall in, and no other month's file. The lake still equals the warehouse after any sequence of landings, a
kill between a commit and its lake write is completed by the next writer, and a lake that still has goods_history
as one file is moved to the months layout by its next writer, without a view ever counting a row twice.

The months a landing touches are worked out here from the warehouse's rows before and after it (which versions
closed, and when, read in UTC by Python), not taken from the code under test.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from onec import lake
from onec.delta_lake import DeltaLake, DeltaTarget
from onec.lake_check import OldPartitioning, check_lake
from onec.lake_load import LakeLoadError, build_warehouse_from_lake
from onec.lake_views import write_views
from onec.validation import check_goods
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, good
from tests.lake_equality import (
    LAKE_LAYOUT,
    as_one_history_file,
    assert_delta_lake_equals_warehouse,
    assert_lake_equals_warehouse,
)

REPOSITORY = Path(__file__).resolve().parents[2]
KILLED = 9
FIRST_DAY = dt.date(2026, 11, 1)
SKUS = ("A", "B", "C", "D")
STAMPS = (
    "2026-01-15T10:00:00",
    "2026-03-01T01:30:00",  # Moscow, 1 March: still February in UTC
    "2026-03-20T12:00:00",
    "2026-06-30T23:59:00",
    "2026-07-01T02:00:00",  # Moscow, 1 July: 30 June in UTC
    "2026-10-10T08:00:00",
)
"""1C's modified_at of the positions (the 1C zone, Moscow): a closing falls in the month of its successor's stamp,
so these put closings in months long before the landing, two of them on a month's edge where UTC and Moscow
disagree."""
OPEN = "__HIVE_DEFAULT_PARTITION__"

Position = tuple[str, int, str]
"""(sku, quantity, modified_at) of one position in a snapshot."""
positions = st.lists(
    st.tuples(st.sampled_from(SKUS), st.integers(1, 3), st.sampled_from(STAMPS)),
    unique_by=lambda p: p[0],
    max_size=len(SKUS),
)


def land(warehouse: Warehouse, day: dt.date, snapshot: list[Position], run_id: str) -> None:
    """A complete goods snapshot of `day` (the newest: history follows it)."""
    records = [good(sku, quantity, modified) for sku, quantity, modified in snapshot]
    with warehouse.goods_snapshot(day, run_id=run_id, source="json") as landing:
        landing.add(check_goods(records, snapshot_date=day, timezone=ZONE, run_id=run_id))
        landing.commit()


def history(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT sku, warehouse, valid_from, valid_to FROM goods_history")


def months_closed_between(before: pl.DataFrame, after: pl.DataFrame) -> set[str]:
    """The UTC months (YYYY-MM-01) of the versions open before and closed after: the folders a landing may change
    besides the open one."""
    key = ["sku", "warehouse", "valid_from"]
    was_open = before.filter(pl.col("valid_to").is_null()).select(key)
    closed = after.filter(pl.col("valid_to").is_not_null()).join(was_open, on=key, nulls_equal=True)
    return {stamp.astimezone(dt.UTC).date().replace(day=1).isoformat() for stamp in closed["valid_to"].to_list()}


def month_files(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    """closed_month folder value → (inode, mtime) of its file: a rewrite (a new file renamed into place) changes
    the inode."""
    found = {}
    for path in (warehouse.lake_dir / "goods_history").glob(f"closed_month=*/{lake.FILE_NAME}"):
        status = path.stat()
        found[path.parent.name.split("=", 1)[1]] = (status.st_ino, status.st_mtime_ns)
    return found


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snapshots=st.lists(positions, min_size=2, max_size=6))
def test_landings_rewrite_only_the_open_versions_and_the_months_their_closings_fall_in(
    tmp_path_factory: pytest.TempPathFactory, snapshots: list[list[Position]]
) -> None:
    warehouse = Warehouse(tmp_path_factory.mktemp("history") / "data", ZONE)
    warehouse.initialize()
    for index, snapshot in enumerate(snapshots):
        before, files_before = history(warehouse), month_files(warehouse)
        land(warehouse, FIRST_DAY + dt.timedelta(days=index), snapshot, f"run-{index}")
        touched = months_closed_between(before, history(warehouse))

        assert_lake_equals_warehouse(warehouse)
        files_after = month_files(warehouse)
        untouched = {month for month in files_before if month not in touched and month != OPEN}
        rewritten = sorted(month for month in untouched if files_after.get(month) != files_before[month])
        assert not rewritten, f"landing {index} rewrote months none of its closings fall in: {rewritten}"
        assert touched <= set(files_after), f"closed months without a file: {touched - set(files_after)}"


THIRD: list[Position] = [("A", 3, STAMPS[3]), ("B", 2, STAMPS[1]), ("C", 1, STAMPS[0])]
HISTORY_MONTHS = {"2026-02-01", "2026-03-01", "2026-06-01", OPEN}
"""The folders of `history_of_months`: B's first version closed on 1 March in Moscow (February in UTC), A's first on
20 March, A's second on 30 June; and the open versions. (No position leaves: that would close it at the clock.)"""


def history_of_months(warehouse: Warehouse) -> None:
    warehouse.initialize()
    land(warehouse, FIRST_DAY, [("A", 1, STAMPS[0]), ("B", 1, STAMPS[0]), ("C", 1, STAMPS[0])], "first")
    land(warehouse, FIRST_DAY + dt.timedelta(days=1), [("A", 2, STAMPS[2]), *THIRD[1:]], "second")
    land(warehouse, FIRST_DAY + dt.timedelta(days=2), THIRD, "third")


KILLED_SNAPSHOT: list[Position] = [THIRD[0], ("B", 9, STAMPS[4]), THIRD[2]]
"""B changes at 02:00 on 1 July in Moscow: its version closes in June (UTC), a month that already has a file."""


def killed_landing(data_dir: str) -> None:
    """Run in a child process: a landing that closes B's version in July (UTC June) and dies at its first lake file,
    after the DuckDB commit."""

    def die(*args: object, **kwargs: object) -> None:
        os._exit(KILLED)

    lake.write_partitions = die  # type: ignore[assignment]
    warehouse = Warehouse(Path(data_dir), ZONE)
    land(warehouse, FIRST_DAY + dt.timedelta(days=3), KILLED_SNAPSHOT, "killed")
    raise AssertionError("the landing finished: the kill never happened")


def killed_initialize(data_dir: str, module: str, kill_at: str) -> None:
    """Run in a child process: an initialize that dies at `kill_at` of onec.`module` while moving to the months."""

    def die(*args: object, **kwargs: object) -> None:
        os._exit(KILLED)

    setattr(importlib.import_module(f"onec.{module}"), kill_at, die)
    Warehouse(Path(data_dir), ZONE).initialize()
    raise AssertionError("initialize finished: the kill never happened")


def run_killed(function: str, data_dir: Path, *arguments: str) -> None:
    call = ", ".join(repr(argument) for argument in (str(data_dir), *arguments))
    code = f"from tests.core.test_history_months import {function}; {function}({call})"
    child = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, timeout=120, check=False)
    assert child.returncode == KILLED, child.stderr.decode()


def pending(warehouse: Warehouse) -> set[tuple[str, str | None]]:
    rows = warehouse.query("SELECT lake_table, partition_date FROM lake_pending").rows()
    return {(table, day.isoformat() if day else None) for table, day in rows}


@pytest.mark.parametrize("next_writer", ["initialize", "landing"])
def test_a_landing_killed_before_its_lake_write_records_its_months_and_the_next_writer_writes_them(
    tmp_path: Path, next_writer: str
) -> None:
    warehouse = Warehouse(tmp_path / "data", ZONE)
    history_of_months(warehouse)
    files_before = month_files(warehouse)

    run_killed("killed_landing", warehouse.data_dir)
    day = (FIRST_DAY + dt.timedelta(days=3)).isoformat()
    assert pending(warehouse) == {("goods", day), ("goods_history", "2026-06-01"), ("goods_history", None)}
    assert month_files(warehouse) == files_before, "the kill must come before the lake write"

    if next_writer == "initialize":
        Warehouse(warehouse.data_dir, ZONE).initialize()
    else:
        land(warehouse, FIRST_DAY + dt.timedelta(days=4), KILLED_SNAPSHOT, "next")

    assert not pending(warehouse)
    assert_lake_equals_warehouse(warehouse)


def view_count(lake_root: Path, table: str) -> int:
    """Rows of a view of `lake/views.sql`, as an analyst with only DuckDB reads it."""
    analyst = duckdb.connect()
    cwd = Path.cwd()
    os.chdir(lake_root)
    try:
        analyst.execute((lake_root / "views.sql").read_text("utf-8"))
        row = analyst.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 — a test constant
        return int(row[0]) if row else 0
    finally:
        os.chdir(cwd)
        analyst.close()


def legacy_views(lake_root: Path) -> None:
    """views.sql as versions before closed-month partitions wrote it (goods_history one file per base)."""
    view = (
        "CREATE OR REPLACE VIEW goods_history AS"
        " SELECT * FROM read_parquet('base=*/goods_history/*.parquet', hive_partitioning = true);\n"
    )
    (lake_root / "views.sql").write_text(view, "utf-8")


def upgrade_by(warehouse: Warehouse, writer: str) -> Any:
    if writer == "initialize":
        return Warehouse(warehouse.data_dir, ZONE).initialize()
    if writer == "landing":
        return land(warehouse, FIRST_DAY + dt.timedelta(days=5), THIRD, "after-upgrade")
    return check_lake(Warehouse(warehouse.data_dir, ZONE), repair=True)


@pytest.mark.parametrize("writer", ["initialize", "landing", "check"])
def test_a_lake_with_goods_history_in_one_file_moves_to_months_at_its_next_writer(tmp_path: Path, writer: str) -> None:
    warehouse = Warehouse(tmp_path / "data", ZONE)
    history_of_months(warehouse)
    as_one_history_file(warehouse)
    legacy_views(warehouse.lake_root)
    legacy_file = warehouse.lake_dir / "goods_history" / lake.FILE_NAME
    rows = warehouse.query("SELECT count(*) FROM goods_history").item()
    assert view_count(warehouse.lake_root, "goods_history") == rows  # the old layout, read through its own view

    result = upgrade_by(warehouse, writer)

    assert not legacy_file.exists()
    assert set(month_files(warehouse)) == HISTORY_MONTHS
    assert_lake_equals_warehouse(warehouse)
    assert (
        view_count(warehouse.lake_root, "goods_history") == warehouse.query("SELECT count(*) FROM goods_history").item()
    )
    assert not pending(warehouse)
    if writer == "check":
        assert not result.differences, "moving the layout is not a difference the check reports"
    assert not check_lake(warehouse, repair=False).differences


@pytest.mark.parametrize(
    ("module", "kill_at"), [("lake", "write_partitions"), ("lake_mirror", "remove_legacy_history")]
)
def test_an_upgrade_killed_half_way_is_done_again_by_the_next_writer(tmp_path: Path, module: str, kill_at: str) -> None:
    """Killed at the first file of the new layout, or with every month written and the views moved to them but the
    old file still there: the views read the base's rows once throughout (beside a base that has moved already),
    and the next writer finishes."""
    warehouse, moved = (Warehouse(tmp_path / "data", ZONE, base=base) for base in ("main", "north"))
    history_of_months(moved)
    history_of_months(warehouse)
    as_one_history_file(warehouse)
    write_views(warehouse.lake_root)
    rows = sum(w.query("SELECT count(*) FROM goods_history").item() for w in (warehouse, moved))
    assert view_count(warehouse.lake_root, "goods_history") == rows

    run_killed("killed_initialize", warehouse.data_dir, module, kill_at)
    assert (warehouse.lake_dir / "goods_history" / lake.FILE_NAME).exists()
    assert view_count(warehouse.lake_root, "goods_history") == rows

    Warehouse(warehouse.data_dir, ZONE).initialize()
    assert not (warehouse.lake_dir / "goods_history" / lake.FILE_NAME).exists()
    assert view_count(warehouse.lake_root, "goods_history") == rows
    assert_lake_equals_warehouse(warehouse)


def test_a_delta_goods_history_partitioned_by_base_alone_is_repartitioned_keeping_every_base(tmp_path: Path) -> None:
    """Delta cannot change a table's partition columns in place: the first writer of either base rewrites the
    table in one commit, its own base from its warehouse and the other's from the lake; the warehouse built from
    the lake refuses the old layout until then, and follows the new one after."""
    lake_root = DeltaLake(str(tmp_path / "lake"))
    bases = {
        base: Warehouse(tmp_path / base, ZONE, base=base, delta=DeltaTarget(lake_root, base))
        for base in ("north", "south")
    }
    for warehouse in bases.values():
        history_of_months(warehouse)
    current = lake_root.table("goods_history")
    assert current is not None
    old_layout = pl.from_arrow(current.to_pyarrow_table())
    assert isinstance(old_layout, pl.DataFrame)
    write_deltalake(
        lake_root.table_uri("goods_history"),
        old_layout.drop("closed_month").to_arrow(),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=["base"],
    )
    shared = Warehouse(tmp_path / "shared", ZONE)
    shared.initialize()
    with shared.writer() as con:
        for table in LAKE_LAYOUT:
            con.execute(f"ALTER TABLE {table} ADD COLUMN base VARCHAR")
    with pytest.raises(LakeLoadError, match="partitioned by base, not by base, closed_month"):
        build_warehouse_from_lake(shared, lake_root)

    with pytest.raises(OldPartitioning, match=r"partitioned by base .* repartitions it"):
        check_lake(bases["north"], repair=False)

    bases["north"].initialize()

    repartitioned = lake_root.table("goods_history")
    assert repartitioned is not None
    assert repartitioned.metadata().partition_columns == ["base", "closed_month"]
    for warehouse in bases.values():
        assert_delta_lake_equals_warehouse(warehouse)
    bases["south"].initialize()
    assert lake_root.table("goods_history").version() == repartitioned.version(), "repartitioned once"  # type: ignore[union-attr]
    build_warehouse_from_lake(shared, lake_root)
    for base, warehouse in bases.items():
        built = shared.query("SELECT * EXCLUDE (base) FROM goods_history WHERE base = ? ORDER BY ALL", [base])
        assert_frame_equal(built, warehouse.query("SELECT * FROM goods_history ORDER BY ALL"), check_exact=True)


def test_the_views_hold_every_base_while_some_still_have_goods_history_in_one_file(tmp_path: Path) -> None:
    """Bases move at their own next writer: the views that one base's move rewrites still read the others' old
    files, and never a base's old file beside its months."""
    data = tmp_path / "data"
    bases = [Warehouse(data, ZONE, base=base) for base in ("main", "north")]
    for warehouse in bases:
        history_of_months(warehouse)
        as_one_history_file(warehouse)
    rows = sum(warehouse.query("SELECT count(*) FROM goods_history").item() for warehouse in bases)

    bases[0].initialize()
    assert not (bases[0].lake_dir / "goods_history" / lake.FILE_NAME).exists()
    assert (bases[1].lake_dir / "goods_history" / lake.FILE_NAME).exists()
    assert view_count(data / "lake", "goods_history") == rows

    bases[1].initialize()
    assert view_count(data / "lake", "goods_history") == rows
    assert "data.parquet" not in (data / "lake" / "views.sql").read_text("utf-8")
