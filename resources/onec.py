"""The 1C client as a Dagster resource: the `ONEC_*` configuration in, a shared rate-limited session out.

One session per run (opened lazily, closed at teardown) so that every asset of a run shares the same rate limiter,
concurrency cap and circuit breaker: a run never sends 1C more than the configured rate, however many assets it has.
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
    """Where 1C is and how to talk to it (`ONEC_BASE_URL` unset: the embedded sandbox), read by `Settings`."""

    _stack: contextlib.ExitStack | None = PrivateAttr(default=None)
    _client: OneCClient | None = PrivateAttr(default=None)
    _session: OneCSession | None = PrivateAttr(default=None)
    _source: Source | None = PrivateAttr(default=None)

    @contextmanager
    def client(self) -> Iterator[OneCClient]:
        """The run's shared client (opened on first use)."""
        if self._client is None:
            self._client = OneCClient(self._shared_session(), page_size=self.settings().page_size)
        yield self._client

    @contextmanager
    def source(self) -> Iterator[Source]:
        """The run's shared source, the one `ONEC_SOURCE` names, over the same session as `client()`."""
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
