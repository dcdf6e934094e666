"""OData v3 query options as 1C 8.3 reads them: `$filter`, `$orderby`, `$select`, `$top`, `$skip`,
`$inlinecount`, `$format`.

Why hand-written and strict: the traps are the point. 1C decodes the query string with percent-decoding only, so
a `+` is a plus and `Date+ge+datetime'…'` is a syntax error (httpx's `params=` writes spaces as `+`); literals are
typed (`guid'…'`, `datetime'…'`, `'…'` with `''` for a quote); comparing a date with a string is an error, not
"false". Everything is parsed from the raw query string, never from a form-decoded one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class QueryError(Exception):
    """A malformed query: 1C answers 400 with its v3 error body."""


@dataclass(frozen=True)
class Options:
    filter: str | None = None
    orderby: str | None = None
    select: str | None = None
    top: int | None = None
    skip: int = 0
    inlinecount: bool = False
    format: str | None = None


def parse_options(raw_query: str) -> Options:
    """The system query options from the raw (still percent-encoded) query string."""
    values: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        values[unquote(name)] = unquote(value)
    inlinecount = values.get("$inlinecount")
    if inlinecount not in (None, "allpages", "none"):
        raise QueryError(f"Неверное значение параметра $inlinecount: {inlinecount}")
    return Options(
        filter=values.get("$filter"),
        orderby=values.get("$orderby"),
        select=values.get("$select"),
        top=_count(values, "$top"),
        skip=_count(values, "$skip") or 0,
        inlinecount=inlinecount == "allpages",
        format=values.get("$format"),
    )


def _count(values: dict[str, str], name: str) -> int | None:
    text = values.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise QueryError(f"Неверное значение параметра {name}: {text}")
    return int(text)


# --- $orderby and $select


def order(rows: list[Row], orderby: str, fields: Container[str]) -> list[Row]:
    """Sort by `field [asc|desc], …`; nulls first ascending, as 1C sorts them."""
    keys: list[tuple[str, bool]] = []
    for term in orderby.split(","):
        parts = term.strip().split(" ")
        if not parts[0] or parts[0] not in fields or len(parts) > 2 or parts[-1] not in (parts[0], "asc", "desc"):
            raise QueryError(f"Неправильный формат $orderby: «{term.strip()}»")
        keys.append((parts[0], len(parts) == 2 and parts[1] == "desc"))
    ordered = list(rows)
    for name, descending in reversed(keys):
        ordered.sort(key=lambda row: (row[name] is not None, row[name]), reverse=descending)
    return ordered


def select(rows: list[Row], selection: str, fields: Container[str]) -> list[Row]:
    names = [name.strip() for name in selection.split(",")]
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise QueryError(f"Неправильный формат $select: поле «{unknown[0]}» не найдено")
    return [{name: row[name] for name in names} for row in rows]


# --- $filter

_TOKEN = re.compile(
    r"""\s+
    | (?P<open>\() | (?P<close>\))
    | guid'(?P<guid>[0-9a-fA-F-]{36})'
    | datetime'(?P<datetime>[0-9T:.\-]+)'
    | '(?P<string>(?:[^']|'')*)'
    | (?P<number>-?\d+(?:\.\d+)?)[mMdDfF]?(?![\w])
    | (?P<word>[^\W\d]\w*)
    """,
    re.VERBOSE,
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_CONSTANTS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    position: int


def compile_filter(text: str, fields: Container[str]) -> Predicate:
    """A row predicate for `$filter`; QueryError for anything 1C would reject."""
    parser = _Parser(_tokens(text), fields, text)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise parser.error(parser.peek())
    return lambda row: predicate(row) is True


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise QueryError(
                f"Неправильный формат $filter: недопустимый символ «{text[position]}» в позиции {position + 1}"
            )
        kind = match.lastgroup
        if kind is not None:
            tokens.append(_Token(kind, _literal(kind, match.group(kind)), position))
        position = match.end()
    return tokens


def _literal(kind: str, text: str) -> Any:
    if kind == "guid":
        return text.lower()
    if kind == "datetime":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"Неправильный формат $filter: неверная дата «{text}»") from None
    if kind == "string":
        return text.replace("''", "'")
    if kind == "number":
        return float(text)
    return text


class _Parser:
    """Recursive descent: or → and → not → comparison → primary. Values are closures over a row."""

    def __init__(self, tokens: list[_Token], fields: Container[str], text: str) -> None:
        self.tokens, self.fields, self.text = tokens, fields, text
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError("Неправильный формат $filter: неожиданный конец выражения")
        self.index += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "word" and token.value in words:
            self.index += 1
            return str(token.value)
        return None

    def error(self, token: _Token | None) -> QueryError:
        where = f"в позиции {token.position + 1}" if token else "в конце"
        return QueryError(f"Неправильный формат $filter: ошибка разбора {where}: «{self.text}»")

    def expression(self) -> Callable[[Row], Any]:
        left = self.conjunction()
        while self.keyword("or"):
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Callable[[Row], Any]:
        left = self.negation()
        while self.keyword("and"):
            right = self.negation()
            left = _both(left, right)
        return left

    def negation(self) -> Callable[[Row], Any]:
        if self.keyword("not"):
            inner = self.negation()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self) -> Callable[[Row], Any]:
        left = self.primary()
        operator = self.keyword(*_COMPARISONS)
        if operator is None:
            return left
        right = self.primary()
        return _compare(_COMPARISONS[operator], operator, left, right)

    def primary(self) -> Callable[[Row], Any]:
        token = self.take()
        if token.kind == "open":
            inner = self.expression()
            if self.take().kind != "close":
                raise self.error(token)
            return inner
        if token.kind == "word":
            if token.value in _CONSTANTS:
                constant = _CONSTANTS[token.value]
                return lambda row: constant
            if token.value not in self.fields:
                raise QueryError(f"Неправильный формат $filter: поле «{token.value}» не найдено")
            name = token.value
            return lambda row: row[name]
        if token.kind in ("guid", "datetime", "string", "number"):
            value = token.value
            return lambda row: value
        raise self.error(token)


def _either(left: Callable[[Row], Any], right: Callable[[Row], Any]) -> Callable[[Row], Any]:
    return lambda row: left(row) is True or right(row) is True


def _both(left: Callable[[Row], Any], right: Callable[[Row], Any]) -> Callable[[Row], Any]:
    return lambda row: left(row) is True and right(row) is True


def _compare(
    test: Callable[[Any, Any], bool], operator: str, left: Callable[[Row], Any], right: Callable[[Row], Any]
) -> Callable[[Row], Any]:
    def evaluate(row: Row) -> bool:
        a, b = left(row), right(row)
        if a is None or b is None:
            both_null = a is None and b is None
            return both_null if operator == "eq" else (not both_null if operator == "ne" else False)
        if _kind(a) != _kind(b):
            raise QueryError(f"Несовместимые типы в выражении $filter: {a!r} {operator} {b!r}")
        if isinstance(a, str):
            a, b = a.lower(), b.lower()  # GUIDs in any case; 1C's string comparison is case-insensitive
        return test(a, b)

    return evaluate


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    return "string"
