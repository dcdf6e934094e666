"""Settings read from the environment (`ONEC_*`), validated once, with secrets that cannot leak by printing.

Why a module of its own: the CLI, the Dagster resources and the tests all need the same reading of the same
variables, and a bad value must become one clear sentence, not a traceback three layers down.

Every `ONEC_*` variable is declared here once, on the field that holds it (`variable(...)`: name, kind, default,
one-line meaning; the kind says whether it is a secret). Reading (`Settings.from_env`), the Dagster resources'
configuration (`Settings.variables`) and the README's table (`markdown_table`) all walk these declarations; no
other module reads `ONEC_*` from the environment (tests/core/test_config.py greps for it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from onec.errors import UsageError
from onec.redact import redact_url
from onec.rules import DEFAULT_RULES, RulesError, ValidationRules
from onec.schema import DEFAULT_TIMEZONE

T = TypeVar("T")


class _Dataclass(Protocol):
    """A dataclass (instance or class): what `dataclasses.fields` accepts."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]


D = TypeVar("D", bound=_Dataclass)


class ConfigError(UsageError, ValueError):
    """A configuration value is missing or wrong; the message is meant for the person who set it."""


class AuthMethod(StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    API_KEY = "api_key"
    MTLS = "mtls"


class Secret:
    """A string that never shows itself in repr/str, logs, exceptions or Dagster metadata."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SourceKind(StrEnum):
    """Which door into 1C a run uses (contract §1.2 JSON pages, §1.4 CSV export, §1.5 UDE XML export, §2 OData)."""

    JSON = "json"
    CSV = "csv"
    XML = "xml"
    ODATA = "odata"


@dataclass(frozen=True)
class Kind(Generic[T]):
    """How one variable's text becomes a value (`parse` raises ValueError with the reason) and back (`show`)."""

    describe: str
    """What a value looks like, for the README's table."""
    parse: Callable[[str], T]
    show: Callable[[T], str] = str
    strip: bool = True
    """Surrounding blanks are a copy-paste accident, except in a user name or a secret."""
    secret: bool = False
    """Never echoed in messages; kept out of a Dagster resource's stored configuration (an `EnvVar` there)."""


@dataclass(frozen=True)
class Variable:
    """One `ONEC_*` variable: all the code, the Dagster resources and the README know of it."""

    name: str
    kind: Kind[Any]
    meaning: str

    @property
    def secret(self) -> bool:
        return self.kind.secret

    def read(self, text: str) -> object:
        """The value of `text`; a bad one is a ConfigError naming the variable, in one line."""
        try:
            return self.kind.parse(text)
        except ValueError as exc:
            shown = "'***'" if self.secret else repr(text)
            raise ConfigError(f"{self.name}={shown} {exc}") from None


_VARIABLE = "onec_variable"
_GROUP = "onec_group"
_DERIVED = "onec_derived"


def variable(name: str, kind: Kind[T], default: T, meaning: str) -> T:
    """A settings field read from the environment variable `name` (the declaration: see the module docstring)."""
    declared: T = field(default=default, metadata={_VARIABLE: Variable(name, kind, meaning)})
    return declared


def derived(default: T) -> T:
    """A settings field no variable sets: code derives it (a base's id comes from `ONEC_BASES_FILE`)."""
    held: T = field(default=default, metadata={_DERIVED: True})
    return held


def group(cls: type[D]) -> D:
    """A settings field holding a group of variables (a sub-settings dataclass whose fields are `variable`s)."""
    held: D = field(default_factory=cls, metadata={_GROUP: cls})
    return held


def _choice(enum: type[StrEnum]) -> Kind[Any]:
    def parse(text: str) -> StrEnum:
        try:
            return enum(text.lower())
        except ValueError:
            raise ValueError(f"is not one of: {', '.join(member.value for member in enum)}") from None

    return Kind(" \\| ".join(f"`{member.value}`" for member in enum), parse, lambda value: value.value)


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"is not {what}") from None


def _positive(text: str) -> float:
    value = _number(text, "a number")
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _whole(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("is not a whole number ≥ 1")
    return int(text)


def _minutes(text: str) -> timedelta:
    minutes = _number(text, "a number of minutes")
    if minutes < 0:
        raise ValueError("must not be negative")
    return timedelta(minutes=minutes)


def _seconds(text: str) -> float:
    seconds = _number(text, "a number of seconds")
    if seconds < 0:
        raise ValueError("must be ≥ 0")
    return seconds


def _share(text: str) -> float:
    value = _positive(text)
    if value > 1:
        raise ValueError("is a share of a partition: more than 0, at most 1")
    return value


def _switch(text: str) -> bool:
    """1/true/yes/on or 0/false/no/off."""
    value = text.lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError("is not a switch: use 1 or 0")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"is not a date YYYY-MM-DD ({exc})") from None


