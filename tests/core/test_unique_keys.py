"""Unique keys are checked inside each landing's transaction, not declared as primary keys (DuckDB holds a
transaction's primary-key index in memory it cannot spill, so a big landing grew without bound and failed to commit).
The check must still refuse duplicates, and warehouses created with the old keys lose them without losing rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

import onec.warehouse as warehouse_module
from onec.warehouse import Warehouse
from tests.core.test_warehouse import ZONE, doc, good, land_documents, land_goods, snapshot

BIG_TABLES = ("goods", "documents", "document_lines")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    return w


def primary_keys(w: Warehouse) -> set[str]:
    rows = w.query("SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'").rows()
    return {table for (table,) in rows}


def test_the_big_tables_have_no_primary_key(warehouse: Warehouse) -> None:
    assert not primary_keys(warehouse) & set(BIG_TABLES)


def test_a_landing_that_would_duplicate_goods_rolls_back(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    land_goods(warehouse, [good("A"), good("B")])
    before = snapshot(warehouse)
    insert = warehouse_module._insert_goods_versions

    def twice(*args: Any) -> dict[str, int]:
        insert(*args)
        return insert(*args)

    monkeypatch.setattr(warehouse_module, "_insert_goods_versions", twice)
    with pytest.raises(RuntimeError, match=r"two goods rows with key \(sku, warehouse, snapshot_date\)"):
        land_goods(warehouse, [good("A", 2)])
    after = snapshot(warehouse)
    assert all(after[name].equals(before[name]) for name in before)


def test_a_landing_that_would_duplicate_lines_rolls_back(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    land_documents(warehouse, [doc("1")])
    before = snapshot(warehouse)
    original = warehouse_module._dedupe_documents

    def with_an_extra_line(con: duckdb.DuckDBPyConnection, *args: Any) -> Any:
        result = original(con, *args)
        con.execute("INSERT INTO document_lines SELECT * FROM document_lines WHERE number = '2'")
        return result

    monkeypatch.setattr(warehouse_module, "_dedupe_documents", with_an_extra_line)
    with pytest.raises(RuntimeError, match=r"two document_lines rows with key \(doc_type, number, line\)"):
        land_documents(warehouse, [doc("1"), doc("2")])
    after = snapshot(warehouse)
    assert all(after[name].equals(before[name]) for name in before)


def test_initialize_drops_the_primary_keys_of_an_older_warehouse_and_keeps_its_rows(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "data", ZONE)
    w.initialize()
    land_documents(w, [doc("1"), doc("2")])
    land_goods(w, [good("A"), good("B")])
    before = snapshot(w)
    keys = {"goods": "sku, warehouse, snapshot_date", "documents": "doc_type, number",
            "document_lines": "doc_type, number, line"}  # fmt: skip
    with w.writer() as con:  # rebuild the tables as older versions declared them (identifiers from `keys` only)
        for table, key in keys.items():
            columns = con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
                [table],
            ).fetchall()
            definition = ", ".join(f"{name} {kind}" for name, kind in columns)
            con.execute(f"CREATE TABLE {table}_old ({definition}, PRIMARY KEY ({key}))")
            con.execute(f"INSERT INTO {table}_old SELECT * FROM {table}")  # noqa: S608
            con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE {table}_old RENAME TO {table}")
    assert set(BIG_TABLES) <= primary_keys(w)

    w.initialize()
    w.initialize()
    assert not primary_keys(w) & set(BIG_TABLES)
    after = snapshot(w)
    assert all(after[name].equals(before[name]) for name in before)
    land_documents(w, [doc("1", qty=3)])
    assert w.query("SELECT quantity FROM document_lines WHERE number = '1'").item() == 3
