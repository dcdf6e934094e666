"""Every §1.9 spelling of a number, boolean or date reads back to the same value; garbage is refused, never
a crash."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from onec.normalize import Column, Kind, bad_name, parse, raw_json, text_frame
from onec.schema import PRICE, QUANTITY

ZONE = "Europe/Moscow"


def read(column: Column, values: list[Any]) -> tuple[list[Any], list[bool]]:
    """Run values through the real path: dicts → String frame → typed column and bad flags."""
    frame = text_frame([{column.name: v} for v in values], {column.name: (column.name,)})
    typed = parse(frame, [column], ZONE).collect()
    return typed[column.name].to_list(), typed[bad_name(column.name)].to_list()


QTY = Column("quantity", Kind.DECIMAL, QUANTITY)
PRC = Column("price", Kind.DECIMAL, PRICE)

quantities = st.decimals(
    min_value=Decimal("-999999999999.999"), max_value=Decimal("999999999999.999"), places=3, allow_nan=False
)


def spellings(value: Decimal) -> list[Any]:
    """The ways 1C may send one number (§1.9)."""
    text = format(value, "f")
    forms: list[Any] = [
        text,
        f" {text} ",
        text.replace(".", ","),
        f"{text}0" if "." in text else f"{text}.000",
    ]
    if value == value.to_integral_value():
        forms.append(int(value))
    if Decimal(repr(float(value))) == value:
        forms.append(float(value))
    integer, _, fraction = text.lstrip("-").partition(".")
    if len(integer) > 3:
        grouped = f"{integer[:-3]}\u00a0{integer[-3:]}"
        forms.append(("-" if value < 0 else "") + grouped + ("," + fraction if fraction else ""))
    return forms


@settings(max_examples=60, deadline=None)
@given(st.lists(quantities, min_size=1, max_size=20))
def test_any_spelling_of_a_number_reads_back_to_the_same_decimal(values: list[Decimal]) -> None:
    raw = [form for v in values for form in spellings(v)]
    expected = [v for v in values for _ in spellings(v)]
    got, bad = read(QTY, raw)
    assert not any(bad), [r for r, b in zip(raw, bad, strict=True) if b]
    assert got == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.floats(), st.integers(), st.booleans(), st.none()), max_size=30))
def test_garbage_in_a_number_column_is_refused_or_read_exactly(values: list[Any]) -> None:
    got, bad = read(QTY, values)
    assert len(got) == len(values)
    for raw, value, is_bad in zip(values, got, bad, strict=True):
        if value is None:
            assert is_bad or raw is None or (isinstance(raw, str) and not raw.strip())
        else:
            assert not is_bad
            assert isinstance(raw, int | float | str) and not isinstance(raw, bool)
            text = str(raw).strip().replace(",", ".").replace(" ", "")
            assert Decimal(text) == value


def test_more_decimals_than_the_scale_are_refused_not_rounded() -> None:
    got, bad = read(QTY, ["1.2345", "1.2340", 1.0005, "1,5"])
    assert got == [None, Decimal("1.234"), None, Decimal("1.5")]
    assert bad == [True, False, True, False]
    got, bad = read(PRC, ["15.12345", "15.1234"])
    assert bad == [True, False]


def test_out_of_range_exponent_and_empty() -> None:
    got, bad = read(QTY, ["1e3", "1000000000000000", "", "   ", None, 10**40, float("nan"), {"a": 1}, [1]])
    assert got == [None] * 9
    assert bad == [True, True, False, False, False, True, True, True, True]


def readable_decimal(raw: str, scale: int, integer_digits: int) -> Decimal | None:
    """The rules of `_decimal`, spelled out one by one in Python: the oracle its single regex must agree with."""
    text = raw.strip().replace(",", ".", 1)
    for grouping in (" ", "\u00a0", "\u202f"):
        text = text.replace(grouping, "")
    if not re.fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", text):
        return None
    whole, _, fraction = text.lstrip("+-").partition(".")
    if len(whole.lstrip("0")) > integer_digits or len(fraction.rstrip("0")) > scale:
        return None
    return Decimal(text)


number_like = st.one_of(
    st.text(alphabet="0123456789.,+- \u00a0e", max_size=24),
    st.builds(
        "{}{}{}{}{}".format,
        st.sampled_from(["", "-", "+", " "]),
        st.text(alphabet="0", max_size=3),
        st.text(alphabet="0123456789", max_size=17),
        st.sampled_from(["", ".", ","]),
        st.text(alphabet="0123456789", max_size=7),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(number_like, min_size=1, max_size=40))
def test_decimal_rules_agree_with_their_plain_python_statement(values: list[str]) -> None:
    for column in (QTY, PRC):
        assert isinstance(column.dtype, pl.Decimal)
        scale = column.dtype.scale
        integer_digits = (column.dtype.precision or 38) - scale
        got, bad = read(column, values)
        expected = [readable_decimal(v, scale, integer_digits) for v in values]
        assert got == expected
        assert bad == [e is None and v.strip() != "" for v, e in zip(values, expected, strict=True)]


BOOLEANS = [
    (True, True),
    (False, False),
    ("true", True),
    ("FALSE", False),
    (" Да ", True),
    ("нет", False),
    ("НЕТ", False),
    (1, True),
    (0, False),
    ("1", True),
    ("0", False),
    (None, None),
]


def test_boolean_spellings() -> None:
    got, bad = read(Column("deleted", Kind.BOOLEAN, pl.Boolean()), [raw for raw, _ in BOOLEANS])
    assert got == [expected for _, expected in BOOLEANS]
    assert not any(bad)


def test_boolean_garbage_is_refused() -> None:
    got, bad = read(Column("deleted", Kind.BOOLEAN, pl.Boolean()), ["yes?", 2, 1.5, "", {"x": 1}])
    assert got == [None] * 5
    assert bad == [True, True, True, False, True]


local_times = st.datetimes(min_value=dt.datetime(2015, 1, 1), max_value=dt.datetime(2099, 12, 31))


@settings(max_examples=60, deadline=None)
@given(st.lists(local_times, min_size=1, max_size=20))
def test_any_spelling_of_a_1c_date_is_that_local_time_in_the_1c_zone(values: list[dt.datetime]) -> None:
    def forms(v: dt.datetime) -> list[str]:
        out = [v.isoformat(), f"{v.isoformat(sep=' ')}   ", v.isoformat(timespec="microseconds")]
        return [*out, v.date().isoformat()] if v.time() == dt.time() else out

    raw = [f for v in values for f in forms(v)]
    expected = [v.replace(tzinfo=ZoneInfo(ZONE)) for v in values for _ in forms(v)]
    got, bad = read(Column("date", Kind.INSTANT), raw)
    assert not any(bad)
    assert got == expected
    assert all(g.utcoffset() == dt.timedelta(hours=3) for g in got)


def test_empty_1c_date_is_null_and_garbage_is_refused() -> None:
    got, bad = read(Column("date", Kind.INSTANT), ["0001-01-01T00:00:00", "2026-02-30T00:00:00", "31.01.2026", None])
    assert got == [None] * 4
    assert bad == [False, True, True, False]


def test_explicit_offset_is_converted_to_the_zone() -> None:
    got, _ = read(Column("date", Kind.INSTANT), ["2026-01-31T20:30:00+00:00"])
    assert got == [dt.datetime(2026, 1, 31, 23, 30, tzinfo=ZoneInfo(ZONE))]


def test_text_is_trimmed_and_objects_are_flagged() -> None:
    got, bad = read(Column("sku", Kind.TEXT), ["PROD-001   ", "  ", 123, {"a": 1}, None])
    assert got == ["PROD-001", None, "123", None, None]
    assert bad == [False, False, False, True, False]


def test_raw_json_keeps_cyrillic_and_survives_odd_values() -> None:
    assert raw_json({"name": "Товар", "price": Decimal("1.50")}) == '{"name":"Товар","price":"1.50"}'
    assert raw_json("garbage") == '"garbage"'