def _timezone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a known IANA time zone (e.g. Europe/Moscow)") from None
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError("is not a whole number ≥ 0")
    return int(text)


def _shown_number(value: float) -> str:
    """The shortest text that reads back to `value` exactly (`20` rather than `20.0` for a whole one)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _shown_minutes(value: timedelta) -> str:
    return _shown_number(value.total_seconds() / 60)


TEXT: Kind[str] = Kind("text", str, strip=False)
OPTIONAL_TEXT: Kind[str | None] = Kind("text", lambda text: text, lambda value: value or "")
URL: Kind[str | None] = Kind("`http(s)://…` URL", lambda text: text, lambda value: value or "")
"""Checked in `Settings.check`, whose message redacts the credentials a URL may carry."""
SECRET: Kind[Secret] = Kind("text", Secret, lambda value: value.reveal(), strip=False, secret=True)
PATH: Kind[Path | None] = Kind("file path", Path, lambda value: "" if value is None else str(value))
DIRECTORY: Kind[Path] = Kind("directory", Path, str)
POSITIVE: Kind[float] = Kind("number > 0", _positive, _shown_number)
WHOLE: Kind[int] = Kind("whole number ≥ 1", _whole)
COUNT: Kind[int] = Kind("whole number ≥ 0", _count)
SHARE: Kind[float] = Kind("share in (0, 1]", _share, _shown_number)
SWITCH: Kind[bool] = Kind("`1` \\| `0`", _switch, lambda value: "1" if value else "0")
MINUTES: Kind[timedelta] = Kind("minutes ≥ 0", _minutes, _shown_minutes)
SECONDS: Kind[float] = Kind("seconds ≥ 0", _seconds, _shown_number)
DATE: Kind[date] = Kind("date `YYYY-MM-DD`", _date, date.isoformat)
TIMEZONE: Kind[str] = Kind("IANA zone", _timezone)


DEFAULT_BASE = "main"
"""The id of the one base configured by `ONEC_BASE_URL` & co when there is no `ONEC_BASES_FILE`."""
BASE_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A base id: it becomes a lake folder (`base=<id>`), a Dagster partition key and part of an environment variable's
name (`ONEC_BASE_<ID>_PASSWORD`), so lower-case letters, digits and `_`, starting with a letter."""
BASES_DIR = "bases"
"""Under the data directory, the folder of each base but `main` (`base_directory`)."""
SHARED_DIR = "shared"
"""Under the data directory, the warehouse of every base together, built from the Delta lake when several bases are
configured (`onec.lake_load`): no base lands into it, so its tables can carry the `base` column."""


def base_directory(data_dir: Path, base_id: str) -> Path:
    """The folder of base `base_id`'s own files under the data directory: its DuckDB file, lock and staging, its
    inboxes (`inbox/import/`, `inbox/exchange/`) and its webhook queue. `main` keeps them directly in the data
    directory, where the single-base layout always had them (existing folders do not move); another base has
    `bases/<id>/`. The one place that says so: the warehouse, the inbox sensors and the webhook receiver all ask it."""
    return data_dir if base_id == DEFAULT_BASE else data_dir / BASES_DIR / base_id


ODATA_MODELS = Path(__file__).resolve().parent / "odata_models"
"""The OData model files shipped for common configurations (`ut11.toml`, `bp30.toml`)."""


def odata_model_path(text: str) -> Path | None:
    """ONEC_ODATA_MODEL: a model file, or the bare name of a shipped one (`ut11` → `odata_models/ut11.toml`)."""
    path = Path(text) if text else None
    if path is None or path.suffix or path.exists() or len(path.parts) > 1:
        return path
    shipped = ODATA_MODELS / f"{path.name}.toml"
    return shipped if shipped.is_file() else path


ODATA_MODEL: Kind[Path | None] = Kind(
    "file path or `ut11` / `bp30`", odata_model_path, lambda value: "" if value is None else str(value)
)


