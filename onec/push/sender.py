"""Send packed batches to 1C, in parallel up to the session's connection cap, and settle every document exactly
once.

The protocol, per batch: mark its documents `sending` in the ledger, POST, then record each document's outcome.
When the answer is lost (timeout, dropped connection, a 500 after a partial write: the session raises
OneCUnavailable saying the write may have been applied), the documents are looked up in 1C, by the pages of their
date windows (onec/push/readback.py), before anything is resent: found with our content means created, found with
other content is a conflict, not found goes out again. An `exists` answer is compared the same way (same content:
already there; different: a conflict that is reported, never overwritten). A `413 BATCH_TOO_LARGE` tightens the
limits to what 1C stated and the documents are packed again. Pacing, the connection cap and retries of 429/503
are the session's; a batch waits for its turn (onec/push/turns.py) before it goes to the session, so the
verification's reads can go first.

Why streaming (`submit` while the file is still being checked, then `finish`): the rate limit makes requests
the scarce resource, so the first request should leave as soon as the first documents are ready, and every
later one as soon as its rate slot comes. Full batches go out at once; the last, partly filled one of each
packing waits for the next documents, so streaming costs no extra requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from onec.errors import UnavailableError
from onec.http import OneCError, OneCHTTPError, OneCSession, OneCUnavailable
from onec.push.chunking import Limits, batch_body, oversize_reason, pack
from onec.push.content import DocumentContent, OutgoingDocument
from onec.push.ledger import Change, Ledger, State
from onec.push.readback import OneCCopy, ReadBack
from onec.push.turns import Turns

MAX_ROUNDS = 8
"""Rounds of repacking and resending before the documents still unsettled are reported as failed."""
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
SPARE_WORKERS = 4
"""Sending threads beyond the session's connection cap (which still bounds the requests in flight): they write
their batches' `sending` marks while the others' requests are under way, so no connection waits for the
ledger. At most this many more batches are in doubt after a crash (they cost a read of their date window, not a
resend)."""


class ImportAborted(UnavailableError):
    """1C cannot be written to or read from right now; the ledger keeps every document's state for a re-run."""


@dataclass(frozen=True)
class Endpoint:
    """Where a kind of record goes: the batch path, the body's array key, how a result names its record, and
    whether repeating a request is harmless (goods are upserts; documents are not)."""

    path: str
    key: str
    result_key: Callable[[dict[str, Any]], str | None]
    idempotent: bool
    doc_type: str


def documents_endpoint(doc_type: str) -> Endpoint:
    return Endpoint(f"api/v1/documents/{doc_type}/batch", "documents", _number_of, False, doc_type)


def goods_endpoint() -> Endpoint:
    return Endpoint("api/v1/goods/batch", "goods", _goods_key_of, True, "goods")


