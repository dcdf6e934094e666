"""Import files for the push tests: documents in the §1.4 document-lines layout, written as CSV, Parquet or JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxEngine

WAREHOUSES = SandboxData.generate(documents=0, days=1).warehouses


def document_lines(count: int, *, prefix: str = "IMP", max_lines: int = 7, first: int = 0) -> list[dict[str, str]]:
    """`count` goods receipts of 1..max_lines lines each, as CSV rows with the §1.4 header (text values)."""
    rows: list[dict[str, str]] = []
    for n in range(first, first + count):
        for line in range(1, n % max_lines + 2):
            quantity, price = Decimal(line + n % 5), Decimal("12.5") + n % 3
            rows.append(
                {
                    "Number": f"{prefix}-{n:06d}",
                    "Date": f"2026-02-{1 + n % 27:02d}T{8 + n % 10:02d}:15:00",
                    "Counterparty": f"ООО Поставщик {n % 4}",
                    "Warehouse": WAREHOUSES[n % len(WAREHOUSES)],
                    "Line": str(line),
                    "SKU": f"IMP-SKU-{line:03d}",
                    "Name": f"Товар {line}",
                    "Quantity": str(quantity),
                    "UnitPrice": str(price),
                    "Total": str((quantity * price).quantize(Decimal("0.01"))),
                    "Notes": "",
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], *, separator: str = ",", encoding: str = "utf-8") -> Path:
    text = pl.DataFrame(rows).write_csv(separator=separator)
    path.write_bytes(text.encode(encoding))
    return path


def write_json(path: Path, rows: list[dict[str, str]]) -> Path:
    """The same documents as a JSON array in the contract's shape."""
    documents: dict[str, dict[str, Any]] = {}
    for row in rows:
        doc = documents.setdefault(
            row["Number"],
            {"number": row["Number"], "date": row["Date"], "supplier": row["Counterparty"],
             "warehouse": row["Warehouse"], "items": []},
        )  # fmt: skip
        doc["items"].append(
            {"line": int(row["Line"]), "sku": row["SKU"], "name": row["Name"], "quantity": row["Quantity"],
             "unit_price": row["UnitPrice"], "total": row["Total"]}
        )  # fmt: skip
    path.write_bytes(orjson.dumps(list(documents.values())))
    return path


def numbers(rows: list[dict[str, str]]) -> set[str]:
    return {row["Number"] for row in rows}


def fresh_data() -> SandboxData:
    return SandboxData.generate(documents=0, start=date(2026, 2, 1), days=28)


@contextmanager
def sandbox_client(engine: SandboxEngine, **changes: Any) -> Iterator[OneCClient]:
    """A client on the in-process sandbox; fast pacing unless the test says otherwise."""
    settings = dataclasses.replace(Settings.from_env(), **{"rate_limit": 1000.0, "timeout_s": 1.0, **changes})
    with open_client(settings, engine=engine) as client:
        yield client
