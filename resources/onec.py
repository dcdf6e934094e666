"""The 1C client as a Dagster resource: the `ONEC_*` configuration in, a shared rate-limited session per base out.

One session per base per run (opened lazily, closed at teardown) so that every asset of a run shares the same rate
limiter, concurrency cap and circuit breaker: a run never sends a 1C more than its configured rate, however many
assets it has. A run works on one base (its partition's), so in practice a run opens one session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr

from onec.client import OneCClient
from onec.connect import open_session
from onec.http.session import OneCSession
from onec.sources import Source, open_source
from resources.settings import SettingsResource


class OneCResource(SettingsResource):
    """Where each 1C is and how to talk to it (`ONEC_BASES_FILE`, else `ONEC_BASE_URL`; unset: the embedded
    sandbox), read by `Settings`."""

    _stack: contextlib.ExitStack | None = PrivateAttr(default=None)
    _clients: dict[str, OneCClient] = PrivateAttr(default_factory=dict)
    _sessions: dict[str, OneCSession] = PrivateAttr(default_factory=dict)
    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    @contextmanager
    def client(self, base: str | None = None) -> Iterator[OneCClient]:
        """The run's shared client of base `base` (None: the first configured), opened on first use."""
        settings = self.base_settings(base)
        if settings.base_id not in self._clients:
            session = self._shared_session(settings.base_id)
            self._clients[settings.base_id] = OneCClient(session, page_size=settings.page_size)
        yield self._clients[settings.base_id]

    @contextmanager
    def source(self, base: str | None = None) -> Iterator[Source]:
        """The run's shared source of base `base`, the one its `source` names, over the same session as `client()`."""
        settings = self.base_settings(base)
        if settings.base_id not in self._sources:
            self._sources[settings.base_id] = open_source(settings, self._shared_session(settings.base_id))
        yield self._sources[settings.base_id]

    def _shared_session(self, base: str) -> OneCSession:
        if base not in self._sessions:
            if self._stack is None:
                self._stack = contextlib.ExitStack()
            self._sessions[base] = self._stack.enter_context(open_session(self.base_settings(base)))
        return self._sessions[base]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self._clients, self._sessions, self._sources = {}, {}, {}
