"""The `ONEC_*` configuration as Dagster resource config: the variables' text, read by `Settings` like the CLI's.

Why text and not one typed field per setting: `onec.config` declares each variable once, and a resource that
re-listed them as fields drifted from it (a setting the CLI honoured was silently dropped in Dagster runs). Carrying
the variables makes a Dagster run read exactly what `onec-etl` reads from the same environment. With several bases
the variables include `ONEC_BASES_FILE`, and the secrets each base's `ONEC_BASE_<ID>_*` variables.
"""

from __future__ import annotations

from typing import Self

import dagster as dg
from pydantic import Field

from onec.config import Bases, Settings, load_bases


class SettingsResource(dg.ConfigurableResource["SettingsResource"]):
    """Base of the resources: `settings()` is `Settings.from_env` over `variables` and `secrets`, `base_settings(id)`
    one configured base's (`load_bases` over the same)."""

    variables: dict[str, str] = Field(default_factory=dict)
    """Non-secret `ONEC_*` variables that differ from their defaults (README, "Configuration")."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Secret `ONEC_*` variables as Dagster `EnvVar`s: resolved in the run's process, never stored or shown."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls.from_bases(Bases.single(settings))

    @classmethod
    def from_bases(cls, bases: Bases) -> Self:
        secrets = [*bases.settings.secrets_set(), *bases.secret_variables]
        return cls(variables=bases.settings.variables(), secrets={name: dg.EnvVar(name) for name in secrets})

    def settings(self) -> Settings:
        """The `ONEC_*` variables themselves (what every base shares)."""
        return Settings.from_env(self._environment())

    def bases(self) -> Bases:
        """Every configured base (`load_bases` over the same variables)."""
        return load_bases(self._environment())

    def base_settings(self, base: str | None = None) -> Settings:
        """The settings of base `base` (None: the first configured, `main` without `ONEC_BASES_FILE`)."""
        bases = self.bases()
        return bases.base(base if base is not None else bases.ids[0])

    def _environment(self) -> dict[str, str]:
        """Inside a run Dagster has resolved each `EnvVar` to its value; outside one (a resource built by hand and
        called directly) the field still holds the `EnvVar`, whose text is the variable's name, not its value."""
        secrets = {
            name: (value.get_value() or "") if isinstance(value, dg.EnvVar) else value
            for name, value in self.secrets.items()
        }
        return {**self.variables, **secrets}
