"""The CSV export reader: every §1.9 spelling, malformed rows kept in place, whole-file errors that name the cause."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onec.config import ConfigError, RecordLimits, Settings
from onec.sandbox import SandboxData
from onec.sandbox.exports import ExportVariant, documents_csv
from onec.sources.csv_export import CsvEntity, CsvExportReader, CsvFormatError, CsvLayout
from onec.sources.typing import MALFORMED_REASON, RAW_TEXT, SOURCE_LINE, TextRecords
from onec.validation import check_documents, check_documents_text, check_goods_text

ZONE = "Europe/Moscow"
DAY = dt.date(2026, 1, 31)
GOODS = (
    "SKU,Name,Quantity,Warehouse,Price\r\n"
    'P1,"Товар, ""1""",100,wh-main,15.50\r\n'
    "P2,Товар 2,5,wh-main,1\r\n"
    'P3,"две\r\nстроки",7,wh-2,2.25\r\n'
)


def read(data: bytes, entity: CsvEntity = CsvEntity.GOODS, **options: object) -> tuple[CsvExportReader, TextRecords]:
    reader = CsvExportReader(entity, **options)  # type: ignore[arg-type]
    batches = list(reader.read([data]))
    frames = [b.frame for b in batches]
    malformed = [b.malformed for b in batches]
    return reader, TextRecords(pl.concat(frames) if frames else pl.DataFrame(), pl.concat(malformed))


def checked_goods(records: TextRecords) -> pl.DataFrame:
    batch = check_goods_text(records, snapshot_date=DAY, timezone=ZONE, run_id="r", source="csv")
    assert batch.goods is not None
    return batch.goods


@pytest.mark.parametrize(
    ("encoding", "charset"),
    [("utf-8", None), ("utf-8-sig", None), ("cp1251", None), ("cp1251", "windows-1251"), ("utf-8", "utf-8")],
)
def test_encodings_declared_or_detected(encoding: str, charset: str | None) -> None:
    reader, records = read(GOODS.encode(encoding), charset=charset)
    goods = checked_goods(records)
    assert goods["name"].to_list() == ['Товар, "1"', "Товар 2", "две\r\nстроки"]
    assert reader.encoding == ("cp1251" if encoding == "cp1251" else "utf-8")


def test_semicolons_decimal_commas_and_russian_headers() -> None:
    data = "Артикул;Наименование;Количество;Склад;Цена;ЕдиницаИзмерения\nP1;Товар;1 234,5;wh;15,50;шт\n"
    reader, records = read(data.encode("cp1251"))
    goods = checked_goods(records)
    assert reader.layout is not None and reader.layout.separator == ";"
    assert goods.row(0, named=True)["quantity"] == Decimal("1234.5")
    assert goods.row(0, named=True)["price"] == Decimal("15.5")
    assert goods.row(0, named=True)["unit"] == "шт"


def test_ragged_rows_are_rejected_in_place_and_shift_nothing() -> None:
    data = (
        "SKU,Name,Quantity,Warehouse\n"
        "P1,Один,1,wh\n"
        "P2,Два,2\n"  # one field short
        "P3,Три,3,wh,extra\n"  # one field too many
        'P4,Че"тыре,4,wh\n'  # a quote inside a value
        "P5,Пять,5,wh\n"
    ).encode()
    _, records = read(data)
    batch = check_goods_text(records, snapshot_date=DAY, timezone=ZONE, run_id="r", source="csv")
    assert batch.goods is not None
    assert batch.goods.select("sku", "quantity").rows() == [("P1", Decimal(1)), ("P5", Decimal(5))]
    rejected = batch.rejected.sort("record_key")
    assert rejected["record_key"].to_list() == ["file line 3", "file line 4", "file line 5"]
    assert rejected["raw"].to_list() == ["P2,Два,2", "P3,Три,3,wh,extra", 'P4,Че"тыре,4,wh']
    assert "expected 4 fields, found 3" in rejected["reason"][0]
    assert "expected 4 fields, found 5" in rejected["reason"][1]
    assert "broken quoting" in rejected["reason"][2]