@dataclass(frozen=True)
class ScheduleSettings:
    """The daily partitions and the nightly run over them (pipelines/jobs.py, pipelines/schedules.py)."""

    partitions_start: date = variable(
        "ONEC_PARTITIONS_START", DATE, date(2025, 1, 1), "first daily partition; `sync --full` reaches back to it"
    )
    nightly_lookback_days: int = variable(
        "ONEC_NIGHTLY_LOOKBACK_DAYS", WHOLE, 3, "days of documents the nightly run re-extracts, up to yesterday"
    )


@dataclass(frozen=True)
class IncrementalSettings:
    """Incremental runs (onec/incremental.py)."""

    overlap: timedelta = variable(
        "ONEC_INCREMENTAL_OVERLAP_MINUTES",
        MINUTES,
        timedelta(minutes=10),
        "how far before its cursor an incremental run re-reads",
    )
    clock_tolerance: timedelta = variable(
        "ONEC_CLOCK_TOLERANCE_MINUTES",
        MINUTES,
        timedelta(minutes=5),
        "how far 1C's stamps may run ahead of its `Date` header, and its clock from ours, before a run warns",
    )


@dataclass(frozen=True)
class SandboxSize:
    """The embedded sandbox's generated data (onec/connect.py): for demos and benchmarks."""

    documents: int = variable("ONEC_SANDBOX_DOCUMENTS", WHOLE, 1500, "documents the embedded sandbox generates")
    seed: int = variable("ONEC_SANDBOX_SEED", COUNT, 42, "seed of the embedded sandbox's data")


@dataclass(frozen=True)
class RecordLimits:
    """The largest CSV field and record (in bytes of the file) that load; bigger ones are rejected rows.

    Why: Polars holds a chunk many times over while it splits it, so one 300 MB field cost 6.7 GB. No 1C value
    comes near a megabyte (a name, a comment); a record of a few is already a file that went wrong.
    """

    field_bytes: int = variable(
        "ONEC_CSV_MAX_FIELD_BYTES", WHOLE, 1024 * 1024, "largest CSV field (bytes) that loads; bigger: a rejected row"
    )
    record_bytes: int = variable(
        "ONEC_CSV_MAX_RECORD_BYTES",
        WHOLE,
        4 * 1024 * 1024,
        "largest CSV record (bytes) that loads; read past without holding it, the rows after it load",
    )


