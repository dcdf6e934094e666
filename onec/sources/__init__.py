"""The ways into 1C. Each source hands over batches of one entity in a shape validation understands.

A batch is either a list of records shaped like the exchange service's JSON (§1.3 of the contract: dicts, documents
with `items`), or, for columnar sources such as the CSV export, a text frame already named in canonical columns.
Everything after the source (validation, landing, checks) is the same for all of them, which is what makes format
parity hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from onec.config import ConfigError
from onec.http.limits import RequestStats
from onec.validation import NamedRecords, TextRecords

if TYPE_CHECKING:
    from onec.config import Settings
    from onec.http.session import OneCSession

Batch = list[dict[str, Any]]
SourceBatch = Batch | NamedRecords | TextRecords
"""What a source yields: contract-shaped records (under the canonical names, or the file's names as the UDE XML
export has them), or a text frame (the CSV export) that never becomes dicts."""


class Source(Protocol):
    """What `onec.sync` needs from a way into 1C."""

    name: str

    @property
    def stats(self) -> RequestStats: ...

    def goods(self) -> Iterator[SourceBatch]: ...

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[SourceBatch]: ...


def open_source(settings: Settings, session: OneCSession, kind: str | None = None) -> Source:
    """The source named `kind` over one session, so every way into 1C shares its auth, pace and retries.

    Imported lazily: each source module imports this package for `Batch`. `kind` defaults to `settings.source`.
    """
    kind = kind or settings.source.value
    if kind in ("csv", "xml"):
        from onec.sources.exports import ExportSource

        return ExportSource(session, kind)
    if kind == "json":
        from onec.client import OneCClient

        return OneCClient(session, page_size=settings.page_size)
    if kind == "odata":
        from onec.sources.odata import OdataSource, odata_root
        from onec.sources.odata_model import OdataModel

        model = OdataModel.load(settings.odata_model)
        # The session's settings: they carry the base URL actually in use (the embedded sandbox sets its own).
        return OdataSource(session, root=odata_root(session.settings), model=model, page_size=settings.page_size)
    raise ConfigError(f"unknown source {kind!r}; expected one of: json, csv, xml, odata")
