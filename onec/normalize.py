"""Turn 1C values, in any of the spellings the contract allows (§1.9), into typed Polars columns.

Why expressions and not per-value Python: a page of records is first laid out as all-String columns (one cheap
pass per field), then every cleaning step (trim, decimal comma, casts, empty-date marker) runs as a vectorised
Polars expression. Parsing yields the typed value *and* an unreadable-value flag, so validation can reject
a record with every reason at once instead of failing on the first bad value, and a bad value can never crash
the run or be silently turned into null.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, Final

import orjson
import polars as pl

NOT_SCALAR = "\x00<not a scalar>"
"""Stands in for an object or a list where 1C should have sent one value; no real 1C string contains NUL."""

_SHOWN_CHARS = 40
_DECIMAL_SPELLING = [",", " ", "\u00a0", "\u202f"]
"""A decimal comma and the spaces 1C groups digits with; `_DECIMAL_CLEANED` is what each becomes."""
_DECIMAL_CLEANED = [".", "", "", ""]
_DECIMAL_SYNTAX = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
_INTEGER_SYNTAX = r"^[+-]?\d+$"
_EMPTY_DATE_PREFIX = "0001-01-01"
_TRUE_WORDS = ("true", "1", "да")
_FALSE_WORDS = ("false", "0", "нет")


def text_frame(rows: Sequence[dict[str, Any]], columns: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """All-String frame with one column per output name, taken from the first source key present in each row.

    `columns` maps an output column to the keys it may arrive under (counterparty ← supplier | counterparty).
    Unknown keys are ignored here; they stay in the raw JSON of a rejected record. Polars reads the dicts in
    one native pass (numbers keep their digits, booleans become true/false); a page holding objects or numbers
    Polars cannot hold is read column by column instead.
    """
    keys = list(dict.fromkeys(key for sources in columns.values() for key in sources))
    schema = dict.fromkeys(keys, pl.String)
    try:
        wide = pl.from_dicts(rows, schema=schema, strict=False) if rows else pl.DataFrame(schema=schema)
    except (OverflowError, TypeError, pl.exceptions.PolarsError):
        wide = pl.DataFrame([text_series(key, [row.get(key) for row in rows]) for key in keys])
    return named_text(wide, columns)


def named_text(wide: pl.DataFrame, columns: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """`text_frame` for records already laid out as String columns under their source names: each output column
    from the first of its sources that has a value; a source the frame lacks counts as absent."""
    missing = dict.fromkeys(key for sources in columns.values() for key in sources if key not in wide.columns)
    wide = wide.with_columns(pl.lit(None, pl.String).alias(key) for key in missing)
    return wide.select(pl.coalesce(*(pl.col(key) for key in sources)).alias(name) for name, sources in columns.items())


def text_series(name: str, values: list[Any]) -> pl.Series:
    """A String series of what 1C sent, value by value: the slow path for a page that holds garbage."""
    return pl.Series(name, [_scalar_text(v) for v in values], dtype=pl.String)


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return NOT_SCALAR


class Kind(Enum):
    """How a column's text is read."""

    TEXT = "text"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    INSTANT = "instant"


@dataclass(frozen=True)
class Column:
    """One canonical column: its name (also the name of its raw String column), how to read it, its dtype."""

    name: str
    kind: Kind
    dtype: pl.DataType = field(default_factory=pl.String)


BATCH_ENGINE: Final = "in-memory"
"""The Polars engine a batch's checks are collected with: on frames of a few thousand rows the in-memory engine
finishes sooner than the default streaming one, whose pipeline pays off on data larger than a batch
(docs/benchmarks.md, History)."""

Check = tuple[pl.Expr, pl.Expr]
"""(failing condition, message): conditions run on every row, messages only on the rows that failed."""


def raw_name(name: str) -> str:
    return f"{name}__raw"


def bad_name(name: str) -> str:
    return f"{name}__bad"


