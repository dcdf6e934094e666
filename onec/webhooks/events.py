"""The webhook events of the exchange contract (§1.8): shared by the receiver, the routing and the sandbox 1C."""

from __future__ import annotations

DOCUMENT_CREATED = "document.created"
DOCUMENT_POSTED = "document.posted"
DOCUMENT_DELETED = "document.deleted"
GOODS_UPDATED = "goods.updated"
INVENTORY_SYNCED = "inventory.synced"
EVENTS = (DOCUMENT_CREATED, DOCUMENT_POSTED, DOCUMENT_DELETED, GOODS_UPDATED, INVENTORY_SYNCED)
