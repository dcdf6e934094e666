"""Pack documents into batch requests that stay within 1C's limits (§1.6): items (document lines; goods: rows)
and serialized bytes per request.

Why pack and not just cut every N documents: the rate limit makes requests the scarce resource, so the wall time
of an import is the number of requests ÷ the rate. Documents are packed in the order given (an import sends them
by date, so that a date range is verified while later ones are still being sent, see onec/push/verify.py), each
batch topped up with later documents that still fit, which fills batches to within a line or so of the limit. A
document is never split (half a document in 1C is worse than none): one larger than a whole request is refused
with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onec.config import ConfigError
from onec.push.content import OutgoingDocument

DEFAULT_MAX_ITEMS = 500
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
LOOKAHEAD = 64
"""Documents `pack` looks at past the first one that did not fit, for one that does."""


@dataclass(frozen=True)
class Limits:
    """1C's per-request limits, as configured or as 1C stated them in a 413."""

    max_items: int = DEFAULT_MAX_ITEMS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.max_items < 1 or self.max_bytes < 1:
            raise ConfigError(f"batch limits must be positive, got {self.max_items} items and {self.max_bytes} bytes")

    def tightened(self, stated: dict[str, object]) -> Limits:
        """The limits a `413 BATCH_TOO_LARGE` states (`details.max_items`, `details.max_bytes`), never looser."""
        items, size = stated.get("max_items"), stated.get("max_bytes")
        return Limits(
            min(self.max_items, items) if isinstance(items, int) and items > 0 else self.max_items,
            min(self.max_bytes, size) if isinstance(size, int) and size > 0 else self.max_bytes,
        )


def envelope_bytes(key: str, count: int) -> int:
    """Bytes a batch body adds around its documents: `{"<key>":[` … `]}` and the commas between them."""
    return len(key) + 7 + max(count - 1, 0)


def oversize_reason(document: OutgoingDocument, limits: Limits, key: str) -> str | None:
    """Why a document can never be sent in one request under these limits, or None."""
    lines = document.content.lines
    if lines > limits.max_items:
        return (
            f"oversize: {lines} lines exceed 1C's limit of {limits.max_items} items per request;"
            " a document is never split, so it must be divided in the source"
        )
    size = len(document.body) + envelope_bytes(key, 1)
    if size > limits.max_bytes:
        return f"oversize: {size} bytes exceed 1C's limit of {limits.max_bytes} bytes per request"
    return None


def pack(documents: Sequence[OutgoingDocument], limits: Limits, key: str) -> list[list[OutgoingDocument]]:
    """Batches within both limits, in the documents' order; every document must fit alone (check
    `oversize_reason` first). Each batch takes the next documents while they fit, then tops itself up with later
    ones that still fit, looking at most LOOKAHEAD documents past the first that did not (so a batch is rarely
    left more than a line short, and a document goes at most a batch or two later than its turn)."""
    for document in documents:
        reason = oversize_reason(document, limits, key)
        if reason is not None:
            raise ValueError(f"document {document.number}: {reason}")
    remaining = list(documents)
    batches: list[list[OutgoingDocument]] = []
    while remaining:
        batch: list[OutgoingDocument] = []
        skipped: list[OutgoingDocument] = []
        items, size = 0, envelope_bytes(key, 0)
        for index, document in enumerate(remaining):
            extra = len(document.body) + (1 if batch else 0)
            if items + document.content.lines <= limits.max_items and size + extra <= limits.max_bytes:
                batch.append(document)
                items, size = items + document.content.lines, size + extra
            else:
                skipped.append(document)
            if items == limits.max_items or len(skipped) > LOOKAHEAD:
                skipped += remaining[index + 1 :]
                break
        batches.append(batch)
        remaining = skipped
    return batches


def batch_body(key: str, batch: Sequence[OutgoingDocument]) -> bytes:
    """The exact request body of a batch (what `envelope_bytes` and `pack` measured)."""
    return b'{"' + key.encode() + b'":[' + b",".join(d.body for d in batch) + b"]}"