def parse(frame: pl.DataFrame, columns: Sequence[Column], timezone: str) -> pl.LazyFrame:
    """Turn each raw String column into its typed value; keep the text as `<name>__raw` and flag unreadable
    values in `<name>__bad` (present but not readable: never silently null).

    Lazy, so the caller adds its checks to the same query and Polars plans it once (on a page of a few
    thousand rows, planning costs as much as the work); cleaning is one step and reading another, because
    cleaning once into a column is much faster than repeating it inside every expression that needs it.
    """
    renames, cleaned, typed = _parse_steps(tuple(columns), timezone)
    return frame.lazy().rename(renames).with_columns(cleaned).with_columns(typed)


@functools.lru_cache(maxsize=32)
def _parse_steps(
    columns: tuple[Column, ...], timezone: str
) -> tuple[Mapping[str, str], tuple[pl.Expr, ...], tuple[pl.Expr, ...]]:
    """`parse`'s renames, cleaning and reading, built once per column set and zone: every batch is checked with
    the same expressions, and building them in Python costs a good part of checking a batch."""
    return (
        MappingProxyType({c.name: raw_name(c.name) for c in columns}),
        tuple(_cleaned(c).alias(c.name) for c in columns),
        tuple(expr for c in columns for expr in _typed(c, timezone)),
    )


def problems(columns: Sequence[Column]) -> list[Check]:
    """The unreadable-value checks of `parse`, each with a message naming the field and the value."""
    return list(_problems(tuple(columns)))


@functools.lru_cache(maxsize=32)
def _problems(columns: tuple[Column, ...]) -> tuple[Check, ...]:
    return tuple((pl.col(bad_name(c.name)), _message(c)) for c in columns)


def _cleaned(column: Column) -> pl.Expr:
    """Text ready to cast: trimmed (1C pads strings), decimal comma and digit grouping removed, 1C's empty
    date dropped; empty means absent.

    The text of a number or a boolean stays empty instead of turning null (`_typed` reads "" as absent): on a
    batch of a few thousand rows each step costs about as much as the cast, so those skip that one."""
    raw = pl.col(raw_name(column.name))
    if column.kind is Kind.DECIMAL:
        return raw.str.strip_chars().str.replace_many(_DECIMAL_SPELLING, _DECIMAL_CLEANED)
    if column.kind is Kind.INTEGER:
        return raw.str.strip_chars()
    if column.kind is Kind.BOOLEAN:
        return raw.str.strip_chars().str.to_lowercase()
    if column.kind is Kind.INSTANT:
        text = raw.str.strip_chars().str.replace(" ", "T", literal=True)
        text = pl.when(~text.str.starts_with(_EMPTY_DATE_PREFIX)).then(text)
    else:
        text = raw.str.strip_chars()
    return pl.when((text != "") & (raw != NOT_SCALAR)).then(text)


def _typed(column: Column, timezone: str) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, bad flag) read from the cleaned text column."""
    text = pl.col(column.name)
    if column.kind in (Kind.DECIMAL, Kind.INTEGER, Kind.BOOLEAN):
        present = text.str.len_bytes() > 0  # see `_cleaned`; an object or a list is not empty, so it is present
    else:
        present = text.is_not_null() | (pl.col(raw_name(column.name)) == NOT_SCALAR)
    if column.kind is Kind.DECIMAL:
        value = _decimal(text, column.dtype)
    elif column.kind is Kind.INTEGER:
        value = pl.when(text.str.contains(_INTEGER_SYNTAX)).then(text.cast(column.dtype, strict=False))
    elif column.kind is Kind.BOOLEAN:
        words = {**dict.fromkeys(_TRUE_WORDS, True), **dict.fromkeys(_FALSE_WORDS, False)}
        value = text.replace_strict(words, default=None, return_dtype=pl.Boolean)
    elif column.kind is Kind.INSTANT:
        value = _instant(text, timezone)
    else:
        value = text
    return value.alias(column.name), (present & value.is_null()).fill_null(False).alias(bad_name(column.name))


def _decimal(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Decimal from `15.5`, `"15,50"`, `" 15.50 "` or `"1 234,5"`; never rounded.

    A value with more significant decimals than the column's scale, or more integer digits than it holds, is
    unreadable: a cast would silently round or overflow it. Exponent notation is not a 1C spelling. One regex
    checks syntax, scale and size at once (a scan per rule cost several times as much).
    """
    return pl.when(text.str.contains(_fitting_decimal(dtype))).then(text.cast(dtype, strict=False))


