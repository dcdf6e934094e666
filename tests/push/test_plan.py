"""Reading and validating import files, and packing documents within 1C's limits (no 1C involved)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onec.push import InputError, Limits, plan_import, read_records
from onec.push.chunking import batch_body, envelope_bytes, oversize_reason, pack
from onec.push.content import DocumentContent, OutgoingDocument
from onec.push.readers import read_record_chunks
from tests.push.push_helpers import document_lines, numbers, write_csv, write_json

TYPE = "goods-receipt"


def _plan(path: Path, kind: str = TYPE):  # type: ignore[no-untyped-def]
    return plan_import(read_records(path, kind), kind, timezone="Europe/Moscow", run_id="t")


def test_csv_parquet_and_json_of_the_same_documents_plan_identically(tmp_path: Path) -> None:
    rows = document_lines(30)
    csv = write_csv(tmp_path / "a.csv", rows, separator=";", encoding="cp1251")
    parquet = tmp_path / "a.parquet"
    pl.DataFrame(rows).with_columns(pl.col("Quantity").cast(pl.Decimal(18, 3))).write_parquet(parquet)
    plans = [_plan(p) for p in (csv, parquet, write_json(tmp_path / "a.json", rows))]
    hashes = [{d.number: d.content.content_hash for d in plan.outgoing} for plan in plans]
    assert hashes[0] == hashes[1] == hashes[2] and set(hashes[0]) == numbers(rows)
    assert all(not plan.rejected for plan in plans)


def test_decimal_commas_bom_and_padding_do_not_change_the_content(tmp_path: Path) -> None:
    rows = document_lines(5)
    awkward = [
        {**r, "UnitPrice": r["UnitPrice"].replace(".", ",") + "0", "Warehouse": r["Warehouse"] + "  "} for r in rows
    ]
    plain = _plan(write_csv(tmp_path / "plain.csv", rows))
    path = tmp_path / "awkward.csv"
    path.write_bytes(b"\xef\xbb\xbf" + pl.DataFrame(awkward).write_csv(separator=";").replace("\n", "\r\n").encode())
    assert [d.content for d in _plan(path).outgoing] == [d.content for d in plain.outgoing]


def test_invalid_documents_are_reported_with_every_reason_and_the_rest_go_on(tmp_path: Path) -> None:
    rows = document_lines(6, max_lines=3)
    rows[0]["Total"] = "1.00"
    rows[2]["Warehouse"] = "другой-склад"  # header differs between lines of IMP-000001
    rows.append({**rows[-1], "Number": "", "Line": "1"})
    plan = _plan(write_csv(tmp_path / "a.csv", rows))
    reasons = {r.key: r.reason for r in plan.rejected}
    assert "total 1.00 ≠ quantity × unit_price" in reasons["IMP-000000"]
    assert "warehouse: differs between the document's lines" in reasons["IMP-000001"]
    assert "number: required" in reasons["(no number, record 1)"]
    assert {d.number for d in plan.outgoing} == numbers(rows) - {"IMP-000000", "IMP-000001", ""}


def test_a_number_twice_in_a_json_file_is_refused(tmp_path: Path) -> None:
    rows = document_lines(3)
    path = write_json(tmp_path / "a.json", rows)
    path.write_bytes(path.read_bytes()[:-1] + b"," + path.read_bytes()[1:])
    plan = _plan(path)
    assert not plan.outgoing and all("appears 2 times in the file" in r.reason for r in plan.rejected)


@settings(max_examples=25, deadline=None)
@given(order=st.randoms(use_true_random=False), size=st.integers(1, 9), as_json=st.booleans())
def test_planning_in_chunks_judges_every_document_as_the_whole_file_does(
    tmp_path_factory: pytest.TempPathFactory, order: random.Random, size: int, as_json: bool
) -> None:
    rows = document_lines(24, max_lines=4)
    rows[5]["Total"] = "1.00"
    rows[7]["Warehouse"] = "другой-склад"
    rows += [{**rows[0], "Number": "", "Line": "1"}, {**rows[3], "Number": " ", "Line": "2"}]
    order.shuffle(rows)  # a document's lines scattered through the file
    folder = tmp_path_factory.mktemp("chunks")
    path = write_json(folder / "a.json", rows) if as_json else write_csv(folder / "a.csv", rows)
    if as_json:  # one number twice in a JSON array
        path.write_bytes(path.read_bytes()[:-1] + b"," + orjson.dumps(rows[:2])[1:])
    whole = _plan(path)
    chunks = [plan_import(c, TYPE, timezone="Europe/Moscow", run_id="t") for c in read_record_chunks(path, TYPE, size)]
    in_chunks = [d.content for c in chunks for d in c.outgoing]
    assert sorted(in_chunks, key=_number) == sorted((d.content for d in whole.outgoing), key=_number)
    assert sorted((r.key, r.reason) for c in chunks for r in c.rejected) == sorted(
        (r.key, r.reason) for r in whole.rejected
    )


def _number(content: DocumentContent) -> str:
    return content.number


def test_chunks_come_in_date_order_whatever_the_file_order(tmp_path: Path) -> None:
    rows = document_lines(60, max_lines=3)  # dates cycle through the month in file order
    in_file = [r["Date"] for r in rows]
    assert in_file != sorted(in_file)
    chunks = list(read_record_chunks(write_csv(tmp_path / "a.csv", rows), TYPE, 7))
    assert [len(chunk) for chunk in chunks] == [7] * 8 + [4]
    dates = [record["date"] for chunk in chunks for record in chunk]
    assert dates == sorted(dates) and sorted(dates) == sorted(dict.fromkeys(in_file).keys() | set(dates))


def test_unreadable_files_fail_with_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        read_records(tmp_path / "a.txt", TYPE)
    (tmp_path / "a.csv").write_text("Foo,Bar\n1,2\n")
    with pytest.raises(InputError, match="no column for number"):
        read_records(tmp_path / "a.csv", TYPE)
    with pytest.raises(ValueError, match="unknown document type"):
        read_records(tmp_path / "a.csv", "invoice")


def _document(number: int, lines: int, size: int) -> OutgoingDocument:
    content = DocumentContent(f"N{number}", "h", lines, 0, 0)  # type: ignore[arg-type]
    return OutgoingDocument(content, b'{"n":"' + b"x" * size + b'"}')


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 300)), min_size=1, max_size=80),
    max_items=st.integers(40, 200),
    max_bytes=st.integers(400, 3000),
)
def test_packing_keeps_every_document_once_within_both_limits(
    shapes: list[tuple[int, int]], max_items: int, max_bytes: int
) -> None:
    limits = Limits(max_items, max_bytes)
    documents = [_document(n, lines, size) for n, (lines, size) in enumerate(shapes)]
    fitting = [d for d in documents if oversize_reason(d, limits, "documents") is None]
    batches = pack(fitting, limits, "documents")
    assert sorted(d.number for b in batches for d in b) == sorted(d.number for d in fitting)
    for batch in batches:
        assert sum(d.content.lines for d in batch) <= max_items
        body = batch_body("documents", batch)
        assert len(body) == sum(len(d.body) for d in batch) + envelope_bytes("documents", len(batch)) <= max_bytes
    lines, size = sum(d.content.lines for d in fitting), sum(len(d.body) + 1 for d in fitting)
    assert len(batches) <= 2 * (-(-lines // max_items) + -(-size // max_bytes)) + 1, "packing should not waste requests"


def test_a_document_over_the_item_limit_is_oversize_never_split() -> None:
    reason = oversize_reason(_document(1, 501, 10), Limits(500), "documents")
    assert reason is not None and "501 lines exceed 1C's limit of 500" in reason
    with pytest.raises(ValueError, match="never split"):
        pack([_document(1, 501, 10)], Limits(500), "documents")
