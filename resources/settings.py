"""The `ONEC_*` configuration as Dagster resource config: the variables' text, read by `Settings` like the CLI's.

Why text and not one typed field per setting: `onec.config` declares each variable once, and a resource that
re-listed them as fields drifted from it (a setting the CLI honoured was silently dropped in Dagster runs). Carrying
the variables makes a Dagster run read exactly what `onec-etl` reads from the same environment.
"""

from __future__ import annotations

from typing import Self

import dagster as dg
from pydantic import Field

from onec.config import Settings


class SettingsResource(dg.ConfigurableResource["SettingsResource"]):
    """Base of the resources: `settings()` is `Settings.from_env` over `variables` and `secrets`."""

    variables: dict[str, str] = Field(default_factory=dict)
    """Non-secret `ONEC_*` variables that differ from their defaults (README, "Configuration")."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Secret `ONEC_*` variables as Dagster `EnvVar`s: resolved in the run's process, never stored or shown."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(variables=settings.variables(), secrets={name: dg.EnvVar(name) for name in settings.secrets_set()})

    def settings(self) -> Settings:
        """Inside a run Dagster has resolved each `EnvVar` to its value; outside one (a resource built by hand and
        called directly) the field still holds the `EnvVar`, whose text is the variable's name, not its value."""
        secrets = {
            name: (value.get_value() or "") if isinstance(value, dg.EnvVar) else value
            for name, value in self.secrets.items()
        }
        return Settings.from_env({**self.variables, **secrets})