@pytest.mark.parametrize(
    "bad",
    ['P2,Два",",2,wh', '"P2"x,Два,2,wh', 'P2,Два",Два",2', 'P2,"Два" ,2,wh', 'P2,"Два,2,wh'],
    ids=["quote-then-quoted-separator", "text-after-closing-quote", "quotes-in-unquoted-values", "space-after", "open"],
)
def test_broken_quoting_is_rejected_and_the_rows_around_it_load(bad: str) -> None:
    """Each of these once stopped the file (Polars refused the chunk) or loaded with a value shifted."""
    data = f"SKU,Name,Quantity,Warehouse\nP1,Один,1,wh\n{bad}\nP3,Три,3,wh\n".encode()
    _, records = read(data)
    batch = check_goods_text(records, snapshot_date=DAY, timezone=ZONE, run_id="r", source="csv")
    assert batch.goods is not None
    loaded = batch.goods.select("sku", "quantity").rows()
    rejected = batch.rejected["raw"].to_list()
    if bad.count('"') % 2:  # an unclosed quote: RFC 4180 reads on into the next line, and both are kept as one
        assert loaded == [("P1", Decimal(1))] and rejected == [f"{bad}\nP3,Три,3,wh"]
    else:
        assert loaded == [("P1", Decimal(1)), ("P3", Decimal(3))] and rejected == [bad]
    assert "broken quoting" in batch.rejected["reason"][0]


def test_invalid_values_are_rejected_with_their_line() -> None:
    _, records = read(b"SKU,Name,Quantity,Warehouse\nP1,One,abc,wh\nP2,Two,2,wh\n")
    batch = check_goods_text(records, snapshot_date=DAY, timezone=ZONE, run_id="r", source="csv")
    assert batch.rejected.row(0, named=True)["reason"] == "quantity: not a number 'abc' (file line 2)"
    assert batch.rejected.row(0, named=True)["raw"] == "P1,One,abc,wh"


def test_missing_required_column_fails_the_file_naming_it() -> None:
    with pytest.raises(CsvFormatError, match=r"no Warehouse \(or Склад\) column"):
        read(b"SKU,Name,Quantity\nP1,One,1\n")


def test_extra_columns_are_kept_out_and_noted() -> None:
    reader, records = read(b"SKU,Name,Quantity,Warehouse,Colour\nP1,One,1,wh,red\n")
    assert reader.ignored_columns == ("Colour",)
    assert "Colour" not in records.frame.columns
    assert checked_goods(records).height == 1


@pytest.mark.parametrize(
    ("data", "charset", "message"),
    [
        (GOODS.encode("cp1251"), "utf-8", "not valid utf-8 .*line 2.*declared charset is wrong"),
        (GOODS.encode("utf-8"), "windows-1251", "declared as windows-1251 but its bytes are UTF-8"),
        (GOODS.encode("utf-8") + "P9,Ж,1,wh\n".encode("cp1251"), None, "not valid utf-8 .*line 6"),
    ],
)
def test_a_wrong_encoding_fails_the_whole_file(data: bytes, charset: str | None, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        read(data, charset=charset)


@pytest.mark.parametrize("chunk", [64, 300, 100_000])
@pytest.mark.parametrize("bad_row", ["P99,Ж,1,wh", 'P99,"Ж, ""1""",1,wh', 'P99,"Ж,1,wh', "P99,Ж,1"])
def test_bytes_that_are_not_utf8_fail_the_file_in_whichever_chunk_they_are(chunk: int, bad_row: str) -> None:
    """Only a UTF-8 file's first chunk is checked before Polars splits it: every later chunk must fail as well,
    naming the line, whether it is read fast or carefully."""
    rows = "".join(f'P{n},"Товар ""{n}""",{n},wh\n' for n in range(40))
    data = f"SKU,Name,Quantity,Warehouse\n{rows}".encode() + f"{bad_row}\n".encode("cp1251") + b"P100,x,1,wh\n"
    with pytest.raises(CsvFormatError, match=r"not valid utf-8 .*line 42"):
        list(CsvExportReader(CsvEntity.GOODS, chunk_bytes=chunk).read([data]))


def _document_rows(count: int) -> str:
    header = "Id,Number,Date,Status,Posted,Counterparty,Warehouse,WarehouseTo,Line,SKU,Name,Quantity,UnitPrice,Total\n"
    rows = []
    for n in range(count):
        for line in (1, 2, 3):
            rows.append(
                f"id{n},N{n:04},2026-01-{1 + n % 28:02}T10:00:00,posted,true,ООО,wh,,{line},P{line},"
                f'"Товар, {line}",{line},2.5,{2.5 * line:.2f}\n'
            )
    return header + "".join(rows)


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(min_value=40, max_value=4000))
def test_chunking_never_splits_a_document(chunk: int) -> None:
    data = _document_rows(25).encode()
    reader = CsvExportReader(CsvEntity.DOCUMENT_LINES, chunk_bytes=chunk)
    batches = list(reader.read([data[i : i + 97] for i in range(0, len(data), 97)]))
    numbers = [set(b.frame["number"].to_list()) for b in batches]
    assert sum(len(n) for n in numbers) == 25
    assert all(not (a & b) for i, a in enumerate(numbers) for b in numbers[i + 1 :])
    lines = pl.concat([b.frame for b in batches])
    assert lines[SOURCE_LINE].to_list() == list(range(2, 77))
    assert lines[RAW_TEXT][0].startswith("id0,N0000,")


