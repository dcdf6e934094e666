"""UDE XML and CommerceML readers, hostile XML, and `onec-etl load`: facts from real files, nothing half-landed."""

from __future__ import annotations

import io
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from onec.cli import main
from onec.config import Settings
from onec.exchange_files import FileKind, FileSource, detect_kind, load_files
from onec.sandbox import SandboxData
from onec.sandbox.exports import ExportVariant, write_export_files
from onec.sources.commerceml import CommerceMLError, read_set
from onec.sources.ude_xml import UdeXmlError, UdeXmlReader
from onec.sources.xml_safety import XmlFileError
from onec.sync import extract_documents
from onec.warehouse import Warehouse
from tests.sources.file_helpers import (
    SHIPMENT_HEADER,
    cli_warehouse,
    goods_agree_with_history,
    goods_csv,
    offers_of_one,
    shipment_record,
    shipment_row,
    shipments_csv,
)

ZONE = "Europe/Moscow"
SAMPLES = Path("/work/shared/samples/commerceml")
DOBROMYSLOV = SAMPLES / "cml207_1c_export_dobromyslov"
UT11 = SAMPLES / "cml207_ut11_demo_carono"
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DataExchange><Goods><Good SKU="&lol3;"><Name>x</Name></Good></Goods></DataExchange>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment first -->
<!DOCTYPE DataExchange [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<DataExchange><Goods><Good SKU="P1"><Name>&xxe;</Name></Good></Goods></DataExchange>"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "data", ZONE)
    store.initialize()
    return store


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = SandboxData.generate(seed=5, documents=120, start=date(2026, 1, 1), days=10, timezone=ZONE)
    paths = write_export_files(
        data, tmp_path_factory.mktemp("exports"), ExportVariant.everything(seed=1), combined=True
    )
    return {path.name: path for path in paths}


def test_ude_xml_any_order_windows_1251() -> None:
    xml = """<?xml version="1.0" encoding="windows-1251"?>
<DataExchange FormatVersion="1.0" Created="2026-01-31T02:00:00"><Goods>
<Good Number="1" SKU="P1"><Warehouse>wh</Warehouse><Quantity>100</Quantity><Name>Товар &amp; Ко</Name></Good>
</Goods></DataExchange>""".encode("cp1251")
    reader = UdeXmlReader(io.BytesIO(xml))
    (batch,) = reader.batches("goods")
    assert reader.created == date(2026, 1, 31)
    assert batch.records.to_dicts() == [
        {"Number": "1", "SKU": "P1", "Warehouse": "wh", "Quantity": "100", "Name": "Товар & Ко", "_source_line": 3}
    ]


def test_ude_xml_document_type_as_element_or_attribute_and_unknown_named_by_line() -> None:
    def documents(*bodies: str) -> bytes:
        inner = "".join(f"<Document {b}</Document>" for b in bodies)
        return f'<DataExchange FormatVersion="1.0"><Documents>{inner}</Documents></DataExchange>'.encode()

    both = documents('Type="shipment" Number="1">', 'Number="2"><Type> goods-receipt </Type>')
    assert UdeXmlReader(io.BytesIO(both)).entities() == ["shipment", "goods-receipt"]
    (receipts,) = UdeXmlReader(io.BytesIO(both)).batches("goods-receipt", skip_others=True)
    assert receipts.records["Number"].to_list() == ["2"]
    with pytest.raises(UdeXmlError, match=r"the export of shipment also holds goods-receipt records \(line 1\)"):
        list(UdeXmlReader(io.BytesIO(both)).batches("shipment"))
    unknown = documents('Type="shipment" Number="1">', 'Number="2">\n<Type>invoice</Type>')
    for read in (lambda r: r.entities(), lambda r: list(r.batches("shipment", skip_others=True))):
        with pytest.raises(UdeXmlError, match=r"document at line 1 has Type='invoice'"):
            read(UdeXmlReader(io.BytesIO(unknown)))


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_hostile_xml_is_refused_before_parsing(hostile: bytes, tmp_path: Path, warehouse: Warehouse) -> None:
    with pytest.raises(XmlFileError, match="DOCTYPE/ENTITY declaration"):
        list(UdeXmlReader(io.BytesIO(hostile)).batches("goods"))
    path = tmp_path / "hostile.xml"
    path.write_bytes(hostile)
    with pytest.raises(XmlFileError):
        load_files([path], warehouse, timezone=ZONE, run_id="r")
    assert set(warehouse.table_counts().values()) == {0}


def test_truncated_xml_fails_naming_the_position_and_lands_nothing(
    exports: dict[str, Path], tmp_path: Path, warehouse: Warehouse
) -> None:
    whole = exports["exchange.xml"].read_bytes()
    path = tmp_path / "truncated.xml"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(XmlFileError, match=r"malformed or truncated at line \d+, column \d+"):
        load_files([path], warehouse, timezone=ZONE, run_id="r")
    assert set(warehouse.table_counts().values()) == {0}


def test_kinds_are_detected_from_content(exports: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "export.dat"
    shutil.copy(exports["documents-shipment.xml"], renamed)
    assert detect_kind(renamed) is FileKind.UDE_XML
    assert detect_kind(exports["goods.csv"]) is FileKind.CSV_GOODS
    assert detect_kind(exports["documents-shipment.csv"]) is FileKind.CSV_DOCUMENT_LINES
    assert detect_kind(DOBROMYSLOV / "offers0_1.xml") is FileKind.COMMERCEML


def test_csv_and_xml_files_land_the_same_tables(exports: dict[str, Path], tmp_path: Path) -> None:
    landed = {}
    for kind, names in {
        "csv": ["goods.csv", *(n for n in exports if n.startswith("documents-") and n.endswith(".csv"))],
        "xml": ["exchange.xml"],
    }.items():
        store = Warehouse(tmp_path / kind, ZONE)
        store.initialize()
        load_files([exports[n] for n in names], store, timezone=ZONE, run_id=kind, snapshot_date=date(2026, 1, 11))
        landed[kind] = {
            table: store.query(f"SELECT * EXCLUDE (modified_at) FROM {table} ORDER BY ALL").rows()  # noqa: S608
            for table in ("goods", "documents")
        } | {"document_lines": store.query("SELECT * FROM document_lines ORDER BY ALL").rows()}
    assert len(landed["csv"]["documents"]) > 100
    assert landed["csv"] == landed["xml"]


def test_commerceml_2_07_export_facts() -> None:
    found = read_set([DOBROMYSLOV / "import0_1.xml", DOBROMYSLOV / "offers0_1.xml"])
    assert (len(found.goods), len(found.offers)) == (36, 44)
    assert sorted(found.warehouses.values()) == ["Владивосток", "Москва", "Новосибирск"]
    assert sum(good["deleted"] for good in found.goods.values()) == 1


def test_commerceml_samples_land_with_known_stock_and_prices(warehouse: Warehouse) -> None:
    load_files([DOBROMYSLOV / "import0_1.xml", DOBROMYSLOV / "offers0_1.xml"], warehouse, timezone=ZONE, run_id="a")
    day = date(2020, 4, 7)  # ДатаФормирования of offers0_1.xml
    rows = warehouse.query(
        "SELECT warehouse, quantity, price, unit FROM goods WHERE sku = 'PM-421-WP' AND snapshot_date = ?"
        " ORDER BY warehouse",
        [day],
    ).rows()
    assert rows == [
        ("Владивосток", Decimal("1.000"), Decimal("100.0000"), "Штука"),
        ("Москва", Decimal("376.000"), Decimal("100.0000"), "Штука"),
        ("Новосибирск", Decimal("0.000"), Decimal("100.0000"), "Штука"),
    ]
    assert warehouse.query("SELECT count(*) FROM goods").item() == 132  # 44 offers x 3 warehouses


def test_commerceml_variants_are_positions_of_their_own(warehouse: Warehouse) -> None:
    load_files([UT11 / "offers.xml", UT11 / "import.xml"], warehouse, timezone=ZONE, run_id="b")
    rows = warehouse.query(
        "SELECT sku, name, quantity, price, warehouse FROM goods WHERE sku LIKE 'Б-130001#%' ORDER BY name"
    ).rows()
    assert rows == [
        ("Б-130001#90c55447-d3a8-11e4-9423-e0cb4ed5eed4", "Женские ботфорты коричневые (38)", Decimal("20.000"),
         Decimal("1719.0000"), 'Магазин "Обувь"'),
        ("Б-130001#e5a4c316-a659-11dd-acee-0015e9b8c48d", "Женские ботфорты коричневые (39)", Decimal("19.000"),
         Decimal("1496.0000"), 'Магазин "Обувь"'),
    ]  # fmt: skip
    assert warehouse.query("SELECT count(*) FROM goods").item() == 5


def test_commerceml_real_orders_land_as_order_documents(warehouse: Warehouse) -> None:
    orders = [
        UT11 / "orders_windows-1251.xml",
        SAMPLES / "cml209_documents_argentcrusade" / "documents-example.xml",
        DOBROMYSLOV / "bitrix-query-response-full_windows-1251.xml",
    ]
    (result,) = load_files(orders, warehouse, timezone=ZONE, run_id="c")
    assert (result.doc_type, result.rows, result.lines, result.rejected) == ("order", 5, 14, 0)
    headers = warehouse.query(
        "SELECT number, strftime(date, '%Y-%m-%d %H:%M:%S'), counterparty, warehouse, posted FROM documents"
        " WHERE number IN ('20', '142', '132') ORDER BY number"
    ).rows()
    assert headers == [
        ("132", "2021-02-11 18:45:21", "38#catalog_exchange#", None, False),  # a site's buyer without a name
        ("142", "2015-06-29 15:39:10", "Kikinda (Сербия)", "Центральный склад", True),  # «Проведен» true
        ("20", "2007-10-16 15:40:40", "Петр Петров", None, False),
    ]
    lines = warehouse.query("SELECT sku, quantity, unit_price, total FROM document_lines WHERE number = '20'").rows()
    assert lines == [
        ("ORDER_DELIVERY", Decimal("1.000"), Decimal("348.0000"), Decimal("348.00")),
        ("cbcf498f-55bc-11d9-848a-00112f43529a", Decimal("1.000"), Decimal("9335.4200"), Decimal("9335.42")),
    ]
    assert warehouse.query("SELECT count(*) FROM goods").item() == 0


def test_commerceml_lone_catalogs_are_refused(warehouse: Warehouse) -> None:
    with pytest.raises(CommerceMLError, match="no offers"):
        load_files([UT11 / "import.xml"], warehouse, timezone=ZONE, run_id="c")


def test_cli_load_reports_and_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", str(DOBROMYSLOV / "import0_1.xml"), str(DOBROMYSLOV / "offers0_1.xml")]) == 0
    assert "goods" in capsys.readouterr().out
    broken = tmp_path / "goods.csv"
    broken.write_bytes(b"SKU,Name,Quantity\nP1,One,1\n")
    assert main(["load", str(broken)]) == 1
    assert "no Warehouse (or Склад) column" in capsys.readouterr().err


# --- what a file replaces: only what it declares complete (issue 12, item 1)


def test_cli_load_of_a_file_with_a_mistyped_year_deletes_no_other_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = date(2025, 6, 1)
    held = [(f"S-{n:05d}", date.fromordinal(start.toordinal() + n % 365).isoformat()) for n in range(2000)]
    assert main(["load", str(shipments_csv(tmp_path / "shipment-year.csv", held))]) == 0
    fix = [("S-90001", "2026-01-10"), ("S-90002", "2026-01-10"), ("S-90003", "0002-06-01")]
    assert main(["load", str(shipments_csv(tmp_path / "shipment-fix.csv", fix))]) == 0
    capsys.readouterr()
    store = cli_warehouse()
    numbers = set(store.query("SELECT number FROM documents WHERE doc_type = 'shipment'")["number"].to_list())
    assert {number for number, _ in held} <= numbers
    assert {"S-90001", "S-90002"} <= numbers
    lake_documents = str(store.lake_dir / "documents" / "doc_type=shipment" / "**" / "*.parquet")
    assert pl.scan_parquet(lake_documents).select(pl.len()).collect().item() == len(numbers)


def test_a_file_upserts_its_documents_by_key_and_a_sync_range_still_replaces_its_days(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    held = [(f"S-{n}", "2026-01-10") for n in range(5)]
    load_files([shipments_csv(tmp_path / "shipment.csv", held)], warehouse, timezone=ZONE, run_id="a")
    moved = [("S-0", "2026-01-20"), ("S-new", "2026-01-10")]
    load_files([shipments_csv(tmp_path / "shipment-2.csv", moved)], warehouse, timezone=ZONE, run_id="b")
    rows = warehouse.query("SELECT number, doc_date FROM documents ORDER BY number").rows()
    assert rows == [("S-0", date(2026, 1, 20)), *((f"S-{n}", date(2026, 1, 10)) for n in range(1, 5)),
                    ("S-new", date(2026, 1, 10))]  # fmt: skip
    assert warehouse.table_counts()["document_lines"] == 6
    source = FileSource("json", lambda: iter([]), lambda _type: iter([[shipment_record("S-1", "2026-01-10")]]))
    extract_documents(source, warehouse, doc_type="shipment", date_from=date(2026, 1, 10), date_to=date(2026, 1, 11),
                      run_id="sync", timezone=ZONE)  # fmt: skip
    assert warehouse.query("SELECT number FROM documents ORDER BY 1").rows() == [("S-0",), ("S-1",)]


def test_an_all_rejected_file_deletes_nothing(tmp_path: Path, warehouse: Warehouse) -> None:
    goods = [(f"P{n:02d}", "5") for n in range(30)]
    load_files([goods_csv(tmp_path / "goods.csv", goods)], warehouse, timezone=ZONE, run_id="a",
               snapshot_date=date(2026, 1, 10))  # fmt: skip
    load_files([shipments_csv(tmp_path / "shipment.csv", [("S-1", "2026-01-10")])], warehouse, timezone=ZONE,
               run_id="a")  # fmt: skip
    before = {table: warehouse.query(f"SELECT * FROM {table} ORDER BY ALL") for table in ("goods", "documents")}  # noqa: S608
    rejected_goods = goods_csv(tmp_path / "bad-goods.csv", [("P00", "много"), ("P01", "")])
    rejected_documents = tmp_path / "shipment-bad.csv"
    rejected_documents.write_text(f"{SHIPMENT_HEADER}\n{shipment_row('S-2', '2026-01-10', quantity='x')}\n")
    results = load_files([rejected_goods, rejected_documents], warehouse, timezone=ZONE, run_id="b",
                         snapshot_date=date(2026, 1, 10))  # fmt: skip
    assert [(r.rows, r.rejected) for r in results] == [(0, 2), (0, 1)]
    for table, frame in before.items():
        assert warehouse.query(f"SELECT * FROM {table} ORDER BY ALL").equals(frame)  # noqa: S608
    goods_agree_with_history(warehouse)


def test_cli_load_of_a_one_row_goods_file_is_refused_or_merged_never_a_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = [(f"P{n:02d}", "5") for n in range(40)]
    assert main(["load", str(goods_csv(tmp_path / "goods.csv", full))]) == 0
    one = goods_csv(tmp_path / "goods-fix.csv", [("P07", "9")])
    capsys.readouterr()
    assert main(["load", str(one)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "would remove 39 of the 40 rows held" in error
    assert "--force-replace" in error and "--partial-goods" in error
    store = cli_warehouse()
    assert len(goods_agree_with_history(store)) == 40
    assert main(["load", "--partial-goods", str(one)]) == 0
    newest = goods_agree_with_history(store)
    assert len(newest) == 40
    assert {(sku, quantity) for sku, _, _, quantity, *_ in newest} == {
        (sku, Decimal(9 if sku == "P07" else 5)) for sku, _ in full
    }


def test_cli_load_force_replace_lands_a_really_smaller_goods_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", str(goods_csv(tmp_path / "goods.csv", [(f"P{n:02d}", "5") for n in range(40)]))]) == 0
    smaller = goods_csv(tmp_path / "goods-now.csv", [(f"P{n:02d}", "5") for n in range(15)])
    assert main(["load", str(smaller)]) == 1
    assert main(["load", "--force-replace", str(smaller)]) == 0
    assert len(goods_agree_with_history(cli_warehouse())) == 15


@pytest.mark.parametrize("with_catalog", [False, True], ids=["offers-alone", "changes-only-package"])
def test_a_partial_commerceml_set_merges_into_the_snapshot(
    with_catalog: bool, tmp_path: Path, warehouse: Warehouse
) -> None:
    load_files([DOBROMYSLOV / "import0_1.xml", DOBROMYSLOV / "offers0_1.xml"], warehouse, timezone=ZONE, run_id="a")
    before = goods_agree_with_history(warehouse)
    assert len(before) == 132
    offers = offers_of_one(tmp_path / "offers.xml", quantity="300", changes_only=with_catalog)
    catalog = [DOBROMYSLOV / "import0_1.xml"] if with_catalog else []
    load_files([*catalog, offers], warehouse, timezone=ZONE, run_id="b")
    after = goods_agree_with_history(warehouse)
    assert len(after) == 132
    changed = [row for row in after if row not in before]
    assert [(sku, place, quantity) for sku, place, _, quantity, *_ in changed] == [
        ("PM-421-WP", "Москва", Decimal(300))
    ]


def test_a_file_with_an_older_version_of_a_document_does_not_undo_the_newer_one(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    newer = [("S-1", "2026-01-20", "2026-01-20T12:00:00"), ("S-2", "2026-01-20", "2026-01-20T12:00:00")]
    load_files([shipments_csv(tmp_path / "shipment-new.csv", newer)], warehouse, timezone=ZONE, run_id="a")
    stale = [("S-1", "2026-01-10", "2026-01-10T09:00:00"), ("S-2", "2026-01-21", "2026-01-21T09:00:00")]
    results = load_files([shipments_csv(tmp_path / "shipment-old.csv", stale)], warehouse, timezone=ZONE, run_id="b")
    assert [(r.rows, r.rejected) for r in results] == [(1, 1)]
    rows = warehouse.query("SELECT number, doc_date FROM documents ORDER BY number").rows()
    assert rows == [("S-1", date(2026, 1, 20)), ("S-2", date(2026, 1, 21))]
    reason = warehouse.query("SELECT reason FROM rejected_rows WHERE record_key = 'S-1'").item()
    assert reason.startswith("not applied: this version (modified_at 2026-01-10 09:00:00") and "is older" in reason
    again = load_files([tmp_path / "shipment-old.csv"], warehouse, timezone=ZONE, run_id="c")
    assert [(r.rows, r.rejected) for r in again] == [(1, 1)]  # retried: the same outcome, nothing doubled
    assert warehouse.query("SELECT number, doc_date FROM documents ORDER BY number").rows() == rows
    assert warehouse.table_counts()["rejected_rows"] == 1


LINES_HEADER = "Number,Date,Status,Counterparty,Warehouse,Line,SKU,Quantity,UnitPrice,Total\n"


def _shipment_line(number: str, when: str) -> str:
    return f"{number},{when},posted,ООО Ромашка,wh-main,1,P1,2,10.00,20.00\n"


def test_a_file_whose_dates_are_all_unreadable_rejects_every_row_and_prints_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "shipment-bad-dates.csv"
    csv.write_text(LINES_HEADER + _shipment_line("A-1", "not a date") + _shipment_line("A-2", "31.02.2026"))
    assert main(["load", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "shipment" in out and "total" in out
    warehouse = Warehouse(Settings.from_env().data_dir, ZONE)
    rejected = warehouse.query("SELECT record_key, reason FROM rejected_rows ORDER BY record_key")
    assert rejected["record_key"].to_list() == ["A-1", "A-2"]
    assert all("date" in reason for reason in rejected["reason"])
    assert warehouse.table_counts()["documents"] == 0


@pytest.mark.parametrize("edge", ["9999-12-31T23:59:59", "9999-12-31T00:00:00", "10000-01-01T00:00:00"])
def test_a_date_at_the_end_of_the_calendar_is_a_rejected_row_not_an_overflow(
    edge: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = tmp_path / "shipment-edge.csv"
    alone.write_text(LINES_HEADER + _shipment_line("E-1", edge))
    mixed = tmp_path / "shipment-mixed.csv"
    mixed.write_text(LINES_HEADER + _shipment_line("A-1", "2026-01-05T10:00:00") + _shipment_line("E-2", edge))
    assert main(["load", str(alone)]) == 0
    assert main(["load", str(mixed)]) == 0
    assert "total" in capsys.readouterr().out
    warehouse = Warehouse(Settings.from_env().data_dir, ZONE)
    assert warehouse.query("SELECT number FROM documents")["number"].to_list() == ["A-1"]
    rejected = warehouse.query("SELECT record_key, reason FROM rejected_rows ORDER BY record_key")
    assert rejected["record_key"].to_list() == ["E-1", "E-2"] and all(r for r in rejected["reason"])


@pytest.mark.parametrize("quote", ['"', ""])
def test_cli_load_rejects_a_huge_field_with_its_line_and_lands_the_rows_after_it(
    quote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEC_CSV_MAX_FIELD_BYTES", "10000")
    monkeypatch.setenv("ONEC_CSV_MAX_RECORD_BYTES", "40000")
    csv = tmp_path / "shipment-huge.csv"
    with csv.open("w", encoding="utf-8") as handle:
        handle.write(LINES_HEADER.replace("Total\n", "Total,Notes\n"))
        handle.write(_shipment_line("A-1", "2026-01-05T10:00:00").replace("\n", ",ok\n"))
        handle.write(_shipment_line("H-1", "2026-01-05T11:00:00").replace("\n", f",{quote}{'ж' * 2_000_000}{quote}\n"))
        handle.write(_shipment_line("A-2", "2026-01-06T10:00:00").replace("\n", ",ok\n"))
    assert main(["load", str(csv)]) == 0
    assert "total" in capsys.readouterr().out
    warehouse = Warehouse(Settings.from_env().data_dir, ZONE)
    assert warehouse.query("SELECT number FROM documents ORDER BY number")["number"].to_list() == ["A-1", "A-2"]
    rejected = warehouse.query("SELECT record_key, reason, length(raw) AS raw FROM rejected_rows").rows()
    assert len(rejected) == 1 and rejected[0][0] == "file line 3" and rejected[0][2] <= 201
    assert "a record of 4000" in rejected[0][1] and "over the limit of 40000 bytes" in rejected[0][1]