@dataclass(frozen=True)
class CommerceMLOptions:
    """How CommerceML packages land and wait (onec/sources/commerceml_package.py)."""

    price_type: str | None = variable(
        "ONEC_CML_PRICE_TYPE",
        OPTIONAL_TEXT,
        None,
        "price type landed, by name or Ид; unset: «Розничная» if declared, else the first declared",
    )
    wait_s: float = variable(
        "ONEC_CML_WAIT_SECONDS", SECONDS, 900.0, "how long the inbox waits for a package's missing parts"
    )


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook receiver and `webhooks register` (onec/webhooks/)."""

    secret: Secret = variable("ONEC_WEBHOOK_SECRET", SECRET, Secret(""), "the secret 1C signs webhooks with")
    max_body_bytes: int = variable("ONEC_WEBHOOK_MAX_BYTES", WHOLE, 64 * 1024, "largest delivery body (bytes)")
    max_age_s: int = variable("ONEC_WEBHOOK_MAX_AGE_S", WHOLE, 3600, "oldest `occurred_at` accepted (seconds)")
    rate_per_s: int = variable("ONEC_WEBHOOK_RATE", WHOLE, 50, "deliveries per second accepted")


class LakeFormat(StrEnum):
    """How the lake is stored: the Parquet layout (one machine, no service) or Delta tables (several writers)."""

    PARQUET = "parquet"
    DELTA = "delta"


def _lake_uri(text: str) -> str:
    """A local directory or `s3://bucket[/prefix]` (the stores this project tests the Delta lake on)."""
    if "://" in text and not text.startswith("s3://"):
        raise ValueError("is neither a local directory nor an s3://bucket/prefix URI")
    if text.startswith("s3://") and not text.removeprefix("s3://").strip("/"):
        raise ValueError("names no bucket (s3://bucket/prefix)")
    return text


LAKE_URI: Kind[str | None] = Kind("directory or `s3://bucket/prefix`", _lake_uri, lambda value: value or "")


@dataclass(frozen=True)
class LakeSettings:
    """Where and how the lake is written (onec/delta_lake.py; docs/warehouse.md, "The Delta lake")."""

    format: LakeFormat = variable(
        "ONEC_LAKE_FORMAT",
        _choice(LakeFormat),
        LakeFormat.PARQUET,
        "`delta`: Delta tables several workers may write at once; `parquet`: the one-machine Parquet layout",
    )
    uri: str | None = variable("ONEC_LAKE_URI", LAKE_URI, None, "the Delta lake's root; unset: `<ONEC_DATA_DIR>/delta`")
    s3_endpoint: str | None = variable(
        "ONEC_LAKE_S3_ENDPOINT", URL, None, "S3-compatible endpoint (`http(s)://host:port`); unset: AWS"
    )
    s3_region: str | None = variable("ONEC_LAKE_S3_REGION", OPTIONAL_TEXT, None, "S3 region (e.g. `us-east-1`)")
    s3_access_key_id: Secret = variable(
        "ONEC_LAKE_S3_ACCESS_KEY_ID", SECRET, Secret(""), "S3 access key id; unset: the AWS_* chain of delta-rs"
    )
    s3_secret_access_key: Secret = variable(
        "ONEC_LAKE_S3_SECRET_ACCESS_KEY", SECRET, Secret(""), "S3 secret access key"
    )
    vacuum_retention_hours: int = variable(
        "ONEC_LAKE_VACUUM_RETENTION_HOURS",
        COUNT,
        168,
        "Delta: the weekly `delta_lake_vacuum` job deletes files replaced longer ago than this; keep it above the"
        " longest query or time travel an analyst runs",
    )

    def check(self) -> None:
        if self.s3_endpoint is not None and not self.s3_endpoint.startswith(("http://", "https://")):
            raise ConfigError(
                f"ONEC_LAKE_S3_ENDPOINT must start with http:// or https://, got {redact_url(self.s3_endpoint)!r}"
            )
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ConfigError(
                "ONEC_LAKE_S3_ACCESS_KEY_ID and ONEC_LAKE_S3_SECRET_ACCESS_KEY are set together or not at all"
            )


@dataclass(frozen=True)
class WorkerSettings:
    """Where a run's steps execute (pipelines/executors.py, deploy/README.md).

    Unset, a run executes in its own process (no service needed). Set, every step is a Celery task on whichever
    worker takes it; the URL serves as Celery's broker and result backend, and the workers must be started with
    the same one (deploy/celery.yaml). A secret: a Redis URL carries its password."""

    celery_broker: Secret = variable(
        "ONEC_CELERY_BROKER",
        SECRET,
        Secret(""),
        "Redis URL (`redis://host:6379/0`) of the Celery broker and result backend: steps run on Celery workers; "
        "unset: in the run's own process",
    )


@dataclass(frozen=True)
class Settings:
    """Everything needed to talk to one 1C base and land its data. `base_url=None` means the embedded sandbox."""

    base_url: str | None = variable(
        "ONEC_BASE_URL", URL, None, "the exchange HTTP service (`…/trade/hs/exchange`); unset: the embedded sandbox"
    )
    auth: AuthMethod = variable("ONEC_AUTH", _choice(AuthMethod), AuthMethod.NONE, "how the client authenticates")
    username: str = variable("ONEC_USERNAME", TEXT, "", "user for `basic` and `bearer` (UTF-8, Cyrillic is fine)")
    password: Secret = variable("ONEC_PASSWORD", SECRET, Secret(""), "password for `basic` and `bearer`")
    api_key: Secret = variable("ONEC_API_KEY", SECRET, Secret(""), "sent as `X-API-Key` for `api_key`")
    client_cert: Path | None = variable(
        "ONEC_CLIENT_CERT", PATH, None, "mTLS client certificate (may be combined with any auth)"
    )
    client_key: Path | None = variable("ONEC_CLIENT_KEY", PATH, None, "mTLS client key")
    ca_bundle: Path | None = variable("ONEC_CA_BUNDLE", PATH, None, "CA bundle 1C's certificate is verified against")
    rate_limit: float = variable(
        "ONEC_RATE_LIMIT", POSITIVE, 20.0, "requests/s the client paces itself to; set it to 1C's limit"
    )
    max_connections: int = variable("ONEC_MAX_CONNECTIONS", WHOLE, 8, "concurrent requests")
    timezone: str = variable("ONEC_TIMEZONE", TIMEZONE, DEFAULT_TIMEZONE, "the 1C server's zone")
    data_dir: Path = variable("ONEC_DATA_DIR", DIRECTORY, Path("data"), "output root: warehouse, lake, inboxes")
    page_size: int = variable("ONEC_PAGE_SIZE", WHOLE, 500, "page size asked of 1C")
    timeout_s: float = variable("ONEC_TIMEOUT", POSITIVE, 30.0, "request timeout (seconds)")
    max_retries: int = variable("ONEC_MAX_RETRIES", WHOLE, 6, "retries of a failed request before the run fails")
    source: SourceKind = variable(
        "ONEC_SOURCE", _choice(SourceKind), SourceKind.JSON, "the way into 1C (see below the table)"
    )
    odata_url: str | None = variable(
        "ONEC_ODATA_URL", URL, None, "the standard OData root; unset: derived from `ONEC_BASE_URL` (see below)"
    )
    """The standard OData root (`…/odata/standard.odata/`); None: derived from `base_url` (see `odata_root`)."""
    odata_model: Path | None = variable(
        "ONEC_ODATA_MODEL", ODATA_MODEL, None, "the 1C objects the `odata` source reads (see below the table)"
    )
    """A JSON or TOML file overriding the 1C metadata names the OData source reads (`OdataModel`), or the name
    of a shipped one (`ut11`, `bp30`)."""
    rules_file: Path | None = variable(
        "ONEC_VALIDATION_RULES", PATH, None, "TOML file of validation severities and thresholds (docs/validation.md)"
    )
    shrink_guard_share: float = variable(
        "ONEC_SHRINK_GUARD_SHARE",
        SHARE,
        0.5,
        "a replace removing more than this share of a partition or snapshot is refused, nothing changed",
    )
    shrink_guard_min_rows: int = variable(
        "ONEC_SHRINK_GUARD_MIN_ROWS", WHOLE, 20, "…of one that held at least this many rows"
    )
    force_replace: bool = variable(
        "ONEC_FORCE_REPLACE",
        SWITCH,
        False,
        "`1`: apply such replaces anyway (as `--force-replace`), for a 1C that really holds less",
    )
    bases_file: Path | None = variable(
        "ONEC_BASES_FILE",
        PATH,
        None,
        "TOML file naming several 1C bases (README, «Several 1C bases»); unset: one base, `main`, set by the above",
    )
    max_concurrent_runs: int = variable(
        "ONEC_MAX_CONCURRENT_RUNS",
        WHOLE,
        4,
        "runs in progress at once over all bases, and steps talking to 1C: the licence budget (pipelines/instance.py)",
    )
    base_id: str = derived(DEFAULT_BASE)
    """The base these settings talk to: `main` unless they come from `ONEC_BASES_FILE` (`load_bases`)."""
    schedule: ScheduleSettings = group(ScheduleSettings)
    incremental: IncrementalSettings = group(IncrementalSettings)
    sandbox: SandboxSize = group(SandboxSize)
    csv_limits: RecordLimits = group(RecordLimits)
    commerceml: CommerceMLOptions = group(CommerceMLOptions)
    webhooks: WebhookSettings = group(WebhookSettings)
    lake: LakeSettings = group(LakeSettings)
    workers: WorkerSettings = group(WorkerSettings)

    @property
    def rules(self) -> ValidationRules:
        """The validation rules: the defaults (following 1C), overridden by `rules_file` when one is set."""
        return _rules(self.rules_file)

    def __repr__(self) -> str:
        """The fields with the URLs redacted: a repr ends up in logs, tracebacks and Dagster's run records."""
        shown = {item.name: getattr(self, item.name) for item in fields(self)}
        for name in ("base_url", "odata_url"):
            if shown[name] is not None:
                shown[name] = redact_url(shown[name])
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `ONEC_*`; raise ConfigError naming the variable when a value is unusable."""
        settings = _read(cls, os.environ if env is None else env)
        settings.check()
        return settings

    def variables(self) -> dict[str, str]:
        """The non-secret variables that differ from their defaults, as text `from_env` reads back to these
        settings: what a Dagster resource carries (secrets stay `EnvVar`s there, see `secrets_set`)."""
        return {
            declared.name: declared.kind.show(value)
            for declared, value, default in _walk(self)
            if not declared.secret and value != default
        }

    def secrets_set(self) -> list[str]:
        """The names of the secret variables that hold a value."""
        return [declared.name for declared, value, _ in _walk(self) if declared.secret and value]

    def check(self) -> None:
        """Cross-field rules: the credentials an auth method needs, files that must exist, a URL that parses."""
        self._check(lambda attribute: variable_name(Settings, attribute))
        broker = self.workers.celery_broker.reveal()
        if broker and "://" not in broker:
            raise ConfigError("ONEC_CELERY_BROKER must be a URL such as redis://host:6379/0 (not shown: a secret)")
        if self.bases_file is not None and not self.bases_file.is_file():
            raise ConfigError(f"ONEC_BASES_FILE points to {str(self.bases_file)!r}, which is not a readable file")

    def _check(self, named: Callable[[str], str]) -> None:
        """`check`'s rules; `named(field)` is how a message names what to set (a variable, or a base's key)."""
        for attribute in ("base_url", "odata_url"):
            url = getattr(self, attribute)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{named(attribute)} must start with http:// or https://, got {redact_url(url)!r}")
        needs = {
            AuthMethod.BASIC: ("username", "password"),
            AuthMethod.BEARER: ("username", "password"),
            AuthMethod.API_KEY: ("api_key",),
            AuthMethod.MTLS: ("client_cert", "client_key"),
        }.get(self.auth, ())
        missing = [named(attribute) for attribute in needs if not getattr(self, attribute)]
        if missing:
            raise ConfigError(f"{named('auth')}={self.auth.value} needs {', '.join(missing)} to be set")
        for attribute in ("client_cert", "client_key", "ca_bundle", "odata_model", "rules_file"):
            path = getattr(self, attribute)
            if path is not None and not path.is_file():
                raise ConfigError(f"{named(attribute)} points to {str(path)!r}, which is not a readable file")
        _rules(self.rules_file)
        self.lake.check()


def _declaration(item: Field[Any]) -> Variable:
    """The variable a settings field is read from; a field declared without one is a mistake in this module."""
    if _VARIABLE not in item.metadata:
        raise TypeError(f"settings field {item.name!r} is neither a variable(...), a group(...) nor derived(...)")
    declared: Variable = item.metadata[_VARIABLE]
    return declared


def _read(cls: type[D], env: Mapping[str, str]) -> D:
    """An instance of the settings class `cls` from `env`: each declared variable that is set, else its default."""
    values: dict[str, Any] = {}
    for item in fields(cls):
        if _GROUP in item.metadata:
            values[item.name] = _read(item.metadata[_GROUP], env)
            continue
        if _DERIVED in item.metadata:
            continue
        declared = _declaration(item)
        text = env.get(declared.name, "")
        text = text.strip() if declared.kind.strip else text
        if text:
            values[item.name] = declared.read(text)
    return cls(**values)


def _walk(settings: _Dataclass) -> Iterator[tuple[Variable, object, object]]:
    """(declaration, value, default) of every variable of `settings`, groups included, in declaration order."""
    for item in fields(settings):
        value = getattr(settings, item.name)
        if _GROUP in item.metadata:
            yield from _walk(value)
        elif _DERIVED not in item.metadata:
            yield _declaration(item), value, item.default


def variable_name(cls: type, attribute: str) -> str:
    """The environment variable a settings field is read from, for messages that tell the user what to set."""
    return _declaration(next(item for item in fields(cls) if item.name == attribute)).name


def declared_variables() -> Iterator[tuple[Variable, object]]:
    """Every declared variable with its default, in declaration order."""
    for declared, _, default in _walk(Settings()):
        yield declared, default


def markdown_table() -> str:
    """The README's configuration table, written from the declarations (tests/core/test_config.py checks it)."""
    rows = ["| variable | value | default | meaning |", "|---|---|---|---|"]
    for declared, default in declared_variables():
        shown = declared.kind.show(default) if default is not None else ""
        secret = "; **secret**: never logged, a Dagster `EnvVar`" if declared.secret else ""
        rows.append(
            f"| `{declared.name}` | {declared.kind.describe} | {f'`{shown}`' if shown else '—'} "
            f"| {declared.meaning}{secret} |"
        )
    return "\n".join(rows)


