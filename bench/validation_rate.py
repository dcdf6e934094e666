"""Rate of the JSON path: 1C-shaped document dicts → CheckedBatch (run: python bench/validation_rate.py)."""

from __future__ import annotations

import datetime as dt
import time

import orjson

from onec.validation import check_documents

DOCS, LINES_PER_DOC, PAGE = 20_000, 10, 1_000


def page_bytes(start: int) -> bytes:
    """One JSON page as 1C would send it, with the §1.9 variations mixed in (strings, commas, padding)."""
    docs = []
    for d in range(start, start + PAGE):
        docs.append(
            {
                "id": f"5f3d-{d}",
                "number": f"{d:08d}   ",
                "date": f"2026-01-{d % 28 + 1:02d}T{d % 24:02d}:30:00",
                "status": "posted",
                "posted": d % 2 == 0 or "Да",
                "supplier": "ООО Поставщик",
                "warehouse": "wh-main",
                "notes": "Приход от поставщика",
                "deleted": False,
                "modified_at": "2026-01-31T10:15:00",
                "items": [
                    {
                        "line": i + 1,
                        "sku": f"PROD-{i:03d}",
                        "name": "Товар",
                        "quantity": 10 if i % 2 else "10",
                        "unit_price": 15.5 if i % 3 else "15,50",
                        "total": 155.0,
                    }
                    for i in range(LINES_PER_DOC)
                ],
            }
        )
    return orjson.dumps({"data": docs})


def main() -> None:
    pages = [page_bytes(start) for start in range(0, DOCS, PAGE)]
    lines = rejected = 0
    decode = check = 0.0
    for raw in pages:
        started = time.perf_counter()
        records = orjson.loads(raw)["data"]
        decoded = time.perf_counter()
        batch = check_documents(
            records,
            doc_type="goods-receipt",
            date_from=dt.date(2026, 1, 1),
            date_to=dt.date(2026, 2, 1),
            timezone="Europe/Moscow",
            run_id="bench",
        )
        decode += decoded - started
        check += time.perf_counter() - decoded
        assert batch.lines is not None
        lines += batch.lines.height
        rejected += batch.rejected.height
    total = decode + check
    print(f"{lines} lines in {len(pages)} pages ({rejected} rejected docs)")
    print(f"check_documents: {check:.2f}s = {lines / check:,.0f} lines/s")
    print(f"orjson.loads + check_documents: {total:.2f}s = {lines / total:,.0f} lines/s")


if __name__ == "__main__":
    main()
