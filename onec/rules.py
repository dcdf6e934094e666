"""Which odd-but-real 1C data lands with a note and which is rejected, and the thresholds of the checks.

Why configuration: 1C itself allows a lot that looks wrong (balances below zero, lines without prices or items,
operations without a counterparty) and a base may or may not forbid each. The defaults follow what 1C allows
(contract §1.3 "What real bases hold"); a base that forbids, say, negative stock can make that rule reject.
`docs/validation.md` is the rule table: every rule, why 1C data can or cannot break it, and its severity.
A rule 1C itself cannot break (a number that is not a number, an unreadable date) is not configurable.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from onec.errors import UsageError


class Severity(StrEnum):
    """A *note* lands the row and counts it in the run's metadata; a *reject* keeps it in `rejected_rows`."""

    REJECT = "reject"
    NOTE = "note"


class Rule(StrEnum):
    """The rules whose severity is configuration: each is something 1C can hold."""

    NEGATIVE_STOCK = "negative_stock"
    """A goods row with quantity < 0: 1C allows balances below zero unless the base forbids them."""
    ITEM_WITHOUT_STOCK = "item_without_stock"
    """A goods row with no warehouse and quantity 0: an item with no balance anywhere (contract §1.3)."""
    NEGATIVE_BOOK_QUANTITY = "negative_book_quantity"
    """An inventory line whose book quantity (`КоличествоУчет`) is below zero: the balance it was counted against."""
    EMPTY_LINE = "empty_line"
    """A tabular row with no item and quantity 0: 1C keeps such rows."""
    NO_COUNTERPARTY = "no_counterparty"
    """A document of a type with a counterparty, without one (opening balances, inventory results)."""
    LINE_WITHOUT_PRICE = "line_without_price"
    """A line with neither `unit_price` nor `total` (warehouse orders carry quantities only)."""
    ZERO_PRICE = "zero_price"
    """A line with unit_price 0, or a goods row with price 0 (gifts, samples, unfilled prices)."""
    TOTAL_MISMATCH = "total_mismatch"
    """A line whose total differs from quantity × unit_price by more than the tolerance."""


DEFAULT_SEVERITIES: Mapping[Rule, Severity] = MappingProxyType(
    {
        Rule.NEGATIVE_STOCK: Severity.NOTE,
        Rule.ITEM_WITHOUT_STOCK: Severity.NOTE,
        Rule.NEGATIVE_BOOK_QUANTITY: Severity.NOTE,
        Rule.EMPTY_LINE: Severity.NOTE,
        Rule.NO_COUNTERPARTY: Severity.NOTE,
        Rule.LINE_WITHOUT_PRICE: Severity.NOTE,
        Rule.ZERO_PRICE: Severity.NOTE,
        Rule.TOTAL_MISMATCH: Severity.REJECT,
    }
)

EARLIEST_DATE = dt.date(2000, 1, 1)
"""Default start of the plausible window: no 1C 8 base holds trade documents from before it."""
YEARS_AHEAD = 1
"""Default end of the plausible window: this many years after today in the 1C zone."""
TOTAL_TOLERANCE = Decimal("0.005")
"""`total` is rounded to kopecks: a correct total is within half a kopeck of quantity × unit_price."""


class RulesError(UsageError, ValueError):
    """A validation rules file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class ValidationRules:
    """Severities of the configurable rules and the thresholds of the checks."""

    severities: Mapping[Rule, Severity] = field(default_factory=lambda: DEFAULT_SEVERITIES)
    earliest_date: dt.date = EARLIEST_DATE
    years_ahead: int = YEARS_AHEAD
    total_tolerance: Decimal = TOTAL_TOLERANCE

    def __hash__(self) -> int:
        """Rules are a key of the checks built for them (`onec.validation`); the severities are a mapping."""
        return hash((frozenset(self.severities.items()), self.earliest_date, self.years_ahead, self.total_tolerance))

    def severity(self, rule: Rule) -> Severity:
        return self.severities.get(rule, DEFAULT_SEVERITIES[rule])

    def notes(self, rule: Rule) -> bool:
        return self.severity(rule) is Severity.NOTE

    def plausible_window(self, timezone: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
        """[earliest, today + years ahead], both inclusive, today being the calendar day in the 1C zone."""
        today = today or dt.datetime.now(ZoneInfo(timezone)).date()
        year = min(today.year + self.years_ahead, dt.MAXYEAR)
        latest = today.replace(year=year, day=28) if (today.month, today.day) == (2, 29) else today.replace(year=year)
        return self.earliest_date, latest

    @classmethod
    def from_file(cls, path: Path) -> ValidationRules:
        """Read a TOML file (see `docs/validation.md`); anything it does not name keeps its default."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RulesError(f"validation rules {path}: {exc}") from None
        return cls.from_mapping(data, origin=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "validation rules") -> ValidationRules:
        unknown = set(data) - {"severity", "dates", "totals"}
        if unknown:
            raise RulesError(
                f"{origin}: unknown section(s) {', '.join(sorted(unknown))}; expected severity, dates, totals"
            )
        severities = dict(DEFAULT_SEVERITIES)
        for name, value in _section(data, "severity", origin).items():
            try:
                severities[Rule(name)] = Severity(str(value).lower())
            except ValueError:
                raise RulesError(
                    f"{origin}: severity.{name} = {value!r}; rules are {', '.join(Rule)}, severities reject or note"
                ) from None
        dates = _section(data, "dates", origin)
        totals = _section(data, "totals", origin)
        earliest = dates.get("earliest", EARLIEST_DATE)
        years_ahead = dates.get("years_ahead", YEARS_AHEAD)
        if not isinstance(earliest, dt.date) or isinstance(earliest, dt.datetime):
            raise RulesError(f"{origin}: dates.earliest must be a TOML date (2000-01-01), got {earliest!r}")
        if not isinstance(years_ahead, int) or isinstance(years_ahead, bool) or years_ahead < 0:
            raise RulesError(f"{origin}: dates.years_ahead must be a whole number ≥ 0, got {years_ahead!r}")
        return cls(
            severities=MappingProxyType(severities),
            earliest_date=earliest,
            years_ahead=years_ahead,
            total_tolerance=_tolerance(totals.get("tolerance", TOTAL_TOLERANCE), origin),
        )


DEFAULT_RULES = ValidationRules()


def _section(data: Mapping[str, Any], name: str, origin: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise RulesError(f"{origin}: [{name}] must be a table")
    return section


def _tolerance(value: Any, origin: str) -> Decimal:
    """Decimal from a TOML string or number (a float goes through its text, never its binary value)."""
    try:
        tolerance = Decimal(str(value))
    except InvalidOperation:
        tolerance = Decimal(-1)
    if not tolerance.is_finite() or tolerance < 0:
        raise RulesError(f"{origin}: totals.tolerance must be a number ≥ 0, got {value!r}")
    return tolerance