class BatchSender:
    """Sends one import's documents, in batches, in parallel up to the session's connection cap.

    `submit` documents as they are ready, then `finish`; `close` (always) waits for the requests in flight.
    """

    def __init__(
        self,
        session: OneCSession,
        ledger: Ledger,
        endpoint: Endpoint,
        limits: Limits,
        read_back: ReadBack | None,
        turns: Turns,
        *,
        on_settled: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._session = session
        self._turns = turns
        self._ledger = ledger
        self._endpoint = endpoint
        self._read_back = read_back
        self._on_settled = on_settled
        self._workers = session.settings.max_connections
        self._lock = threading.Lock()
        self.limits = limits
        self.requests = 0
        self._sent: set[str] = set()
        self._pool = ThreadPoolExecutor(self._workers + SPARE_WORKERS, thread_name_prefix="push")
        self._in_flight: list[Future[list[OutgoingDocument]]] = []
        self._waiting: list[OutgoingDocument] = []

    @property
    def sent(self) -> int:
        """Documents this run put in at least one request."""
        return len(self._sent)

    def submit(self, documents: Sequence[OutgoingDocument]) -> None:
        """The first round for these documents: full batches are sent now, the last partial one waits for more
        (or for `finish`) and goes out first with them (packing keeps the order). Raises ImportAborted when a
        request already failed that way."""
        self._raise_failure()
        batches = self._packed([*self._waiting, *documents])
        self._waiting = batches.pop() if batches else []
        self._in_flight += [self._pool.submit(self._send_batch, batch) for batch in batches]

    def finish(self) -> None:
        """Send what waits, let the first round end, then send again what came back (413, not found on
        read-back) until every document is settled or MAX_ROUNDS have passed (those are marked failed)."""
        batches = self._packed(self._waiting)
        self._waiting = []
        self._in_flight += [self._pool.submit(self._send_batch, batch) for batch in batches]
        queue = self._results()
        for _ in range(MAX_ROUNDS - 1):
            if not queue:
                return
            self._in_flight = [self._pool.submit(self._send_batch, batch) for batch in self._packed(queue)]
            queue = self._results()
        reason = f"not settled after {MAX_ROUNDS} rounds of sending"
        self._ledger.apply([Change(d.number, State.FAILED, last_error=reason) for d in queue])

    def close(self) -> None:
        """Wait for the requests in flight (their outcomes reach the ledger); drop the ones not started."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _packed(self, documents: Sequence[OutgoingDocument]) -> list[list[OutgoingDocument]]:
        """Batches under the limits as they are now (a 413 may tighten them from another thread meanwhile: a
        batch that no longer fits is packed again when its turn comes, see `_fits`)."""
        limits = self.limits
        return pack(self._oversize(documents, limits), limits, self._endpoint.key)

    def _results(self) -> list[OutgoingDocument]:
        """Wait for the requests of this round; the documents they gave back (first failure raised)."""
        again = [document for future in self._in_flight for document in future.result()]
        self._in_flight = []
        return again

    def _raise_failure(self) -> None:
        for future in self._in_flight:
            if future.done() and future.exception() is not None:
                future.result()

    def settle_in_doubt(self, documents: Sequence[OutgoingDocument], why: str) -> list[OutgoingDocument]:
        """Look up documents in doubt in 1C (by their date windows, onec/push/readback.py); returns those 1C does
        not hold (to be sent again)."""
        if self._read_back is None or not documents:
            return list(documents)
        copies = self._resolve(documents, "cannot read back documents whose write is in doubt")
        changes: list[Change] = []
        again: list[OutgoingDocument] = []
        for document in documents:
            copy = copies[document.number]
            if copy is None:
                again.append(document)
                changes.append(Change(document.number, State.PENDING, last_error=f"not in 1C after: {why}"))
            else:
                changes.append(_compared(document.content, copy, State.CREATED, self._endpoint.doc_type))
        self._ledger.apply(changes)
        self._on_settled(len(documents) - len(again))
        return again

    def _oversize(self, queue: Sequence[OutgoingDocument], limits: Limits) -> list[OutgoingDocument]:
        """Refuse documents that no request can carry under the (possibly tightened) limits."""
        fits: list[OutgoingDocument] = []
        changes: list[Change] = []
        for document in queue:
            reason = oversize_reason(document, limits, self._endpoint.key)
            if reason is None:
                fits.append(document)
            else:
                changes.append(Change(document.number, State.OVERSIZE, last_error=reason))
        self._ledger.apply(changes)
        self._on_settled(len(changes))
        return fits

    def _send_batch(self, batch: list[OutgoingDocument]) -> list[OutgoingDocument]:
        """One request; returns the documents to send again."""
        if not self._fits(batch):
            return batch
        self._ledger.mark_sending([d.number for d in batch])
        with self._lock:
            self._sent.update(d.number for d in batch)
            self.requests += 1
        body = orjson.Fragment(batch_body(self._endpoint.key, batch))
        self._turns.take()
        try:
            answer = self._session.post_json(self._endpoint.path, body, retry=self._endpoint.idempotent)
        except OneCHTTPError as error:
            return self._refused(batch, error)
        except OneCUnavailable as error:
            if self._endpoint.idempotent:
                self._ledger.apply([Change(d.number, State.PENDING, last_error=str(error)) for d in batch])
                raise ImportAborted(str(error)) from None
            return self.settle_in_doubt(batch, str(error))
        except OneCError as error:
            raise ImportAborted(str(error)) from None
        return self._settle_answer(batch, answer)

    def _fits(self, batch: list[OutgoingDocument]) -> bool:
        """False when a 413 tightened the limits after this batch was packed (it is packed again)."""
        items = sum(d.content.lines for d in batch)
        size = len(batch_body(self._endpoint.key, batch))
        return items <= self.limits.max_items and size <= self.limits.max_bytes

    def _refused(self, batch: list[OutgoingDocument], error: OneCHTTPError) -> list[OutgoingDocument]:
        """A 4xx for the whole request: nothing was applied. A 413 shrinks the batches; others fail the batch."""
        if error.status != 413:
            self._ledger.apply([Change(d.number, State.FAILED, last_error=str(error)) for d in batch])
            self._on_settled(len(batch))
            return []
        items = sum(d.content.lines for d in batch)
        size = len(batch_body(self._endpoint.key, batch))
        with self._lock:
            stated = self.limits.tightened(error.details)
            if stated.max_items >= items and stated.max_bytes >= size:
                # 1C counts differently from us or stated nothing: halve what it refused
                stated = Limits(max(1, min(stated.max_items, items // 2)), max(1, min(stated.max_bytes, size // 2)))
            self.limits = stated
        if len(batch) == 1 and oversize_reason(batch[0], self.limits, self._endpoint.key) is None:
            reason = f"oversize: 1C refused the document alone ({error.message})"
            self._ledger.apply([Change(batch[0].number, State.OVERSIZE, last_error=reason)])
            self._on_settled(1)
            return []
        self._ledger.apply([Change(d.number, State.PENDING, last_error=str(error)) for d in batch])
        return batch

    def _settle_answer(self, batch: list[OutgoingDocument], answer: Any) -> list[OutgoingDocument]:
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            return self.settle_in_doubt(batch, "1C answered without a results list")
        by_key = {self._endpoint.result_key(r): r for r in results if isinstance(r, dict)}
        changes: list[Change] = []
        existing: list[tuple[OutgoingDocument, str | None]] = []
        doubtful: list[OutgoingDocument] = []
        for document in batch:
            result = by_key.get(document.number)
            status = result.get("status") if result is not None else None
            onec_id = _text(result.get("id")) if result is not None else None
            if result is None or status not in ("created", "updated", "exists", "error"):
                doubtful.append(document)
            elif status == "created":
                changes.append(Change(document.number, State.CREATED, onec_id=onec_id, last_error=None))
            elif status == "updated":
                changes.append(Change(document.number, State.EXISTS, onec_id=onec_id, last_error=None))
            elif status == "exists":
                existing.append((document, onec_id))
            else:
                message = f"1C refused it: {_text(result.get('code')) or 'error'}: {_text(result.get('message'))}"
                changes.append(Change(document.number, State.REFUSED, last_error=message))
        changes += self._compare_existing(existing)
        self._ledger.defer(changes)
        self._on_settled(len(changes))
        return self.settle_in_doubt(doubtful, "1C's answer did not mention them") if doubtful else []

    def _compare_existing(self, existing: Sequence[tuple[OutgoingDocument, str | None]]) -> list[Change]:
        """1C says these numbers exist: ours where the content is the same, a conflict where not. Looked up by
        date window like documents in doubt; one 1C holds under another date is then read by the id it gave."""
        if not existing:
            return []
        if self._read_back is None:
            return [Change(document.number, State.EXISTS, onec_id=onec_id) for document, onec_id in existing]
        why = "cannot read back documents that 1C says exist"
        copies = self._resolve([document for document, _ in existing], why)
        changes: list[Change] = []
        for document, onec_id in existing:
            copy = copies[document.number]
            if copy is None and onec_id:
                try:
                    copy = self._read_back.by_id(onec_id, document.number)
                except OneCError as error:
                    raise ImportAborted(f"cannot read back {document.number} that 1C says exists: {error}") from None
            if copy is None:
                reason = "1C says it exists but cannot show it"
                changes.append(Change(document.number, State.CONFLICT, onec_id=onec_id, last_error=reason))
            else:
                changes.append(_compared(document.content, copy, State.EXISTS, self._endpoint.doc_type))
        return changes

    def _resolve(self, documents: Sequence[OutgoingDocument], why: str) -> dict[str, OneCCopy | None]:
        assert self._read_back is not None
        try:
            return self._read_back.resolve([d.content for d in documents], workers=self._workers)
        except OneCError as error:
            raise ImportAborted(f"{why}: {error}") from None


def _compared(content: DocumentContent, copy: OneCCopy, same: State, doc_type: str) -> Change:
    """The outcome of a document 1C holds: `same` when its content is ours, else a conflict with the reason."""
    if copy.content is None:
        return Change(content.number, State.CONFLICT, onec_id=copy.onec_id, last_error=copy.problem)
    if copy.content.content_hash == content.content_hash:
        note = "found in 1C by read-back after an unanswered request" if same is State.CREATED else None
        return Change(content.number, same, onec_id=copy.onec_id, last_error=note, posted=copy.posted)
    theirs = copy.content
    reason = (
        f"conflict: 1C already holds {doc_type} {content.number} with different content "
        f"(1C: {theirs.lines} lines, total {theirs.total}; file: {content.lines} lines, total {content.total});"
        " not overwritten"
    )
    return Change(content.number, State.CONFLICT, onec_id=copy.onec_id, last_error=reason)


def _number_of(result: dict[str, Any]) -> str | None:
    return _text(result.get("number"))


def _goods_key_of(result: dict[str, Any]) -> str | None:
    sku, warehouse = _text(result.get("sku")), _text(result.get("warehouse"))
    return f"{sku}|{warehouse}" if sku and warehouse else None


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