def _rules(path: Path | None) -> ValidationRules:
    """The rules of `path` (defaults without one); a bad file is a configuration error, found when settings are
    checked rather than at the first page."""
    if path is None:
        return DEFAULT_RULES
    try:
        return ValidationRules.from_file(path)
    except RulesError as exc:
        raise ConfigError(f"ONEC_VALIDATION_RULES: {exc}") from None


BASE_KEYS: dict[str, str] = {
    "url": "base_url",
    "odata_url": "odata_url",
    "auth": "auth",
    "username": "username",
    "client_cert": "client_cert",
    "client_key": "client_key",
    "ca_bundle": "ca_bundle",
    "rate_limit": "rate_limit",
    "max_connections": "max_connections",
    "timezone": "timezone",
    "page_size": "page_size",
    "timeout": "timeout_s",
    "max_retries": "max_retries",
    "source": "source",
    "odata_model": "odata_model",
}
"""Key of a `[[base]]` table in `ONEC_BASES_FILE` → the settings field it sets, read by that field's variable's kind
(so `rate_limit = "fast"` fails as `ONEC_RATE_LIMIT=fast` would)."""
BASE_WEBHOOK_SIGNING = "webhook_secret"
OWN_KEYS = frozenset({"url", "odata_url", "auth", "username", "client_cert", "client_key"})
"""Keys a base never takes from the `ONEC_*` variables: which 1C it is and who it logs in as (two bases must not reach
one 1C, or log in as one user, by omission). The other keys default to their variable's value (`ONEC_RATE_LIMIT`…)."""
BASE_SECRETS = {"password": "PASSWORD", "api_key": "API_KEY", BASE_WEBHOOK_SIGNING: "WEBHOOK_SECRET"}
"""A base's secrets: never in the file, always from `ONEC_BASE_<ID>_<NAME>` (`base_secret_variable`). The password
and API key are the base's own (unset: none, never another base's); the webhook secret, what the base's 1C signs its
webhooks with, falls back to ONEC_WEBHOOK_SECRET, so that one secret for every base keeps working; with its own, a
base's receiver refuses what another base's 1C signs."""
SANDBOX_SEED_KEY = "sandbox_seed"
"""A base without `url` is an embedded sandbox; this key gives it data of its own (the demo's several bases)."""


