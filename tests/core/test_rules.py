"""The validation rules file: severities and thresholds override the defaults, anything unusable is one clear error."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from onec.config import ConfigError, Settings
from onec.rules import DEFAULT_RULES, DEFAULT_SEVERITIES, Rule, RulesError, Severity, ValidationRules


def test_the_defaults_note_what_1c_allows_and_reject_a_total_mismatch() -> None:
    assert {rule for rule in Rule if DEFAULT_RULES.notes(rule)} == set(Rule) - {Rule.TOTAL_MISMATCH}
    assert DEFAULT_RULES.total_tolerance == Decimal("0.005")
    assert DEFAULT_RULES.earliest_date == dt.date(2000, 1, 1) and DEFAULT_RULES.years_ahead == 1


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[severity]\nnegative_stock = "REJECT"\ntotal_mismatch = "note"\n'
        "[dates]\nearliest = 2010-01-01\nyears_ahead = 0\n[totals]\ntolerance = 0.01\n",
        encoding="utf-8",
    )
    rules = ValidationRules.from_file(path)
    assert rules.severity(Rule.NEGATIVE_STOCK) is Severity.REJECT and rules.notes(Rule.TOTAL_MISMATCH)
    assert all(
        rules.severity(r) is DEFAULT_SEVERITIES[r] for r in Rule if r not in (Rule.NEGATIVE_STOCK, Rule.TOTAL_MISMATCH)
    )
    assert rules.plausible_window("Europe/Moscow", today=dt.date(2026, 12, 3)) == (
        dt.date(2010, 1, 1),
        dt.date(2026, 12, 3),
    )
    assert rules.total_tolerance == Decimal("0.01")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[severity]\nnegative_stok = "note"\n', "severity.negative_stok"),
        ('[severity]\nnegative_stock = "warn"\n', "severities reject or note"),
        ('[dates]\nearliest = "2000"\n', "dates.earliest must be a TOML date"),
        ("[dates]\nyears_ahead = -1\n", "dates.years_ahead must be a whole number ≥ 0"),
        ('[totals]\ntolerance = "abc"\n', "totals.tolerance must be a number ≥ 0"),
        ("[limits]\nx = 1\n", "unknown section(s) limits"),
        ("severity = 1\n", "[severity] must be a table"),
        ("[severity\n", "validation rules"),
    ],
)
def test_an_unusable_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as error:
        ValidationRules.from_file(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_settings_read_the_file_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[severity]\nno_counterparty = "reject"\n', encoding="utf-8")
    settings = Settings.from_env({"ONEC_VALIDATION_RULES": str(path)})
    assert settings.rules.severity(Rule.NO_COUNTERPARTY) is Severity.REJECT
    assert Settings.from_env({}).rules == DEFAULT_RULES
    with pytest.raises(ConfigError, match="ONEC_VALIDATION_RULES points to"):
        Settings.from_env({"ONEC_VALIDATION_RULES": str(tmp_path / "missing.toml")})
    path.write_text('[severity]\nno_counterparty = "maybe"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ONEC_VALIDATION_RULES: .*no_counterparty"):
        Settings.from_env({"ONEC_VALIDATION_RULES": str(path)})
