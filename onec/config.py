"""Settings read from the environment (`ONEC_*`), validated once, with secrets that cannot leak by printing.

Why a module of its own: the CLI, the Dagster resources and the tests all need the same reading of the same
variables, and a bad value must become one clear sentence, not a traceback three layers down.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from onec.errors import UsageError
from onec.redact import redact_url
from onec.rules import DEFAULT_RULES, RulesError, ValidationRules
from onec.schema import DEFAULT_TIMEZONE


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
class Settings:
    """Everything needed to talk to one 1C base and land its data. `base_url=None` means the embedded sandbox."""

    base_url: str | None = None
    auth: AuthMethod = AuthMethod.NONE
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    api_key: Secret = field(default_factory=lambda: Secret(""))
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    rate_limit: float = 20.0
    max_connections: int = 8
    timezone: str = DEFAULT_TIMEZONE
    data_dir: Path = Path("data")
    page_size: int = 500
    timeout_s: float = 30.0
    max_retries: int = 6
    source: SourceKind = SourceKind.JSON
    odata_url: str | None = None
    """The standard OData root (`…/odata/standard.odata/`); None: derived from `base_url` (see `odata_root`)."""
    odata_model: Path | None = None
    """A JSON or TOML file overriding the 1C metadata names the OData source reads (`OdataModel`), or the name
    of a shipped one (`ut11`, `bp30`)."""
    rules_file: Path | None = None
    """A TOML file of validation severities and thresholds (`ONEC_VALIDATION_RULES`, docs/validation.md)."""

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
        env = os.environ if env is None else env
        get = lambda name, default="": env.get(name, default).strip()  # noqa: E731

        auth_text = get("ONEC_AUTH", "none").lower() or "none"
        try:
            auth = AuthMethod(auth_text)
        except ValueError:
            raise ConfigError(
                f"ONEC_AUTH={auth_text!r} is not one of: {', '.join(m.value for m in AuthMethod)}"
            ) from None

        source_text = get("ONEC_SOURCE", "json").lower() or "json"
        try:
            source = SourceKind(source_text)
        except ValueError:
            raise ConfigError(
                f"ONEC_SOURCE={source_text!r} is not one of: {', '.join(k.value for k in SourceKind)}"
            ) from None

        settings = cls(
            source=source,
            base_url=get("ONEC_BASE_URL") or None,
            auth=auth,
            username=env.get("ONEC_USERNAME", ""),
            password=Secret(env.get("ONEC_PASSWORD", "")),
            api_key=Secret(env.get("ONEC_API_KEY", "")),
            client_cert=_optional_path(get("ONEC_CLIENT_CERT")),
            client_key=_optional_path(get("ONEC_CLIENT_KEY")),
            ca_bundle=_optional_path(get("ONEC_CA_BUNDLE")),
            rate_limit=_positive_float("ONEC_RATE_LIMIT", get("ONEC_RATE_LIMIT"), 20.0),
            max_connections=int(_positive_float("ONEC_MAX_CONNECTIONS", get("ONEC_MAX_CONNECTIONS"), 8)),
            timezone=_timezone(get("ONEC_TIMEZONE") or DEFAULT_TIMEZONE),
            data_dir=Path(get("ONEC_DATA_DIR") or "data"),
            page_size=int(_positive_float("ONEC_PAGE_SIZE", get("ONEC_PAGE_SIZE"), 500)),
            timeout_s=_positive_float("ONEC_TIMEOUT", get("ONEC_TIMEOUT"), 30.0),
            max_retries=int(_positive_float("ONEC_MAX_RETRIES", get("ONEC_MAX_RETRIES"), 6)),
            odata_url=get("ONEC_ODATA_URL") or None,
            odata_model=odata_model_path(get("ONEC_ODATA_MODEL")),
            rules_file=_optional_path(get("ONEC_VALIDATION_RULES")),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Cross-field rules: the credentials an auth method needs, files that must exist, a URL that parses."""
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"ONEC_BASE_URL must start with http:// or https://, got {redact_url(self.base_url)!r}")
        needs = {
            AuthMethod.BASIC: ("ONEC_USERNAME", "ONEC_PASSWORD"),
            AuthMethod.BEARER: ("ONEC_USERNAME", "ONEC_PASSWORD"),
            AuthMethod.API_KEY: ("ONEC_API_KEY",),
            AuthMethod.MTLS: ("ONEC_CLIENT_CERT", "ONEC_CLIENT_KEY"),
        }.get(self.auth, ())
        present = {
            "ONEC_USERNAME": bool(self.username),
            "ONEC_PASSWORD": bool(self.password),
            "ONEC_API_KEY": bool(self.api_key),
            "ONEC_CLIENT_CERT": self.client_cert is not None,
            "ONEC_CLIENT_KEY": self.client_key is not None,
        }
        missing = [name for name in needs if not present[name]]
        if missing:
            raise ConfigError(f"ONEC_AUTH={self.auth.value} needs {', '.join(missing)} to be set")
        if self.odata_url is not None and not self.odata_url.startswith(("http://", "https://")):
            raise ConfigError(f"ONEC_ODATA_URL must start with http:// or https://, got {redact_url(self.odata_url)!r}")
        for name, path in (
            ("ONEC_CLIENT_CERT", self.client_cert),
            ("ONEC_CLIENT_KEY", self.client_key),
            ("ONEC_CA_BUNDLE", self.ca_bundle),
            ("ONEC_ODATA_MODEL", self.odata_model),
            ("ONEC_VALIDATION_RULES", self.rules_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f"{name} points to {str(path)!r}, which is not a readable file")
        _rules(self.rules_file)


def _rules(path: Path | None) -> ValidationRules:
    """The rules of `path` (defaults without one); a bad file is a configuration error, found when settings are
    checked rather than at the first page."""
    if path is None:
        return DEFAULT_RULES
    try:
        return ValidationRules.from_file(path)
    except RulesError as exc:
        raise ConfigError(f"ONEC_VALIDATION_RULES: {exc}") from None


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


ODATA_MODELS = Path(__file__).resolve().parent / "odata_models"
"""The OData model files shipped for common configurations (`ut11.toml`, `bp30.toml`)."""


def odata_model_path(text: str) -> Path | None:
    """ONEC_ODATA_MODEL: a model file, or the bare name of a shipped one (`ut11` → `odata_models/ut11.toml`)."""
    path = _optional_path(text)
    if path is None or path.suffix or path.exists() or len(path.parts) > 1:
        return path
    shipped = ODATA_MODELS / f"{path.name}.toml"
    return shipped if shipped.is_file() else path


def _positive_float(name: str, text: str, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {text!r}")
    return value


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"ONEC_TIMEZONE={name!r} is not a known IANA time zone (e.g. Europe/Moscow)") from None
    return name