def base_secret_variable(base_id: str, secret: str) -> str:
    """The environment variable holding a base's `password` or `api_key` (`ONEC_BASE_MSK_PASSWORD` for `msk`)."""
    return f"ONEC_BASE_{base_id.upper()}_{BASE_SECRETS[secret]}"


@dataclass(frozen=True)
class Bases:
    """The configured 1C bases: each one's complete `Settings` (its `base_id` set), in configuration order."""

    settings: Settings
    """The `ONEC_*` variables themselves (the data dir, schedule, run queue… shared by every base)."""
    by_id: Mapping[str, Settings]
    secret_variables: tuple[str, ...] = ()
    """The per-base secret variables that are set: what a Dagster resource carries as `EnvVar`s."""

    @classmethod
    def single(cls, settings: Settings) -> Bases:
        """The one base `settings` describe (`main` unless they come from a bases file)."""
        return cls(settings, {settings.base_id: settings})

    @property
    def ids(self) -> list[str]:
        return list(self.by_id)

    def chosen(self, base_id: str | None) -> Settings:
        """The settings of the base a command names (`--base`); without one, of the only base configured (`main`
        without a file). Several bases and none named is a UsageError: guessing would talk to the wrong 1C."""
        if base_id is not None:
            return self.base(base_id)
        if len(self.ids) > 1:
            raise UsageError(
                f"ONEC_BASES_FILE lists {len(self.ids)} bases ({', '.join(self.ids)}): choose one with --base"
            )
        return self.base(self.ids[0])

    def inboxes(self, inbox: Path) -> dict[str, Path]:
        """Each configured base's inbox folder by base id: `inbox` (`onec.push.inbox.IMPORT_INBOX`,
        `onec.exchange_files.INBOX_DIR`) inside the base's folder (`base_directory`), so `main` keeps
        `data/inbox/…` and base `msk` has `data/bases/msk/inbox/…`."""
        return {base_id: base_directory(self.settings.data_dir, base_id) / inbox for base_id in self.ids}

    def base(self, base_id: str) -> Settings:
        """One base's settings; an id nobody configured is a ConfigError naming those that are."""
        try:
            return self.by_id[base_id]
        except KeyError:
            where = f"ONEC_BASES_FILE {self.settings.bases_file}" if self.settings.bases_file else "no ONEC_BASES_FILE"
            raise ConfigError(
                f"base {base_id!r} is not configured ({where}); configured: {', '.join(self.ids)}"
            ) from None


