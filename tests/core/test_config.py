"""`onec.config` is the one declaration of the `ONEC_*` variables: every reader goes through it, a bad value is one
line naming the variable, the README's table is the declaration, and what the resources carry reads back the same."""

from __future__ import annotations

import ast
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onec.cli import main
from onec.config import BASE_SECRETS, ConfigError, Settings, declared_variables, markdown_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("onec", "assets", "resources", "pipelines")
CONFIG_MODULE = ROOT / "onec" / "config.py"
README = ROOT / "README.md"
TABLE_START = "<!-- configuration table: generated from onec/config.py (python -m onec.config) -->"
TABLE_END = "<!-- end of configuration table -->"
DECLARED = [declared.name for declared, _ in declared_variables()]
PER_BASE_SECRET = re.compile(rf"ONEC_BASE_[A-Z0-9_]+_({'|'.join(BASE_SECRETS.values())})")
"""A base's secret from ONEC_BASES_FILE (`onec.config.base_secret_variable`): named by the base, not declared."""

# A value of each variable that differs from its default and is valid on its own (files exist, see the fixture).
NON_DEFAULT = {
    "ONEC_BASE_URL": "https://erp.example/trade/hs/exchange",
    "ONEC_AUTH": "basic",
    "ONEC_USERNAME": "обмен",
    "ONEC_PASSWORD": "пароль",
    "ONEC_API_KEY": "K3Y",
    "ONEC_CLIENT_CERT": "{files}/client.pem",
    "ONEC_CLIENT_KEY": "{files}/client.key",
    "ONEC_CA_BUNDLE": "{files}/ca.pem",
    "ONEC_RATE_LIMIT": "3.5",
    "ONEC_MAX_CONNECTIONS": "2",
    "ONEC_TIMEZONE": "Asia/Novosibirsk",
    "ONEC_DATA_DIR": "{files}/data",
    "ONEC_PAGE_SIZE": "50",
    "ONEC_TIMEOUT": "7",
    "ONEC_MAX_RETRIES": "2",
    "ONEC_SOURCE": "odata",
    "ONEC_ODATA_URL": "https://erp.example/trade/odata/standard.odata/",
    "ONEC_ODATA_MODEL": "ut11",
    "ONEC_VALIDATION_RULES": "{files}/rules.toml",
    "ONEC_SHRINK_GUARD_SHARE": "0.25",
    "ONEC_SHRINK_GUARD_MIN_ROWS": "100",
    "ONEC_FORCE_REPLACE": "1",
    "ONEC_PARTITIONS_START": "2024-02-29",
    "ONEC_NIGHTLY_LOOKBACK_DAYS": "5",
    "ONEC_INCREMENTAL_OVERLAP_MINUTES": "2.5",
    "ONEC_CLOCK_TOLERANCE_MINUTES": "0",
    "ONEC_SANDBOX_DOCUMENTS": "120",
    "ONEC_SANDBOX_SEED": "0",
    "ONEC_CSV_MAX_FIELD_BYTES": "10",
    "ONEC_CSV_MAX_RECORD_BYTES": "20",
    "ONEC_CML_PRICE_TYPE": "Оптовая",
    "ONEC_CML_WAIT_SECONDS": "0",
    "ONEC_WEBHOOK_SECRET": "s3cr3t",
    "ONEC_WEBHOOK_MAX_BYTES": "2048",
    "ONEC_WEBHOOK_MAX_AGE_S": "60",
    "ONEC_WEBHOOK_RATE": "5",
    "ONEC_BASES_FILE": "{files}/bases.toml",
    "ONEC_MAX_CONCURRENT_RUNS": "2",
    "ONEC_LAKE_FORMAT": "delta",
    "ONEC_LAKE_URI": "s3://lake/onec",
    "ONEC_LAKE_S3_ENDPOINT": "http://127.0.0.1:8333",
    "ONEC_LAKE_S3_REGION": "eu-central-1",
    "ONEC_LAKE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "ONEC_LAKE_S3_SECRET_ACCESS_KEY": "lake-s3cr3t",
    "ONEC_LAKE_VACUUM_RETENTION_HOURS": "336",
    "ONEC_CELERY_BROKER": "redis://:pa55@127.0.0.1:6399/0",
}