def test_document_lines_check_like_the_json_path() -> None:
    _, records = read(_document_rows(4).encode(), CsvEntity.DOCUMENT_LINES)
    window = {"doc_type": "goods-receipt", "date_from": dt.date(2026, 1, 1), "date_to": dt.date(2026, 2, 1)}
    text = check_documents_text(records, **window, timezone=ZONE, run_id="r", source="csv")  # type: ignore[arg-type]
    as_json = [
        {
            "id": f"id{n}", "number": f"N{n:04}", "date": f"2026-01-{1 + n:02}T10:00:00", "status": "posted",
            "posted": True, "supplier": "ООО", "warehouse": "wh",
            "items": [
                {"line": i, "sku": f"P{i}", "name": f"Товар, {i}", "quantity": i, "unit_price": 2.5, "total": 2.5 * i}
                for i in (1, 2, 3)
            ],
        }
        for n in range(4)
    ]  # fmt: skip
    json = check_documents(as_json, **window, timezone=ZONE, run_id="r", source="json")  # type: ignore[arg-type]
    assert text.documents is not None and json.documents is not None
    assert text.lines is not None and json.lines is not None
    assert text.documents.equals(json.documents)
    assert text.lines.equals(json.lines)


def test_a_document_whose_rows_disagree_is_rejected_whole() -> None:
    data = _document_rows(2).replace(
        "N0001,2026-01-02T10:00:00,posted,true,ООО,wh,,2", "N0001,2026-01-02T10:00:00,draft,false,ООО,wh,,2"
    )
    _, records = read(data.encode(), CsvEntity.DOCUMENT_LINES)
    batch = check_documents_text(
        records, doc_type="goods-receipt", date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 2, 1),
        timezone=ZONE, run_id="r", source="csv",
    )  # fmt: skip
    assert batch.documents is not None and batch.documents["number"].to_list() == ["N0000"]
    reason = batch.rejected.row(0, named=True)["reason"]
    assert reason.startswith("header fields differ between the document's rows: status, posted")
    assert reason.endswith("(file lines 5-7)")
    assert batch.rejected.row(0, named=True)["raw"].count("\n") == 2


def test_documents_are_rows_sharing_a_number_or_else_an_id_wherever_they_are_in_the_file() -> None:
    """A document's rows apart in the file still make one document (in the order of its first row); rows without
    a number are grouped by Id, and a row with neither is a document of its own: each is rejected whole."""
    header, *rows = _document_rows(3).splitlines(keepends=True)
    no_number = [rows[6].replace("id2,N0002,", "idX,,"), rows[7].replace("id2,N0002,", "idX,,")]
    neither = rows[8].replace("id2,N0002,", ",,")
    data = header + "".join([rows[0], rows[3], rows[1], no_number[0], rows[4], rows[2], rows[5], no_number[1], neither])
    _, records = read(data.encode(), CsvEntity.DOCUMENT_LINES)
    batch = check_documents_text(
        records, doc_type="goods-receipt", date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 2, 1),
        timezone=ZONE, run_id="r", source="csv",
    )  # fmt: skip
    assert batch.documents is not None and batch.lines is not None
    assert batch.documents["number"].to_list() == ["N0000", "N0001"]
    assert batch.lines.select("number", "line").rows() == [("N0000", n) for n in (1, 2, 3)] + [
        ("N0001", n) for n in (1, 2, 3)
    ]
    rejected = batch.rejected.sort("reason").rows(named=True)
    assert [r["reason"] for r in rejected] == [
        "number: required (file line 10)",
        "number: required (file lines 5-9)",
    ]
    assert rejected[1]["raw"].splitlines() == [line.rstrip("\n") for line in no_number]


FIELD_TEXT = st.text(alphabet='a,"\r ж', max_size=8)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(FIELD_TEXT, min_size=1, max_size=5), crlf=st.booleans(), width=st.integers(2, 4))
def test_the_fast_path_decides_exactly_like_the_careful_one(lines: list[str], crlf: bool, width: int) -> None:
    """The fast path may decline a chunk, but when it answers it must give the careful path's records and
    malformed rows to the letter (broken quoting, ragged rows, line breaks and CRs inside values)."""
    reader = CsvExportReader(CsvEntity.GOODS)
    reader.layout = CsvLayout(",", width, {i: f"c{i}" for i in range(width)}, ())
    body = ("\r\n" if crlf else "\n").join(lines)
    fast = reader._fast_records(body.encode(), 2, body.count("\n"))
    careful = reader._careful_records(body, 2)
    if fast is not None:
        assert fast.frame.equals(careful.frame)
        assert fast.malformed.equals(careful.malformed)