def load_bases(env: Mapping[str, str] | None = None) -> Bases:
    """The bases `ONEC_BASES_FILE` lists, secrets from `ONEC_BASE_<ID>_*`; without the file, the one base `main` the
    `ONEC_*` variables describe (the zero-configuration default: the embedded sandbox). A mistake is one ConfigError
    naming the file, the base and the key or variable to fix."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    if settings.bases_file is None:
        return Bases.single(settings)
    return _bases_from_file(settings, settings.bases_file, env)


def _bases_from_file(settings: Settings, path: Path, env: Mapping[str, str]) -> Bases:
    where = f"ONEC_BASES_FILE {path}"
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    entries = document.get("base")
    if set(document) - {"base"} or not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: expected one or more [[base]] tables and nothing else")
    by_id: dict[str, Settings] = {}
    for number, entry in enumerate(entries, 1):
        base = _file_base(settings, entry, path, env, f"{where}: base #{number}")
        if base.base_id in by_id:
            raise ConfigError(f"{where}: base id {base.base_id!r} is listed twice")
        by_id[base.base_id] = base
    secrets = tuple(
        name for base_id in by_id for name in (base_secret_variable(base_id, s) for s in BASE_SECRETS) if env.get(name)
    )
    return Bases(settings, by_id, secrets)


def _file_base(settings: Settings, entry: object, path: Path, env: Mapping[str, str], where: str) -> Settings:
    """One `[[base]]` table as complete settings: its own keys, the `ONEC_*` variables for the others it omits."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a [[base]] table")
    base_id = entry.get("id")
    if not isinstance(base_id, str) or not BASE_ID.fullmatch(base_id):
        raise ConfigError(
            f"{where}: id = {base_id!r} is not a base id: 1 to 32 of a-z, 0-9 and _, starting with a letter"
        )
    where = f"ONEC_BASES_FILE {path}: base {base_id!r}"
    for key in entry:
        if key in BASE_SECRETS:
            raise ConfigError(f"{where}: {key} does not belong in a file; set {base_secret_variable(base_id, key)}")
    unknown = sorted(set(entry) - {"id", SANDBOX_SEED_KEY, *BASE_KEYS})
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(unknown)}; known: id, {', '.join(BASE_KEYS)}, sandbox_seed")
    defaults = Settings()
    values: dict[str, Any] = {BASE_KEYS[key]: getattr(defaults, BASE_KEYS[key]) for key in OWN_KEYS}
    for key, attribute in BASE_KEYS.items():
        if key in entry:
            values[attribute] = _file_value(entry[key], attribute, path.parent, f"{where}: {key}")
    if SANDBOX_SEED_KEY in entry:
        seed = _file_value(entry[SANDBOX_SEED_KEY], "seed", path.parent, f"{where}: {SANDBOX_SEED_KEY}", SandboxSize)
        values["sandbox"] = dataclasses.replace(settings.sandbox, seed=int(str(seed)))
    for name in BASE_SECRETS.keys() - {BASE_WEBHOOK_SIGNING}:
        values[name] = Secret(env.get(base_secret_variable(base_id, name), ""))
    webhook_secret = env.get(base_secret_variable(base_id, BASE_WEBHOOK_SIGNING))
    if webhook_secret:
        values["webhooks"] = dataclasses.replace(settings.webhooks, secret=Secret(webhook_secret))
    base = dataclasses.replace(settings, base_id=base_id, **values)
    keys = {attribute: key for key, attribute in BASE_KEYS.items()}
    try:
        base._check(lambda a: base_secret_variable(base_id, a) if a in BASE_SECRETS else keys.get(a, a))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return base


def _file_value(value: object, attribute: str, folder: Path, where: str, cls: type = Settings) -> object:
    """A value of the file read by the kind of the variable `attribute` is declared with; a relative path is
    relative to the file's folder (a bases file and its certificates travel together)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where} = {value!r} is not a string or a number")
    declared = _declaration(next(item for item in fields(cls) if item.name == attribute))
    try:
        parsed = declared.kind.parse(str(value).strip() if declared.kind.strip else str(value))
    except ValueError as exc:
        raise ConfigError(f"{where} = {value!r} {exc}") from None
    if isinstance(parsed, Path) and not parsed.is_absolute():
        return folder / parsed
    return parsed


if __name__ == "__main__":
    print(markdown_table())
