"""One import, end to end: file → plan → ledger → batches → (posting) → read-back verification → report.

This is the whole reverse path without Dagster, so `onec-etl push`, the `onec_import` job, the tests and the
benchmark run the very same code. An import is identified by its document type and the file's bytes: running
the same file again resumes it from the ledger (a killed run loses nothing, a finished one sends nothing).

Why in chunks: 1C's rate limit sets the floor of an import's wall time (requests ÷ rate), so everything else
should happen while requests are under way. The file is checked a chunk of documents at a time (a chunk holds
every record of its numbers, so it is judged exactly as the whole file would be), each chunk is registered in
the ledger and handed to the sender, whose first requests leave while later chunks are still being checked.
Chunks come in date order, and the verifier reads back each range of dates once all its documents are answered
(onec/push/verify.py), so the verification, too, happens while later batches are being sent.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from onec.client import OneCClient
from onec.http import OneCError, OneCHTTPError
from onec.push.chunking import Limits, oversize_reason, pack
from onec.push.content import DocumentContent
from onec.push.ledger import LANDED, Change, Entry, Ledger, State
from onec.push.plan import ImportPlan, plan_import
from onec.push.readback import ReadBack
from onec.push.readers import GOODS, read_record_chunks, read_records
from onec.push.report import ImportSummary, Verification, results_frame, summarize, with_checks, write_results
from onec.push.sender import BatchSender, Endpoint, ImportAborted, documents_endpoint, goods_endpoint
from onec.push.turns import Turns
from onec.push.verify import Verifier
from onec.warehouse import Warehouse

Progress = Callable[[int], None]
PLAN_CHUNK_DOCUMENTS = 500
"""Documents checked and handed to the sender at a time: ~0.1 s of checking, a few seconds of requests."""
FIRST_CHUNK_DOCUMENTS = 100
"""The first chunk is smaller: checking it is all that stands between the start and the first request."""
GC_THRESHOLD = 50_000


@dataclass(frozen=True)
class PushOptions:
    """`post`: post every document of this import that 1C holds as a draft (whether this run created it, an
    earlier run did, or 1C already held it with the file's content); `limits`: 1C's batch limits as configured."""

    post: bool = False
    limits: Limits = field(default_factory=Limits)


def import_id_for(path: Path, kind: str) -> str:
    """The same file of the same kind is the same import (that is what makes a re-run resume it)."""
    digest = hashlib.sha256(kind.encode() + b"\x00")
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{kind}-{digest.hexdigest()[:20]}"


def push_file(
    path: Path,
    kind: str,
    client: OneCClient,
    warehouse: Warehouse,
    *,
    run_id: str,
    options: PushOptions | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import one file of `kind` (a document type slug, or "goods") into 1C."""
    chunks = read_record_chunks(path, kind, PLAN_CHUNK_DOCUMENTS, FIRST_CHUNK_DOCUMENTS)
    plans = (plan_import(records, kind, timezone=warehouse.timezone, run_id=run_id) for records in chunks)
    return _push(
        kind, plans, import_id_for(path, kind), client, warehouse,
        run_id=run_id, options=options or PushOptions(), progress=on_progress or (lambda _: None),
    )  # fmt: skip


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector less often during an import (GC_THRESHOLD allocations between young
    collections instead of 700). Why: an import keeps hundreds of thousands of objects alive (records, contents,
    1C's copies), every collection stops all of its threads, and at the default threshold the pauses came to
    ~0.8 s of a 10 s import. Restored afterwards unless someone else changed it meanwhile."""
    before = gc.get_threshold()
    raised = (max(before[0], GC_THRESHOLD), *before[1:])
    gc.set_threshold(*raised)
    try:
        yield
    finally:
        if gc.get_threshold() == raised:
            gc.set_threshold(*before)


def preview_file(path: Path, kind: str, *, timezone: str, limits: Limits | None = None) -> ImportSummary:
    """A dry run: validate and plan the file, send nothing, write nothing."""
    plan = plan_import(read_records(path, kind), kind, timezone=timezone, run_id="dry-run")
    endpoint = goods_endpoint() if kind == GOODS else documents_endpoint(kind)
    limits = limits or Limits()
    oversize = {d.number: reason for d in plan.outgoing if (reason := oversize_reason(d, limits, endpoint.key))}
    return _dry_run(plan, import_id_for(path, kind), endpoint, limits, oversize)


def push_plan(
    plan: ImportPlan,
    import_id: str,
    client: OneCClient,
    warehouse: Warehouse,
    *,
    run_id: str,
    options: PushOptions | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import a plan already made (the whole of it is one chunk)."""
    return _push(
        plan.kind, [plan], import_id, client, warehouse,
        run_id=run_id, options=options or PushOptions(), progress=on_progress or (lambda _: None),
    )  # fmt: skip


@_fewer_collections()
def _push(
    kind: str,
    plans: Iterable[ImportPlan],
    import_id: str,
    client: OneCClient,
    warehouse: Warehouse,
    *,
    run_id: str,
    options: PushOptions,
    progress: Progress,
) -> ImportSummary:
    endpoint = goods_endpoint() if kind == GOODS else documents_endpoint(kind)
    read_back = ReadBack(client, kind, warehouse.timezone) if kind != GOODS else None
    settings = client.session.settings
    turns = Turns(settings.rate_limit)
    verifier = Verifier(read_back, turns, window=settings.page_size, early=not options.post)
    ledger = Ledger(warehouse, import_id, endpoint.doc_type, on_change=verifier.changed)
    sender = BatchSender(client.session, ledger, endpoint, options.limits, read_back, turns, on_settled=progress)
    contents: dict[str, DocumentContent] = {}
    aborted = None
    try:
        try:
            for plan in plans:
                contents.update((d.number, d.content) for d in plan.outgoing)
                _send(plan, ledger, sender, verifier, options.limits, endpoint.key, progress)
            verifier.tracked_all()
            sender.finish()
            if options.post and kind != GOODS:
                _post_drafts(client, ledger, kind)
        except ImportAborted as error:
            aborted = str(error)
        finally:
            sender.close()
        entries = ledger.entries()
        results = results_frame(
            import_id=import_id, run_id=run_id, doc_type=endpoint.doc_type, entries=entries, contents=contents
        )  # while the last windows are read back
        checks = verifier.finish(entries) if aborted is None else verifier.completed()
        ledger.apply(_posted_as_read(entries, checks))
        ledger.write(lambda con: write_results(con, import_id, with_checks(results, checks)))
    finally:
        verifier.close()
        ledger.release()
    return summarize(
        import_id=import_id, doc_type=endpoint.doc_type, entries=entries, checks=checks, sent=sender.sent,
        requests=sender.requests, aborted=aborted, http=client.stats.snapshot(), post=options.post and kind != GOODS,
    )  # fmt: skip


def _send(
    plan: ImportPlan,
    ledger: Ledger,
    sender: BatchSender,
    verifier: Verifier,
    limits: Limits,
    key: str,
    progress: Progress,
) -> None:
    """Register a chunk in the ledger (rows already there keep their state: a re-run resumes), settle what an
    earlier run left in doubt, then hand everything not yet in 1C to the sender (and every document to the
    verifier, which reads it back once it is settled)."""
    oversize = {d.number: reason for d in plan.outgoing if (reason := oversize_reason(d, limits, key))}
    entries = ledger.register(
        [(d.number, d.content.content_hash, State.OVERSIZE if d.number in oversize else State.PENDING,
          oversize.get(d.number)) for d in plan.outgoing]
        + [(r.key, None, State.INVALID, r.reason) for r in plan.rejected]
    )  # fmt: skip
    verifier.track([d.content for d in plan.outgoing], entries)
    progress(sum(1 for e in entries.values() if e.state not in (State.PENDING, State.SENDING, State.FAILED)))
    in_doubt = [d for d in plan.outgoing if entries[d.number].state is State.SENDING]
    again = {d.number for d in sender.settle_in_doubt(in_doubt, "an earlier run stopped while sending it")}
    unsent = (State.PENDING, State.FAILED)
    sender.submit([d for d in plan.outgoing if entries[d.number].state in unsent or d.number in again])


def _post_drafts(client: OneCClient, ledger: Ledger, doc_type: str) -> None:
    """Post every document of this import that 1C holds and the ledger does not know posted, whichever way it was
    found to be there (created by this run or an earlier one, `exists` with the file's content, found by read-back
    after a lost answer). Posting is safe to repeat: a posted document stays posted once, so a ledger that lags
    behind 1C costs a request, never a second posting. The verification then reads every one of them back."""
    drafts = [e for e in ledger.entries().values() if e.state in LANDED and not e.posted and e.onec_id]

    def post(entry: Entry) -> Change:
        try:
            client.session.post_json(f"api/v1/documents/{doc_type}/{entry.onec_id}/post", {}, retry=True)
        except OneCHTTPError as error:
            return Change(entry.number, entry.state, last_error=f"posting refused: {error}")
        return Change(entry.number, entry.state, posted=True)

    try:
        with ThreadPoolExecutor(client.session.settings.max_connections, thread_name_prefix="post") as pool:
            changes = list(pool.map(post, drafts))
    except OneCError as error:
        raise ImportAborted(f"posting stopped: {error}") from None
    ledger.apply(changes)


def _posted_as_read(entries: Mapping[str, Entry], checks: Mapping[str, Verification]) -> list[Change]:
    """The ledger follows what 1C's copies said about posting, so that a re-run with `--post` posts a document
    the ledger had recorded posted but 1C holds as a draft (and does not post again one that 1C holds posted)."""
    return [
        Change(number, entries[number].state, onec_id=None, last_error=entries[number].last_error, posted=check.posted)
        for number, check in checks.items()
        if number in entries and check.posted is not None and check.posted != entries[number].posted
    ]


def _dry_run(
    plan: ImportPlan, import_id: str, endpoint: Endpoint, limits: Limits, oversize: Mapping[str, str]
) -> ImportSummary:
    """What an import would do: the invalid and oversize documents, and the requests the rest needs."""
    sendable = [d for d in plan.outgoing if d.number not in oversize]
    reasons = [(r.key, r.outcome, r.reason) for r in plan.rejected] + sorted(
        (number, "oversize", reason) for number, reason in oversize.items()
    )
    counts = {"invalid": len(plan.rejected), "oversize": len(oversize)}
    return ImportSummary(
        import_id=import_id, doc_type=endpoint.doc_type, documents=plan.records, sent=0,
        requests=len(pack(sendable, limits, endpoint.key)), counts=counts, posted=0, verified=0, mismatched=0,
        dry_run=True, reasons=reasons,
    )  # fmt: skip
