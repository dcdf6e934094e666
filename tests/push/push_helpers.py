"""Import files for the push tests (documents in the §1.4 document-lines layout, written as CSV, Parquet or JSON),
and an observer of a sandbox that a push in another process is writing to."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl

from onec.client import OneCClient
from onec.config import Settings
from onec.connect import open_client
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxEngine

ROOT = Path(__file__).resolve().parents[2]
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


OBSERVER = "push-test-observer"
"""The observer's User-Agent, so a test can tell its requests from the push's."""


def read_page(base_url: str, doc_type: str, limit: int, offset: int) -> dict[str, Any]:
    """One page of a document type. A push spends the credential's whole rate budget, so this observer is throttled
    like any other client: it waits out each 429's Retry-After (bounded) instead of reading the error as a page;
    a sandbox with read faults on gets read again after a 5xx, a dropped connection or a cut body."""
    url = f"{base_url}/api/v1/documents/{doc_type}"
    deadline = time.monotonic() + 60
    while True:
        try:
            params = {"limit": limit, "offset": offset}
            response = httpx.get(url, params=params, headers={"user-agent": OBSERVER}, timeout=30)
            if response.status_code == 429 or response.status_code >= 500:
                raise _Again(float(response.headers.get("retry-after", "0.2")))
            response.raise_for_status()
            page: dict[str, Any] = orjson.loads(response.content)
            return page
        except (_Again, httpx.TransportError, orjson.JSONDecodeError) as error:
            if time.monotonic() > deadline:
                raise
            time.sleep(min(5.0, error.seconds if isinstance(error, _Again) else 0.2))


class _Again(Exception):
    """An answer to read again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"read again in {seconds} s")
        self.seconds = seconds


def held_count(base_url: str, doc_type: str) -> int:
    return int(read_page(base_url, doc_type, 1, 0)["pagination"]["total"])


def wait_for_progress(base_url: str, doc_type: str, push: subprocess.Popen[bytes]) -> None:
    """Until 1C holds more documents than before (the push is sending), or the push has ended."""
    start = held_count(base_url, doc_type)
    deadline = time.monotonic() + 60
    while push.poll() is None and held_count(base_url, doc_type) == start and time.monotonic() < deadline:
        time.sleep(0.3)


def killed_runs(
    command: list[str],
    env: dict[str, str],
    base_url: str,
    kills: int,
    rng: random.Random,
    *,
    doc_type: str = "goods-receipt",
    within_s: float = 1.5,
) -> None:
    """Start the push `kills` times and SIGKILL it each time, at a random moment within `within_s` seconds after
    1C began to receive it."""
    for _ in range(kills):
        push = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_progress(base_url, doc_type, push)
        time.sleep(rng.uniform(0.0, within_s))
        push.send_signal(signal.SIGKILL)
        push.wait(timeout=10)
