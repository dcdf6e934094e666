"""The ways into 1C. Each source hands over batches of one entity in a shape validation understands.

A batch is either a list of records shaped like the exchange service's JSON (§1.3 of the contract: dicts, documents
with `items`), or, for columnar sources such as the CSV export, a text frame already named in canonical columns.
Everything after the source (validation, landing, checks) is the same for all of them, which is what makes format
parity hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Protocol

from onec.http.limits import RequestStats

Batch = list[dict[str, Any]]


class Source(Protocol):
    """What `onec.sync` needs from a way into 1C."""

    name: str

    @property
    def stats(self) -> RequestStats: ...

    def goods(self) -> Iterator[Batch]: ...

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[Batch]: ...
