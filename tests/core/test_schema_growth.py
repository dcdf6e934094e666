"""A warehouse created before the canonical schema grew (`document_lines.line_unit`, `unit_coefficient`) gets the new
columns on `initialize`, keeps its rows, and lands lines with and without a unit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb

from onec.validation import check_documents
from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
JAN = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))


def _document(number: str, **line: object) -> dict[str, object]:
    return {
        "id": f"id-{number}", "number": number, "date": "2026-01-15T10:00:00", "status": "posted", "posted": True,
        "supplier": "ООО Поставщик", "warehouse": "wh-main",
        "items": [{"line": 1, "sku": "PROD-001", "name": "Товар", "quantity": 20, "unit_price": "1.5", "total": 30,
                   **line}],
    }  # fmt: skip


def _land(warehouse: Warehouse, *documents: dict[str, object]) -> None:
    checked = check_documents(list(documents), doc_type="goods-receipt", date_from=JAN[0], date_to=JAN[1],
                              timezone=ZONE, run_id="r")  # fmt: skip
    with warehouse.document_range("goods-receipt", *JAN, run_id="r", source="json") as landing:
        landing.add(checked)
        landing.commit()


def test_an_older_warehouse_gains_the_unit_columns_and_keeps_its_lines(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path, ZONE)
    warehouse.initialize()
    _land(warehouse, _document("old"))
    with duckdb.connect(str(warehouse.database)) as con:  # the table as warehouses before the columns had it
        con.execute("ALTER TABLE document_lines DROP COLUMN unit_coefficient")
        con.execute("ALTER TABLE document_lines DROP COLUMN line_unit")
    warehouse.initialize()
    _land(warehouse, _document("old"), _document("packs", line_unit="упак (10 шт)", unit_coefficient="10"))
    rows = warehouse.query("SELECT number, quantity, line_unit, unit_coefficient FROM document_lines ORDER BY 1").rows()
    assert rows == [
        ("old", Decimal("20.000"), None, None),
        ("packs", Decimal("20.000"), "упак (10 шт)", Decimal("10.000000")),
    ]