def every_variable(files: Path) -> dict[str, str]:
    """Each declared variable at a non-default value; the files the paths name are created under `files`."""
    for name in ("client.pem", "client.key", "ca.pem", "rules.toml"):
        (files / name).write_text("", "utf-8")
    (files / "bases.toml").write_text('[[base]]\nid = "shop"\n', "utf-8")
    return {name: value.format(files=files) for name, value in NON_DEFAULT.items()}


@pytest.fixture
def every_variable_set(tmp_path: Path) -> dict[str, str]:
    return every_variable(tmp_path)


def test_each_variable_is_declared_once_and_the_sample_covers_them() -> None:
    assert len(DECLARED) == len(set(DECLARED)), sorted(name for name in DECLARED if DECLARED.count(name) > 1)
    assert all(re.fullmatch("ONEC_[A-Z0-9_]+", name) for name in DECLARED)
    assert sorted(NON_DEFAULT) == sorted(DECLARED), "a new variable needs a non-default sample value here"


def test_every_variable_reads_to_a_non_default_value(every_variable_set: dict[str, str]) -> None:
    """No declared variable is silently ignored: setting it changes the settings."""
    settings = Settings.from_env(every_variable_set)
    secrets = set(settings.secrets_set())
    assert sorted(set(settings.variables()) | secrets) == sorted(DECLARED)
    assert secrets == {
        "ONEC_PASSWORD",
        "ONEC_API_KEY",
        "ONEC_WEBHOOK_SECRET",
        "ONEC_LAKE_S3_ACCESS_KEY_ID",
        "ONEC_LAKE_S3_SECRET_ACCESS_KEY",
        "ONEC_CELERY_BROKER",
    }
    assert settings.schedule.partitions_start == date(2024, 2, 29)
    assert settings.schedule.nightly_lookback_days == 5
    assert settings.incremental.overlap == timedelta(minutes=2.5)
    assert settings.incremental.clock_tolerance == timedelta(0)
    assert (settings.shrink_guard_share, settings.shrink_guard_min_rows, settings.force_replace) == (0.25, 100, True)
    assert (settings.sandbox.documents, settings.sandbox.seed) == (120, 0)
    assert (settings.csv_limits.field_bytes, settings.csv_limits.record_bytes) == (10, 20)
    assert (settings.commerceml.price_type, settings.commerceml.wait_s) == ("Оптовая", 0.0)
    assert settings.webhooks.secret.reveal() == "s3cr3t" and settings.webhooks.rate_per_s == 5
    assert "s3cr3t" not in repr(settings) and "пароль" not in repr(settings)


def test_the_variables_read_back_to_the_same_settings(every_variable_set: dict[str, str]) -> None:
    """What a Dagster resource carries (`variables()` plus the secrets) is read to exactly the CLI's settings."""
    settings = Settings.from_env(every_variable_set)
    secrets = {name: every_variable_set[name] for name in settings.secrets_set()}
    assert Settings.from_env({**settings.variables(), **secrets}) == settings
    assert Settings().variables() == {} and Settings().secrets_set() == []


@given(
    minutes=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    rate=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
    days=st.integers(min_value=1, max_value=10**4),
    start=st.dates(),
)
def test_numbers_and_dates_survive_the_round_trip(minutes: object, rate: float, days: int, start: date) -> None:
    env = {
        "ONEC_INCREMENTAL_OVERLAP_MINUTES": str(minutes),
        "ONEC_RATE_LIMIT": repr(rate),
        "ONEC_NIGHTLY_LOOKBACK_DAYS": str(days),
        "ONEC_PARTITIONS_START": start.isoformat(),
    }
    settings = Settings.from_env(env)
    assert Settings.from_env(settings.variables()) == settings


