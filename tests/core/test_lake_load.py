"""With several workers the Delta lake is the system of record and one step builds the shared warehouse from it:
after any landings of the workers, the built warehouse's tables equal the workers' own; a rebuild reloads only the
partitions whose files changed; several bases are kept apart by a base column, which a warehouse that lands a base
itself cannot have: it refuses a lake of several and changes nothing."""

# ruff: noqa: S608 — table names below are test constants.

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from onec.delta_lake import DeltaLake, DeltaTarget
from onec.lake_load import LakeLoadError, build_warehouse_from_lake
from onec.warehouse import ShrinkGuard, Warehouse
from tests.core.test_lake_mirror import GOODS, SPREAD_DOCUMENTS, merge_documents, merge_goods
from tests.core.test_warehouse import ZONE, doc, good, land_documents
from tests.lake_equality import LAKE_LAYOUT

DAY = dt.date(2026, 1, 31)


def worker(tmp_path: Path, lake: DeltaLake, base: str) -> Warehouse:
    warehouse = Warehouse(tmp_path / f"worker-{base}", ZONE, base=base, delta=DeltaTarget(lake, base))
    warehouse.initialize()
    return warehouse


def assert_tables_equal(built: Warehouse, source: Warehouse, base: str | None = None) -> None:
    for table, (_, _, key) in LAKE_LAYOUT.items():
        expected = source.query(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        where = f"WHERE base = '{base}'" if base else ""
        actual = built.query(f"SELECT * FROM {table} {where} ORDER BY {', '.join(key)}")
        assert_frame_equal(actual.select(expected.columns), expected, check_exact=True)


def test_the_built_warehouse_follows_the_lake_partition_by_partition(tmp_path: Path) -> None:
    lake = DeltaLake(str(tmp_path / "lake"))
    landed = landed_worker(tmp_path, lake, "main")
    built = Warehouse(tmp_path / "shared", ZONE)

    first = build_warehouse_from_lake(built, lake)
    assert_tables_equal(built, landed)
    assert first.reloaded == {"goods": 1, "documents": 12, "document_lines": 12, "goods_history": 1}

    assert not build_warehouse_from_lake(built, lake).changed, "an unchanged lake reloads nothing"

    merge_documents(landed, [doc("2", date="2026-01-02T10:00:00", qty=9)], "second")
    landed.shrink_guard = ShrinkGuard(force=True)
    land_documents(landed, [], window=(dt.date(2026, 1, 4), dt.date(2026, 1, 5)))
    merge_goods(landed, [good("B", 7)], DAY + dt.timedelta(days=1), "second")
    second = build_warehouse_from_lake(built, lake)
    assert_tables_equal(built, landed)
    history = 2  # B's closed version (its month) and the open versions
    assert second.reloaded == {"goods": 1, "documents": 1, "document_lines": 1, "goods_history": history}
    assert second.removed == {"goods": 0, "documents": 1, "document_lines": 1, "goods_history": 0}


def landed_worker(tmp_path: Path, lake: DeltaLake, base: str, skip: int = 0) -> Warehouse:
    """A worker that landed the test's documents and goods (less the first `skip` of each) into the lake."""
    landed = worker(tmp_path, lake, base)
    merge_documents(landed, SPREAD_DOCUMENTS[skip:], "first")
    merge_goods(landed, GOODS[skip:], DAY, "first")
    return landed


def two_workers(tmp_path: Path, lake: DeltaLake) -> dict[str, Warehouse]:
    return {base: landed_worker(tmp_path, lake, base, skip) for skip, base in enumerate(("north", "south"))}


def test_a_lake_of_several_bases_loads_into_a_warehouse_no_base_lands_into_with_a_base_column(tmp_path: Path) -> None:
    lake = DeltaLake(str(tmp_path / "lake"))
    workers = two_workers(tmp_path, lake)
    built = Warehouse(tmp_path / "shared", ZONE)

    build_warehouse_from_lake(built, lake)

    for base, landed in workers.items():
        assert_tables_equal(built, landed, base)
    assert built.query("SELECT count(DISTINCT base) AS n FROM document_lines").item() == 2
    assert built.query("SELECT count(*) AS n FROM goods_history WHERE base IS NULL").item() == 0


def test_a_warehouse_that_held_one_base_keeps_its_rows_as_that_bases_when_a_second_base_comes(tmp_path: Path) -> None:
    lake = DeltaLake(str(tmp_path / "lake"))
    north = landed_worker(tmp_path, lake, "north")
    built = Warehouse(tmp_path / "shared", ZONE)
    build_warehouse_from_lake(built, lake)
    assert "base" not in built.query("SELECT * FROM documents LIMIT 0").columns, "one base needs no base column"

    south = landed_worker(tmp_path, lake, "south", skip=1)
    build_warehouse_from_lake(built, lake)

    assert_tables_equal(built, north, "north")
    assert_tables_equal(built, south, "south")


def test_a_warehouse_that_lands_a_base_itself_refuses_a_lake_of_several_and_changes_nothing(tmp_path: Path) -> None:
    lake = DeltaLake(str(tmp_path / "lake"))
    workers = two_workers(tmp_path, lake)
    north = workers["north"]
    before = {table: north.query(f"SELECT * FROM {table}") for table in LAKE_LAYOUT}

    with pytest.raises(LakeLoadError, match=r"holds bases north, south, but the warehouse .* lands a base itself"):
        build_warehouse_from_lake(north, lake)

    for table, rows in before.items():
        assert_frame_equal(north.query(f"SELECT * FROM {table}"), rows)
