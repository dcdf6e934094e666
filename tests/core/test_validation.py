"""Each validation rule rejects with its reason; nothing is ever dropped; output frames match the canonical
schemas."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest

from onec.rules import DEFAULT_RULES, Rule, Severity, ValidationRules
from onec.schema import document_lines_schema, documents_schema, goods_schema, rejected_rows_schema
from onec.validation import CheckedBatch, check_documents, check_goods

ZONE = "Europe/Moscow"
JAN = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))
LATEST = DEFAULT_RULES.plausible_window(ZONE)[1]
"""The end of the default plausible window today (today + 1 year in the 1C zone)."""


def good(**changes: Any) -> dict[str, Any]:
    record = {
        "id": "8a0c", "code": "00-01", "sku": "PROD-001", "name": "Товар 1", "unit": "шт", "price": 15.5,
        "quantity": 100, "warehouse": "wh-main", "deleted": False, "modified_at": "2026-01-31T10:15:00",
        "unknown_field": {"kept": "in raw"},
    }  # fmt: skip
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def document(doc_type: str = "goods-receipt", items: Any = None, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "5f3d", "number": "00001", "date": "2026-01-31T10:00:00", "status": "posted", "posted": True,
        "supplier": "ООО Поставщик", "warehouse": "wh-main", "notes": "Приход", "deleted": False,
        "modified_at": "2026-01-31T10:15:00",
        "items": [line(), line(line=2, sku="PROD-002")] if items is None else items,
    }  # fmt: skip
    if doc_type == "shipment":
        record["customer"] = record.pop("supplier")
    elif doc_type != "goods-receipt":
        del record["supplier"]
    if doc_type == "transfer":
        record["warehouse_to"] = "wh-2"
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def line(**changes: Any) -> dict[str, Any]:
    record = {
        "line": 1,
        "sku": "PROD-001",
        "name": "Товар 1",
        "quantity": 10,
        "unit_price": 15.5,
        "total": 155.0,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def goods(records: list[Any]) -> CheckedBatch:
    batch = check_goods(records, snapshot_date=dt.date(2026, 1, 31), timezone=ZONE, run_id="run-1")
    assert batch.goods is not None
    assert batch.goods.height + batch.rejected.height == len(records)
    return batch


def documents(records: list[Any], doc_type: str = "goods-receipt") -> CheckedBatch:
    batch = check_documents(records, doc_type=doc_type, date_from=JAN[0], date_to=JAN[1], timezone=ZONE, run_id="r")
    assert batch.documents is not None and batch.lines is not None
    assert batch.documents.height + batch.rejected.height == len(records)
    return batch


def reason(batch: CheckedBatch) -> str:
    assert batch.rejected.height == 1, batch.rejected
    return str(batch.rejected["reason"][0])


def test_goods_frames_match_the_canonical_schemas_exactly() -> None:
    batch = goods([good(), good(sku="X", quantity="abc")])
    assert batch.goods is not None
    assert batch.goods.schema == goods_schema(ZONE)
    assert batch.rejected.schema == rejected_rows_schema()
    row = batch.goods.row(0, named=True)
    assert row["quantity"] == Decimal("100.000") and row["price"] == Decimal("15.5000")
    assert row["modified_at"].isoformat() == "2026-01-31T10:15:00+03:00"


def test_goods_variations_of_section_1_9_are_accepted() -> None:
    batch = goods(
        [
            good(
                sku="PROD-1   ",
                price="15,50",
                quantity=" 100 ",
                deleted="Да",
                modified_at="0001-01-01T00:00:00",
            ),
            good(sku="PROD-2", price=None, unit=..., code=..., id=..., deleted=..., modified_at=...),
        ]
    )
    assert batch.rejected.is_empty()
    assert batch.goods is not None
    first, second = batch.goods.to_dicts()
    assert (first["sku"], first["price"], first["deleted"], first["modified_at"]) == (
        "PROD-1",
        Decimal("15.5"),
        True,
        None,
    )
    assert (second["price"], second["unit"], second["deleted"]) == (None, None, False)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sku": "  "}, "sku: required"),
        ({"name": ...}, "name: required"),
        ({"warehouse": None}, "warehouse: required"),
        ({"quantity": ...}, "quantity: required"),
        ({"quantity": "много"}, "quantity: not a number 'много'"),
        ({"quantity": "1.0001"}, "quantity: more than 3 decimal places '1.0001'"),
        ({"price": "15.12345"}, "price: more than 4 decimal places '15.12345'"),
        ({"price": "x"}, "price: not a number 'x'"),
        ({"deleted": "maybe"}, "deleted: not a boolean 'maybe'"),
        ({"modified_at": "yesterday"}, "modified_at: not a date 'yesterday'"),
        ({"sku": ["a"]}, "sku: expected a single value, got an object or a list"),
    ],
)
def test_each_goods_rule_rejects_with_its_reason(changes: dict[str, Any], expected: str) -> None:
    assert reason(goods([good(**changes)])) == expected


def test_a_rejected_record_keeps_every_reason_and_the_raw_record() -> None:
    record = good(sku="", quantity="x", price="y")
    batch = goods([good(), record, "not an object"])
    rejected = batch.rejected.to_dicts()
    assert rejected[0]["reason"] == "quantity: not a number 'x'; price: not a number 'y'; sku: required"
    assert rejected[0]["record_key"] == "|wh-main"
    assert orjson.loads(rejected[0]["raw"]) == record
    assert "Товар 1" in rejected[0]["raw"]
    assert rejected[0]["partition_date"] == dt.date(2026, 1, 31)
    assert (rejected[0]["entity"], rejected[0]["doc_type"], rejected[0]["run_id"]) == ("goods", None, "run-1")
    assert rejected[1]["reason"] == "record: expected an object, got str"


def test_document_frames_match_the_canonical_schemas_exactly() -> None:
    batch = documents([document()])
    assert batch.documents is not None and batch.lines is not None
    assert batch.documents.schema == documents_schema(ZONE)
    assert batch.lines.schema == document_lines_schema()
    assert batch.lines.height == 2
    header = batch.documents.row(0, named=True)
    assert (header["counterparty"], header["status"], header["posted"]) == ("ООО Поставщик", "posted", True)


def test_late_evening_in_moscow_lands_on_that_moscow_day() -> None:
    batch = documents([document(date="2026-01-31T23:30:00")])
    assert batch.documents is not None and batch.lines is not None
    assert batch.documents["doc_date"].to_list() == [dt.date(2026, 1, 31)]
    assert batch.lines["doc_date"].to_list() == [dt.date(2026, 1, 31)] * 2
    assert batch.documents["date"][0].isoformat() == "2026-01-31T23:30:00+03:00"


def test_counterparty_arrives_under_the_types_field_or_counterparty() -> None:
    shipment = documents([document("shipment")], "shipment")
    alias = documents([document(supplier=..., counterparty="ООО Другой")])
    assert shipment.documents is not None and alias.documents is not None
    assert shipment.documents["counterparty"].to_list() == ["ООО Поставщик"]
    assert alias.documents["counterparty"].to_list() == ["ООО Другой"]


def test_posted_is_derived_from_status_and_status_from_posted() -> None:
    batch = documents([document(number="1", posted=..., status="draft"), document(number="2", status=..., posted="Да")])
    assert batch.documents is not None
    assert batch.documents.select("status", "posted").rows() == [("draft", False), ("posted", True)]


@pytest.mark.parametrize(
    ("doc_type", "changes", "expected"),
    [
        ("goods-receipt", {"number": ...}, "number: required"),
        ("goods-receipt", {"date": "31/01/2026"}, "date: not a date '31/01/2026'"),
        ("goods-receipt", {"date": ...}, "date: required"),
        ("goods-receipt", {"warehouse": ""}, "warehouse: required"),
        ("goods-receipt", {"status": "cancelled"}, "status: must be draft or posted, got 'cancelled'"),
        ("goods-receipt", {"status": ..., "posted": ...}, "status: required"),
        ("goods-receipt", {"status": "draft", "posted": True}, "status 'draft' disagrees with posted=true"),
        ("transfer", {"warehouse_to": ...}, "warehouse_to: required for a transfer"),
        ("transfer", {"warehouse_to": "wh-main"}, "warehouse_to: same as warehouse"),
        ("goods-receipt", {"date": "2026-02-01T00:00:00"},
         "date: day 2026-02-01 is outside the requested range [2026-01-01, 2026-02-01)"),
        ("goods-receipt", {"date": "0002-06-01T00:00:00"},
         f"date 0002-06-01 is outside the plausible window 2000-01-01…{LATEST}"),
        ("goods-receipt", {"date": "9999-12-31T23:59:59"},
         f"date 9999-12-31 is outside the plausible window 2000-01-01…{LATEST}"),
        ("goods-receipt", {"items": []}, "no lines"),
        ("goods-receipt", {"items": ...}, "no lines"),
        ("goods-receipt", {"items": "abc"}, "items: expected a list of lines"),
    ],
)  # fmt: skip
def test_each_header_rule_rejects_with_its_reason(doc_type: str, changes: dict[str, Any], expected: str) -> None:
    assert reason(documents([document(doc_type, **changes)], doc_type)) == expected


@pytest.mark.parametrize(
    ("doc_type", "bad_line", "expected"),
    [
        ("goods-receipt", line(line=2, sku=...), "line 2: sku: required"),
        ("goods-receipt", line(line=2, quantity=...), "line 2: quantity: required"),
        ("goods-receipt", line(line=2, unit_price="x"), "line 2: unit_price: not a number 'x'"),
        ("goods-receipt", line(line=2, total=...), "line 2: total: required"),
        ("goods-receipt", line(line=1),
         "line 1: line: number used twice in the document; line 1: line: number used twice in the document"),
        ("goods-receipt", line(line=0), "line 0: line: must be positive"),
        ("goods-receipt", line(line=...), "line #2: line: required"),
        ("goods-receipt", line(line="2.5"), "line 2.5: line: not a whole number '2.5'"),
        ("shipment", line(line=2, quantity=0, total=0), "line 2: quantity: must be > 0, got 0.000"),
        ("adjustment-down", line(line=2, quantity=-1, total=-15.5),
         "line 2: quantity: must be > 0, got -1.000"),
        ("goods-receipt", line(line=2, unit_price=-1, total=-10),
         "line 2: unit_price: must be ≥ 0, got -1.0000"),
        ("goods-receipt", line(line=2, total=155.01),
         "line 2: total 155.01 ≠ quantity × unit_price = 155.0000"),
        ("goods-receipt", "not a line", "line #2: expected an object, got str"),
    ],
)  # fmt: skip
def test_each_line_rule_rejects_the_whole_document(doc_type: str, bad_line: Any, expected: str) -> None:
    record = document(doc_type, items=[line(), bad_line])
    batch = documents([record], doc_type)
    assert reason(batch) == expected
    assert batch.lines is not None and batch.lines.is_empty()
    assert orjson.loads(batch.rejected["raw"][0]) == record


def test_total_within_half_a_kopeck_is_accepted() -> None:
    batch = documents([document(items=[line(quantity=3, unit_price="0.3333", total="1.00")])])
    assert batch.rejected.is_empty()


def test_inventory_needs_book_quantity_and_allows_zero_counts() -> None:
    ok = document("inventory", items=[line(quantity=0, total=0, book_quantity=5)])
    missing = document("inventory", number="2", items=[line(book_quantity=...)])
    batch = documents([ok, missing], "inventory")
    assert batch.lines is not None and batch.lines["book_quantity"].to_list() == [Decimal(5)]
    assert batch.rejected["reason"].to_list() == ["line 1: book_quantity: required for an inventory"]


def test_unparseable_date_partitions_the_reject_on_date_from() -> None:
    batch = documents([document(date="garbage"), document(number="2", date="2026-01-15T10:00:00", warehouse=...)])
    assert batch.rejected["partition_date"].to_list() == [JAN[0], dt.date(2026, 1, 15)]
    assert batch.rejected["record_key"].to_list() == ["00001", "2"]


def test_nothing_is_dropped_in_a_mixed_page() -> None:
    records: list[Any] = []
    for n in range(50):
        record = document(number=f"{n:05d}", date=f"2026-01-{n % 28 + 1:02d}T12:00:00")
        if n % 7 == 0:
            record["items"][1]["quantity"] = "bad"
        if n % 11 == 0:
            record["status"] = "weird"
        records.append(record)
    records += [None, 42, "x", {"items": [None]}]
    before = copy.deepcopy(records)
    batch = documents(records)
    assert batch.documents is not None and batch.lines is not None
    assert batch.documents.height == 50 - len({n for n in range(50) if n % 7 == 0 or n % 11 == 0})
    assert batch.lines.height == 2 * batch.documents.height
    assert batch.rejected.height == len(records) - batch.documents.height
    assert records == before, "validation must not modify what 1C sent"


def test_line_document_rows_link_lines_to_their_document_even_with_repeated_numbers() -> None:
    first = document(items=[line()])
    second = document(modified_at="2026-01-31T11:00:00", items=[line(), line(line=2, sku="PROD-002")])
    batch = documents([first, second])
    assert batch.line_document_rows is not None
    assert batch.line_document_rows.to_list() == [0, 1, 1]


def test_empty_page() -> None:
    batch = documents([])
    assert batch.documents is not None and batch.documents.is_empty()
    assert batch.rejected.is_empty()


# 1C's own rules (docs/validation.md): odd but real data lands with a note, counted per rule.


def strict(*rules: Rule) -> ValidationRules:
    """The default rules with `rules` raised to reject (a base that forbids what 1C allows by default)."""
    return ValidationRules(severities={**DEFAULT_RULES.severities, **dict.fromkeys(rules, Severity.REJECT)})


def test_negative_book_quantity_lands_with_a_note() -> None:
    negative = document("inventory", items=[line(book_quantity=-3), line(line=2, sku="PROD-002", book_quantity=-1)])
    counted = document("inventory", number="2", items=[line(book_quantity=4)])
    batch = documents([negative, counted], "inventory")
    assert batch.rejected.is_empty()
    assert batch.lines is not None and batch.lines["book_quantity"].to_list() == [-3, -1, 4]
    assert batch.notes == {"negative_book_quantity": 2}


def test_a_base_that_forbids_negative_stock_rejects_negative_book_quantities() -> None:
    record = document("inventory", items=[line(book_quantity=-1)])
    batch = check_documents(
        [record], doc_type="inventory", date_from=JAN[0], date_to=JAN[1], timezone=ZONE, run_id="r",
        rules=strict(Rule.NEGATIVE_BOOK_QUANTITY),
    )  # fmt: skip
    assert reason(batch) == "line 1: book_quantity: below zero, got -1.000 (negative stock)"
    assert batch.notes == {}


def test_negative_stock_and_items_without_stock_land_with_notes() -> None:
    batch = goods(
        [
            good(sku="A", quantity=-5),
            good(sku="B", quantity=0, warehouse=None),
            good(sku="C", quantity=0, warehouse=..., price=0),
            good(sku="D", quantity=3),
        ]
    )
    assert batch.rejected.is_empty()
    assert batch.goods is not None
    assert batch.goods.select("sku", "warehouse").rows() == [
        ("A", "wh-main"),
        ("B", None),
        ("C", None),
        ("D", "wh-main"),
    ]
    assert batch.notes == {"negative_stock": 1, "item_without_stock": 2, "zero_price": 1}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"warehouse": None, "quantity": 2}, "warehouse: required"),
        ({"warehouse": None, "quantity": -2}, "warehouse: required"),
    ],
)
def test_a_row_without_warehouse_must_be_an_item_without_stock(changes: dict[str, Any], expected: str) -> None:
    assert reason(goods([good(**changes)])) == expected


def test_strict_goods_rules_reject_with_their_reason() -> None:
    records = [good(sku="A", quantity=-5), good(sku="B", quantity=0, warehouse=None)]
    batch = check_goods(
        records, snapshot_date=dt.date(2026, 1, 31), timezone=ZONE, run_id="r",
        rules=strict(Rule.NEGATIVE_STOCK, Rule.ITEM_WITHOUT_STOCK),
    )  # fmt: skip
    assert batch.rejected["reason"].to_list() == [
        "quantity: below zero, got -5.000 (negative stock)",
        "warehouse: required (an item without stock anywhere, quantity 0)",
    ]


@pytest.mark.parametrize("doc_type", ["goods-receipt", "shipment"])
def test_a_document_without_counterparty_lands_with_a_note(doc_type: str) -> None:
    field_name = "supplier" if doc_type == "goods-receipt" else "customer"
    batch = documents([document(doc_type, **{field_name: None})], doc_type)
    assert batch.rejected.is_empty()
    assert batch.documents is not None and batch.documents["counterparty"].to_list() == [None]
    assert batch.notes == {"no_counterparty": 1}
    strict_batch = check_documents(
        [document(doc_type, **{field_name: ...})], doc_type=doc_type, date_from=JAN[0], date_to=JAN[1],
        timezone=ZONE, run_id="r", rules=strict(Rule.NO_COUNTERPARTY),
    )  # fmt: skip
    assert reason(strict_batch) == f"{field_name}: required"


def test_lines_without_prices_land_with_a_note() -> None:
    record = document(items=[line(unit_price=None, total=None), line(line=2, sku="PROD-2", unit_price=..., total=...)])
    batch = documents([record])
    assert batch.rejected.is_empty()
    assert batch.lines is not None
    assert batch.lines.select("unit_price", "total").rows() == [(None, None), (None, None)]
    assert batch.notes == {"line_without_price": 2}


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (line(line=2, unit_price=None), "line 2: unit_price: required"),
        (line(line=2, total=None), "line 2: total: required"),
    ],
)
def test_a_price_without_its_total_or_the_reverse_is_rejected(bad_line: dict[str, Any], expected: str) -> None:
    assert reason(documents([document(items=[line(), bad_line])])) == expected


def test_an_empty_tabular_row_lands_with_a_note() -> None:
    empty = line(line=2, sku=None, name=None, quantity=0, unit_price=0, total=0)
    inventory_empty = line(line=2, sku=..., name=..., quantity=0, unit_price=..., total=..., book_quantity=0)
    batch = documents([document(items=[line(), empty])])
    inventory = documents([document("inventory", items=[line(book_quantity=10), inventory_empty])], "inventory")
    assert batch.rejected.is_empty() and inventory.rejected.is_empty()
    assert batch.lines is not None and batch.lines.select("sku", "quantity").rows() == [
        ("PROD-001", Decimal(10)),
        (None, Decimal(0)),
    ]
    assert batch.notes == {"empty_line": 1}
    assert inventory.notes == {"empty_line": 1}


def test_a_line_without_item_but_with_a_quantity_is_rejected() -> None:
    assert reason(documents([document(items=[line(), line(line=2, sku=None)])])) == "line 2: sku: required"


def test_zero_prices_land_with_a_note() -> None:
    batch = documents([document(items=[line(unit_price=0, total=0)])])
    assert batch.rejected.is_empty()
    assert batch.notes == {"zero_price": 1}


def test_a_total_mismatch_can_be_configured_to_land_with_a_note() -> None:
    record = document(items=[line(total="150.00")])
    rules = ValidationRules(severities={**DEFAULT_RULES.severities, Rule.TOTAL_MISMATCH: Severity.NOTE})
    batch = check_documents([record], doc_type="goods-receipt", date_from=JAN[0], date_to=JAN[1], timezone=ZONE,
                            run_id="r", rules=rules)  # fmt: skip
    assert batch.rejected.is_empty()
    assert batch.notes == {"total_mismatch": 1}
    wider = ValidationRules(total_tolerance=Decimal(5))
    assert check_documents([record], doc_type="goods-receipt", date_from=JAN[0], date_to=JAN[1], timezone=ZONE,
                           run_id="r", rules=wider).rejected.is_empty()  # fmt: skip


def test_checks_follow_the_rules_and_window_of_each_call_whatever_was_checked_before() -> None:
    """The checks are built once per rules, window and zone (`onec.validation._Plan`): calls that alternate them
    must each get their own."""
    mismatch = document(items=[line(total="150.00")])
    noted = ValidationRules(severities={**DEFAULT_RULES.severities, Rule.TOTAL_MISMATCH: Severity.NOTE})
    same_as_default = ValidationRules(severities=dict(DEFAULT_RULES.severities))
    late = (dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    outcomes = []
    for rules, window, zone in [
        (DEFAULT_RULES, JAN, ZONE), (noted, JAN, ZONE), (same_as_default, JAN, ZONE), (noted, late, ZONE),
        (ValidationRules(total_tolerance=Decimal(5)), JAN, ZONE), (noted, JAN, "Asia/Vladivostok"),
    ]:  # fmt: skip
        batch = check_documents([mismatch], doc_type="goods-receipt", date_from=window[0], date_to=window[1],
                                timezone=zone, run_id="r", rules=rules)  # fmt: skip
        outcomes.append(batch.rejected["reason"].to_list() or batch.notes)
    assert outcomes == [
        ["line 1: total 150.00 ≠ quantity × unit_price = 155.0000"],
        {"total_mismatch": 1},
        ["line 1: total 150.00 ≠ quantity × unit_price = 155.0000"],
        ["date: day 2026-01-31 is outside the requested range [2026-02-01, 2026-03-01)"],
        {},
        {"total_mismatch": 1},
    ]
    stock = [good(quantity=-1)]
    strict_stock = strict(Rule.NEGATIVE_STOCK)
    reasons = [
        check_goods(stock, snapshot_date=JAN[0], timezone=ZONE, run_id="r", rules=rules).rejected.height
        for rules in (DEFAULT_RULES, strict_stock, DEFAULT_RULES)
    ]
    assert reasons == [0, 1, 0]


def test_notes_count_only_rows_that_land() -> None:
    rejected = document(number="1", supplier=None, items=[line(unit_price=..., total=...), line(line=2, quantity="x")])
    landed = document(number="2", supplier=None, items=[line()])
    batch = documents([rejected, landed])
    assert batch.rejected["record_key"].to_list() == ["1"]
    assert batch.notes == {"no_counterparty": 1}


def test_the_plausible_window_is_configuration_and_rejects_on_its_bounds() -> None:
    rules = ValidationRules(earliest_date=dt.date(2026, 1, 15), years_ahead=0)
    early = document(number="1", date="2026-01-14T23:59:59")
    first = document(number="2", date="2026-01-15T00:00:00")
    batch = check_documents([early, first], doc_type="goods-receipt", date_from=JAN[0], date_to=JAN[1],
                            timezone=ZONE, run_id="r", rules=rules)  # fmt: skip
    assert batch.documents is not None and batch.documents["number"].to_list() == ["2"]
    _, today = rules.plausible_window(ZONE)
    assert batch.rejected["reason"].to_list() == [f"date 2026-01-14 is outside the plausible window 2026-01-15…{today}"]
    assert batch.rejected["partition_date"].to_list() == [dt.date(2026, 1, 14)]


def test_the_window_ends_a_year_after_today_in_the_1c_zone() -> None:
    assert DEFAULT_RULES.plausible_window(ZONE, today=dt.date(2026, 12, 3)) == (
        dt.date(2000, 1, 1),
        dt.date(2027, 12, 3),
    )
    assert DEFAULT_RULES.plausible_window(ZONE, today=dt.date(2028, 2, 29))[1] == dt.date(2029, 2, 28)
    assert ValidationRules(years_ahead=9000).plausible_window(ZONE, today=dt.date(2026, 1, 1))[1].year == 9999


def test_a_line_in_packs_may_miss_its_total_by_the_base_price_rounding() -> None:
    """1C prices a pack of 12 at 100.00; in base units that is 8.3333 (PRICE scale), so 14,400 units × 8.3333 miss
    120,000.00 by 0.48: real data, not an error. The same miss without a pack is still a reject."""
    in_packs = line(quantity="14400", unit_price="8.3333", total="120000.00", unit_coefficient="12",
                    line_unit="упак (12 шт)")  # fmt: skip
    assert documents([document(items=[in_packs])]).rejected.is_empty()
    in_base_units = line(quantity="14400", unit_price="8.3333", total="120000.00")
    assert "total 120000.00 ≠ quantity × unit_price" in reason(documents([document(items=[in_base_units])]))
