"""The 1C client as a Dagster resource: typed configuration in, a shared rate-limited session out.

One session per run (opened lazily, closed at teardown) so that every asset of a run shares the same rate limiter,
concurrency cap and circuit breaker: a run never sends 1C more than the configured rate, however many assets it has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from onec.client import OneCClient
from onec.config import AuthMethod, Secret, Settings, SourceKind
from onec.connect import open_session
from onec.http.session import OneCSession
from onec.schema import DEFAULT_TIMEZONE
from onec.sources import Source, open_source


class OneCResource(dg.ConfigurableResource):
    """Where 1C is and how to talk to it. Leave `base_url` empty to use the embedded sandbox."""

    base_url: str | None = None
    auth: str = "none"
    username: str = ""
    password: str | None = None
    api_key: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    ca_bundle: str | None = None
    rate_limit: float = 20.0
    max_connections: int = 8
    timezone: str = DEFAULT_TIMEZONE
    page_size: int = 500
    timeout_s: float = 30.0
    max_retries: int = 6
    odata_url: str | None = None
    odata_model: str | None = None
    source_kind: str = "json"
    """Which door into 1C the assets sync through (ONEC_SOURCE): json, csv, xml or odata."""

    _stack: contextlib.ExitStack | None = PrivateAttr(default=None)
    _client: OneCClient | None = PrivateAttr(default=None)
    _session: OneCSession | None = PrivateAttr(default=None)
    _source: Source | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> OneCResource:
        """Build from environment settings; secrets stay `EnvVar`s so Dagster never stores or shows their values."""
        return cls(
            base_url=settings.base_url,
            auth=settings.auth.value,
            username=settings.username,
            password=dg.EnvVar("ONEC_PASSWORD") if settings.password else None,
            api_key=dg.EnvVar("ONEC_API_KEY") if settings.api_key else None,
            client_cert=_text(settings.client_cert),
            client_key=_text(settings.client_key),
            ca_bundle=_text(settings.ca_bundle),
            rate_limit=settings.rate_limit,
            max_connections=settings.max_connections,
            timezone=settings.timezone,
            page_size=settings.page_size,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            odata_url=settings.odata_url,
            odata_model=_text(settings.odata_model),
            source_kind=settings.source.value,
        )

    def settings(self) -> Settings:
        settings = Settings(
            base_url=self.base_url or None,
            auth=AuthMethod(self.auth),
            username=self.username,
            password=Secret(self.password or ""),
            api_key=Secret(self.api_key or ""),
            client_cert=_path(self.client_cert),
            client_key=_path(self.client_key),
            ca_bundle=_path(self.ca_bundle),
            rate_limit=self.rate_limit,
            max_connections=self.max_connections,
            timezone=self.timezone,
            page_size=self.page_size,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            odata_url=self.odata_url or None,
            odata_model=_path(self.odata_model),
            source=SourceKind(self.source_kind),
        )
        settings.check()
        return settings

    @contextmanager
    def client(self) -> Iterator[OneCClient]:
        """The run's shared client (opened on first use)."""
        if self._client is None:
            self._client = OneCClient(self._shared_session(), page_size=self.page_size)
        yield self._client

    @contextmanager
    def source(self) -> Iterator[Source]:
        """The run's shared source, the one `source_kind` names, over the same session as `client()`."""
        if self._source is None:
            self._source = open_source(self.settings(), self._shared_session())
        yield self._source

    def _shared_session(self) -> OneCSession:
        if self._session is None:
            self._stack = contextlib.ExitStack()
            self._session = self._stack.enter_context(open_session(self.settings()))
        return self._session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._client, self._session, self._source = None, None, None, None


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None