BAD_VALUES = [
    ("ONEC_NIGHTLY_LOOKBACK_DAYS", "three", "is not a whole number"),
    ("ONEC_NIGHTLY_LOOKBACK_DAYS", "0", "is not a whole number ≥ 1"),
    ("ONEC_PARTITIONS_START", "2025-13-01", "is not a date YYYY-MM-DD"),
    ("ONEC_INCREMENTAL_OVERLAP_MINUTES", "soon", "is not a number of minutes"),
    ("ONEC_INCREMENTAL_OVERLAP_MINUTES", "-1", "must not be negative"),
    ("ONEC_CLOCK_TOLERANCE_MINUTES", "5m", "is not a number of minutes"),
    ("ONEC_SANDBOX_DOCUMENTS", "many", "is not a whole number"),
    ("ONEC_SANDBOX_SEED", "-1", "is not a whole number ≥ 0"),
    ("ONEC_CSV_MAX_FIELD_BYTES", "1MB", "is not a whole number"),
    ("ONEC_CSV_MAX_RECORD_BYTES", "-1", "is not a whole number"),
    ("ONEC_CML_WAIT_SECONDS", "later", "is not a number of seconds"),
    ("ONEC_WEBHOOK_MAX_BYTES", "64k", "is not a whole number"),
    ("ONEC_WEBHOOK_MAX_AGE_S", "1h", "is not a whole number"),
    ("ONEC_WEBHOOK_RATE", "fast", "is not a whole number"),
    ("ONEC_PAGE_SIZE", "12.5", "is not a whole number"),
    ("ONEC_RATE_LIMIT", "-3", "must be greater than zero"),
    ("ONEC_SHRINK_GUARD_SHARE", "50%", "is not a number"),
    ("ONEC_SHRINK_GUARD_SHARE", "2", "is a share of a partition"),
    ("ONEC_FORCE_REPLACE", "maybe", "is not a switch"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_variable(
    name: str, value: str, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Formerly read with a bare int()/float()/fromisoformat outside onec.config (or not at all by this command):
    a traceback, or a value silently ignored."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(f"{name}={value!r} {reason}")):
        Settings.from_env()
    assert main(["query", "SELECT 1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"onec-etl: error: configuration: {name}={value!r}"), err


def test_the_date_error_says_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"month must be in 1\.\.12"):
        Settings.from_env({"ONEC_PARTITIONS_START": "2025-13-01"})


def _reads_the_environment(tree: ast.AST) -> list[int]:
    """Lines that read the process environment: `os.environ` in any form, `os.getenv`, `environ` imported."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in ("environ", "environb", "getenv")]
    return lines


def test_no_module_but_onec_config_reads_onec_variables() -> None:
    """Grep the source: outside onec/config.py, a module that touches the environment at all must not name an
    ONEC_ variable, and no module keeps an ONEC_ name as a constant of its own (the indirect way to read one)."""
    offenders = []
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        if path == CONFIG_MODULE:
            continue
        text = path.read_text("utf-8")
        tree = ast.parse(text)
        where = path.relative_to(ROOT)
        if _reads_the_environment(tree) and "ONEC_" in text:
            offenders.append(f"{where}: reads the environment and names ONEC_ variables")
        offenders += [
            f"{where}:{node.lineno}: the bare variable name {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"ONEC_[A-Z0-9_]+", node.value)
        ]
    assert offenders == []


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan above on the shapes of reads this branch removed (schedules.py, csv_export.py before)."""
    assert _reads_the_environment(ast.parse('import os\nx = int(os.environ.get("ONEC_X", 3))'))
    assert _reads_the_environment(ast.parse('from os import getenv\nx = getenv("ONEC_X")'))
    assert not _reads_the_environment(ast.parse("x = settings.schedule.nightly_lookback_days"))


def _readme_table() -> str:
    text = README.read_text("utf-8")
    assert TABLE_START in text and TABLE_END in text, "README.md lost the markers of its configuration table"
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()


def test_the_readme_documents_exactly_the_declared_variables() -> None:
    documented = re.findall(r"^\| `(ONEC_[A-Z0-9_]+)` \|", _readme_table(), flags=re.MULTILINE)
    assert sorted(set(DECLARED) - set(documented)) == [], "declared but not in the README's table"
    assert sorted(set(documented) - set(DECLARED)) == [], "in the README's table but not declared"
    assert _readme_table() == markdown_table(), "regenerate the table: .venv/bin/python -m onec.config"


def test_the_readme_names_no_undeclared_variable() -> None:
    """Prose counts too: a variable the README tells users to set must exist."""
    named = set(re.findall(r"\bONEC_[A-Z0-9_]*[A-Z0-9]\b", README.read_text("utf-8")))
    per_base = {name for name in named if PER_BASE_SECRET.fullmatch(name)}
    assert sorted(named - set(DECLARED) - per_base) == []
