"""The rendered JSON of each record version, so a read costs the sandbox little and holds its lock briefly.

Why: rendering (the §1.9 variations, decimals, dates) is most of what a read costs the fake server, and it used
to run under the engine's lock, so benchmarks of our pipeline measured the sandbox instead. A record renders
the same way until it changes (the variations are seeded by the record's identity, as 1C writes a given object
version the same way each time), so its bytes are kept per (record, version) and served again. Records are
changed in place by writes, drift and mutations, so a miss copies the record under the lock and renders the
copy after the lock is released; the bytes are kept only if the record has not changed meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from onec.sandbox.data import Document, Good
from onec.sandbox.render import Renderer

Record = Good | Document


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A record's values as they were under the lock: `copy` is rendered, `record` is the cache's key."""

    record: Record
    version: object
    copy: Record


Taken = bytes | Snapshot


class RenderCache:
    """One entry per live record: its rendered bytes and the version they show. `lock` is the engine's (it
    guards the records and this cache)."""

    def __init__(self, renderer: Renderer, lock: threading.RLock) -> None:
        self._renderer = renderer
        self._lock = lock
        self._bodies: dict[int, tuple[Record, object, bytes]] = {}

    def take(self, records: Sequence[Record]) -> list[Taken]:
        """Under the lock: each record's bytes if this version was rendered before, else a snapshot of it."""
        taken: list[Taken] = []
        for record in records:
            version = render_version(record)
            hit = self._bodies.get(id(record))
            # `is`: an id can be reused by a new object once the old one is gone; the entry keeps it alive.
            if hit is not None and hit[0] is record and hit[1] == version:
                taken.append(hit[2])
            else:
                taken.append(Snapshot(record, version, _copy(record)))
        return taken

    def render(self, taken: Sequence[Taken]) -> list[bytes]:
        """Without the lock: render the snapshots, then keep (briefly under the lock) those still current."""
        bodies = [item if isinstance(item, bytes) else self._render(item.copy) for item in taken]
        fresh = [(item, body) for item, body in zip(taken, bodies, strict=True) if isinstance(item, Snapshot)]
        if fresh:
            with self._lock:
                for snapshot, body in fresh:
                    if render_version(snapshot.record) == snapshot.version:
                        self._bodies[id(snapshot.record)] = (snapshot.record, snapshot.version, body)
        return bodies

    def _render(self, record: Record) -> bytes:
        if isinstance(record, Document):
            return self._renderer.document(record)
        return self._renderer.good(record)


def render_version(record: Record) -> object:
    """What changes whenever the rendered JSON may: a document's version (every write bumps it); for a goods
    row also its quantity and time, which posting a drift document changes in place."""
    if isinstance(record, Document):
        return record.version
    return (record.version, record.quantity, record.modified_at)


def _copy(record: Record) -> Record:
    """A copy deep enough that in-place writes to the record (fields, lines) do not reach it."""
    if isinstance(record, Document):
        return replace(record, items=[replace(line) for line in record.items])
    return replace(record)
