"""Which entities an event touches, so one incremental run can cover a whole burst of events.

A document event names its type; posting, re-posting or deleting a document also moves stock, so goods follow.
Goods and inventory events touch goods. An event we cannot place (an unknown type) touches everything: syncing
too much is cheap with change cursors, missing a change is not.
"""

from __future__ import annotations

from collections.abc import Iterable

from onec.incremental import ENTITIES, GOODS
from onec.schema import DOCUMENT_TYPE_BY_SLUG
from onec.webhooks.events import DOCUMENT_CREATED, DOCUMENT_DELETED, DOCUMENT_POSTED, GOODS_UPDATED, INVENTORY_SYNCED
from onec.webhooks.queue import QueuedEvent


def affected_entities(events: Iterable[QueuedEvent]) -> tuple[str, ...]:
    """The entities (`onec.incremental.ENTITIES` names) a batch of events needs synced, in canonical order."""
    wanted: set[str] = set()
    for event in events:
        wanted |= _entities(event)
    return tuple(entity for entity in ENTITIES if entity in wanted)


def _entities(event: QueuedEvent) -> set[str]:
    if event.event in (GOODS_UPDATED, INVENTORY_SYNCED):
        return {GOODS}
    doc_type = str(event.data.get("type", "")).strip()
    if event.event in (DOCUMENT_CREATED, DOCUMENT_POSTED, DOCUMENT_DELETED) and doc_type in DOCUMENT_TYPE_BY_SLUG:
        return {doc_type} if event.event == DOCUMENT_CREATED else {doc_type, GOODS}
    return set(ENTITIES)