RECORD_VALUE = st.text(alphabet='ab,"\n\r ж', max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(RECORD_VALUE, min_size=3, max_size=3), min_size=1, max_size=12),
    line_end=st.sampled_from(["\n", "\r\n"]),
    quote_all=st.booleans(),
    damage=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(['"', ",", "\n", "\r", " "])), max_size=2),
)
def test_the_fast_path_answers_written_exports_exactly_like_the_careful_one(
    rows: list[list[str]], line_end: str, quote_all: bool, damage: list[tuple[int, str]]
) -> None:
    """Exports as a CSV writer spells them (values with quotes, separators, LFs and CRs), now and then with a
    character slipped in: the fast path must answer every well-formed one without CRs, and whatever it answers
    must be the careful path's records and malformed rows to the letter."""
    out = io.StringIO()
    csv.writer(out, lineterminator=line_end, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(rows)
    body = out.getvalue()
    for at, character in damage:
        body = body[: at % len(body)] + character + body[at % len(body) :]
    reader = CsvExportReader(CsvEntity.GOODS)
    reader.layout = CsvLayout(",", 3, {i: f"c{i}" for i in range(3)}, ())
    fast = reader._fast_records(body.encode(), 2, body.count("\n"))
    careful = reader._careful_records(body, 2)
    if not damage and "\r" not in "".join(v for row in rows for v in row):
        assert fast is not None
    if fast is not None:
        assert fast.frame.equals(careful.frame)
        assert fast.malformed.equals(careful.malformed)


@settings(max_examples=600, deadline=None)
@given(lines=st.lists(FIELD_TEXT, min_size=1, max_size=6), width=st.integers(2, 4))
def test_broken_quoting_never_stops_the_chunk_nor_shifts_a_value(lines: list[str], width: int) -> None:
    """Whatever the quoting, every line ends up in a record that loads or in a malformed row, and each record
    that loads holds exactly what a strict RFC 4180 reader makes of its own text."""
    reader = CsvExportReader(CsvEntity.GOODS)
    reader.layout = CsvLayout(",", width, {i: f"c{i}" for i in range(width)}, ())
    body = "\n".join(lines)
    records = reader._careful_records(body, 2)
    covered = {
        first + k for first, text in records.frame.select(SOURCE_LINE, RAW_TEXT).vstack(records.malformed.select(
            SOURCE_LINE, RAW_TEXT)).iter_rows() for k in range(text.count("\n") + 1)
    }  # fmt: skip
    assert {2 + n for n, line in enumerate(body.split("\n")) if line.strip()} <= covered
    for row in records.frame.iter_rows(named=True):
        strict = next(csv.reader(io.StringIO(row[RAW_TEXT].replace("\r", "\x07"), newline=""), strict=True))
        # Polars drops a CR that ends an unquoted value (it takes it for part of a line end): nothing else differs
        assert [(row[f"c{i}"] or "").rstrip("\r") for i in range(width)] == [
            v.replace("\x07", "\r").rstrip("\r") for v in strict
        ]


def test_the_awkward_sandbox_export_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quote-all, windows-1251, CRLF records with bare LFs inside values: the export the benchmark reads must
    not quietly fall back to the careful path."""
    data = SandboxData.generate(seed=1, documents=60, start=dt.date(2026, 1, 1), days=10, timezone=ZONE)
    body = b"".join(documents_csv(data.documents_holdings("shipment"), ExportVariant.everything(seed=1)))
    reference = read(body, CsvEntity.DOCUMENT_LINES)[1]

    def careful(*_: object) -> None:
        raise AssertionError("fell back to the careful path")

    monkeypatch.setattr(CsvExportReader, "_careful_records", careful)
    _, records = read(body, CsvEntity.DOCUMENT_LINES)
    assert records.frame.height > 100 and b"\n" in body.replace(b"\r\n", b"")
    assert records.frame.equals(reference.frame)


SMALL_LIMITS = RecordLimits(field_bytes=2_000, record_bytes=8_000)


@pytest.mark.parametrize("spelling", ["quoted", "unquoted", "quoted with line breaks"])
def test_a_huge_field_is_a_rejected_row_with_its_line_and_the_rows_after_it_load(spelling: str) -> None:
    value = "ж" * 1_500_000  # 3 MB of UTF-8
    field = {"quoted": f'"{value}"', "unquoted": value, "quoted with line breaks": f'"a\n{value}\nb"'}[spelling]
    data = f"SKU,Name,Quantity,Warehouse\nP1,a,1,wh\nP2,{field},2,wh\nP3,c,3,wh\n".encode()
    reader = CsvExportReader(CsvEntity.GOODS, chunk_bytes=64 * 1024, limits=SMALL_LIMITS)
    batches = list(reader.read(data[i : i + 16 * 1024] for i in range(0, len(data), 16 * 1024)))
    records = TextRecords(pl.concat([b.frame for b in batches]), pl.concat([b.malformed for b in batches]))
    batch = check_goods_text(records, snapshot_date=DAY, timezone=ZONE, run_id="r", source="csv")
    assert batch.goods is not None
    assert batch.goods["sku"].to_list() == ["P1", "P3"]
    assert records.frame[SOURCE_LINE].to_list() == [2, 6 if "breaks" in spelling else 4]
    rejected = batch.rejected.row(0, named=True)
    assert batch.rejected.height == 1 and rejected["record_key"] == "file line 3"
    assert "over the limit of 8000 bytes" in rejected["reason"] and len(rejected["raw"]) <= 201


def test_a_field_over_its_limit_in_a_record_that_fits_is_rejected() -> None:
    data = f'SKU,Name,Quantity,Warehouse\nP1,"{"x" * 3_000}",1,wh\nP2,b,2,wh\n'.encode()
    _, records = read(data, limits=SMALL_LIMITS)
    assert records.frame["sku"].to_list() == ["P2"]
    assert records.malformed[MALFORMED_REASON].to_list() == [
        "file line 2: a field of 3000 bytes is over the limit of 2000 bytes (ONEC_CSV_MAX_FIELD_BYTES); not loaded"
    ]


def test_a_header_over_the_record_limit_fails_the_file() -> None:
    data = ("SKU,Name,Quantity,Warehouse," + "x" * 20_000 + "\nP1,a,1,wh\n").encode()
    reader = CsvExportReader(CsvEntity.GOODS, chunk_bytes=4_096, limits=SMALL_LIMITS)
    with pytest.raises(CsvFormatError, match="first line is over 8000 bytes"):
        list(reader.read(data[i : i + 1_000] for i in range(0, len(data), 1_000)))


def test_limits_come_from_the_environment() -> None:
    limits = Settings.from_env({"ONEC_CSV_MAX_FIELD_BYTES": "10", "ONEC_CSV_MAX_RECORD_BYTES": "20"}).csv_limits
    assert limits == RecordLimits(10, 20)
    with pytest.raises(ConfigError, match="ONEC_CSV_MAX_RECORD_BYTES"):
        Settings.from_env({"ONEC_CSV_MAX_RECORD_BYTES": "-1"})


VALUE_TEXT = st.text(alphabet='ab,"\n ж', max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.booleans(), VALUE_TEXT, st.integers(0, 3)), min_size=1, max_size=25),
    chunk=st.integers(min_value=32, max_value=600),
    piece=st.integers(min_value=1, max_value=300),
)
def test_records_over_the_limit_are_rejected_in_place_and_every_other_record_loads_as_without_limits(
    rows: list[tuple[bool, str, int]], chunk: int, piece: int
) -> None:
    """Whatever the chunking and the quoting (line breaks and quotes inside values), a record over the limit is
    one malformed row on its own first line, and every other record loads exactly, on its own line."""
    limits = RecordLimits(field_bytes=150, record_bytes=200)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["SKU", "Name", "Quantity", "Warehouse"])
    expected_loaded: list[tuple[int, str, str | None]] = []
    expected_rejected: list[tuple[int, str, str | None]] = []
    line = 2
    for n, (huge, text, breaks) in enumerate(rows):
        name = text + ("\n" * breaks + "ю" * 120 if huge else "")
        writer.writerow([f"P{n}", name, str(n), "wh"])
        (expected_rejected if huge else expected_loaded).append((line, f"P{n}", name or None))
        line += name.count("\n") + 1
    data = out.getvalue().encode()
    reader = CsvExportReader(CsvEntity.GOODS, chunk_bytes=chunk, limits=limits)
    batches = list(reader.read(data[i : i + piece] for i in range(0, len(data), piece)))
    frame = pl.concat([b.frame for b in batches])
    malformed = pl.concat([b.malformed for b in batches])
    assert frame.select(SOURCE_LINE, "sku", "name").rows() == expected_loaded
    assert malformed[SOURCE_LINE].to_list() == [row[0] for row in expected_rejected]
    assert all("over the limit" in reason for reason in malformed[MALFORMED_REASON])