def _fitting_decimal(dtype: pl.DataType) -> str:
    """A plain decimal (`_DECIMAL_SYNTAX`) with at most the dtype's integer digits once leading zeros are
    dropped, and at most its scale in decimals once trailing zeros are dropped."""
    assert isinstance(dtype, pl.Decimal)
    scale, integer_digits = dtype.scale, (dtype.precision or 38) - dtype.scale
    fraction = rf"\d{{0,{scale}}}0*"
    return rf"^[+-]?0*(?:\d{{1,{integer_digits}}}(?:\.{fraction})?|\.\d{{1,{scale}}}0*|\.0+)$"


def _instant(text: pl.Expr, timezone: str) -> pl.Expr:
    """A 1C date: local time without offset in the server's zone → aware datetime in that zone.

    A date alone means midnight; an explicit offset (not in the contract, but harmless) is converted to the
    zone. A local time that does not exist there (a DST gap) is unreadable; an ambiguous one takes the
    earlier.

    Speed: the spelling nearly every value has (seconds, no fraction) is parsed first, uncached (every
    document's date is its own); the others are tried only on what that could not read: Polars' parser with a
    fraction or an offset in its format is several times slower, and a column of nulls costs next to nothing.
    """
    whole_seconds = text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False, cache=False)
    unread = pl.when(whole_seconds.is_null()).then(text)
    local = pl.coalesce(
        whole_seconds,
        unread.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False),
        unread.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
    )
    naive = local.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    with_offset = pl.when(naive.is_null()).then(text)
    offset = with_offset.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
    return pl.coalesce(naive, offset.dt.convert_time_zone(timezone))


def _message(column: Column) -> pl.Expr:
    """Why a value could not be read; only evaluated on failing rows, so it may take its time."""
    raw = pl.col(raw_name(column.name))
    shown = pl.format("'{}'", raw.str.slice(0, _SHOWN_CHARS))
    name = column.name
    if column.kind is Kind.DECIMAL:
        assert isinstance(column.dtype, pl.Decimal)
        text = _cleaned(column)
        dot = text.str.find(".", literal=True)
        too_precise = (text.str.strip_chars_end("0").str.len_chars() - dot - 1) > column.dtype.scale
        specific = (
            pl.when(~text.str.contains(_DECIMAL_SYNTAX))
            .then(pl.format(f"{name}: not a number {{}}", shown))
            .when(dot.is_not_null() & too_precise)
            .then(pl.format(f"{name}: more than {column.dtype.scale} decimal places {{}}", shown))
            .otherwise(pl.format(f"{name}: out of range {{}}", shown))
        )
    else:
        what = {
            Kind.TEXT: "not a text",
            Kind.INTEGER: "not a whole number",
            Kind.BOOLEAN: "not a boolean",
            Kind.INSTANT: "not a date",
        }[column.kind]
        specific = pl.format(f"{name}: {what} {{}}", shown)
    return (
        pl.when(raw == NOT_SCALAR)
        .then(pl.lit(f"{name}: expected a single value, got an object or a list"))
        .otherwise(specific)
    )


def join_problems(checks: Sequence[Check]) -> pl.Expr:
    """All failing checks of a row in one text, separated by "; " (null when none failed)."""
    joined = pl.concat_str([pl.when(cond).then(message) for cond, message in checks], separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def failed(checks: Sequence[Check]) -> pl.Expr:
    """True when any check fails; never null (a null here would drop a record from both outcomes)."""
    return pl.any_horizontal([cond.fill_null(False) for cond, _ in checks]).fill_null(False)


def raw_json(record: Any) -> str:
    """The record as 1C sent it, as JSON with non-ASCII kept (Cyrillic stays readable in rejected_rows)."""
    return orjson.dumps(record, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal | dt.date | dt.datetime):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)
