"""The ways into 1C. Each source hands over batches of one entity in a shape validation understands.

The batch types are in `onec.sources.typing` (records shaped like the exchange service's JSON, records named as
their file names them, or a text frame); `onec.validation.check` reads any of them. Everything after the source
(validation, landing, checks) is the same for all of them, which is what makes format parity hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Protocol

from onec.client import OneCClient
from onec.config import ConfigError, Settings
from onec.http import OneCSession
from onec.http.limits import RequestStats
from onec.sources.exports import ExportSource
from onec.sources.odata import OdataSource, odata_root
from onec.sources.odata_model import OdataModel
from onec.sources.typing import SourceBatch


class Source(Protocol):
    """What `onec.sync` needs from a way into 1C."""

    name: str

    @property
    def stats(self) -> RequestStats: ...

    def goods(self) -> Iterator[SourceBatch]: ...

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[SourceBatch]: ...


def open_source(settings: Settings, session: OneCSession, kind: str | None = None) -> Source:
    """The source named `kind` over one session, so every way into 1C shares its auth, pace and retries.
    `kind` defaults to `settings.source`."""
    kind = kind or settings.source.value
    if kind in ("csv", "xml"):
        return ExportSource(session, kind)
    if kind == "json":
        return OneCClient(session, page_size=settings.page_size)
    if kind == "odata":
        model = OdataModel.load(settings.odata_model)
        # The session's settings: they carry the base URL actually in use (the embedded sandbox sets its own).
        return OdataSource(session, root=odata_root(session.settings), model=model, page_size=settings.page_size)
    raise ConfigError(f"unknown source {kind!r}; expected one of: json, csv, xml, odata")
