"""One import, end to end: file → plan → ledger → batches → (posting) → read-back verification → report.

This is the whole reverse path without Dagster, so `onec-etl push`, the `onec_import` job, the tests and the
benchmark run the very same code. An import is identified by its document type and the file's bytes: running
the same file again resumes it from the ledger (a killed run loses nothing, a finished one sends nothing).

Why in chunks: 1C's rate limit sets the floor of an import's wall time (requests ÷ rate), so everything else
should happen while requests are under way. The file is checked a chunk of documents at a time (a chunk holds
every record of its numbers, so it is judged exactly as the whole file would be), each chunk is registered in
the ledger and handed to the sender, whose first requests leave while later chunks are still being checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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
from onec.push.report import ImportSummary, Verification, summarize, write_results
from onec.push.sender import BatchSender, Endpoint, ImportAborted, documents_endpoint, goods_endpoint
from onec.warehouse import Warehouse

Progress = Callable[[int], None]
PLAN_CHUNK_DOCUMENTS = 500
"""Documents checked and handed to the sender at a time: ~0.1 s of checking, a few seconds of requests."""


@dataclass(frozen=True)
class PushOptions:
    """`post`: post the drafts this import created; `limits`: 1C's batch limits as configured."""

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
    chunks = read_record_chunks(path, kind, PLAN_CHUNK_DOCUMENTS)
    plans = (plan_import(records, kind, timezone=warehouse.timezone, run_id=run_id) for records in chunks)
    return _push(
        kind, plans, import_id_for(path, kind), client, warehouse,
        run_id=run_id, options=options or PushOptions(), progress=on_progress or (lambda _: None),
    )  # fmt: skip


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
    ledger = Ledger(warehouse, import_id, endpoint.doc_type)
    read_back = ReadBack(client, kind, warehouse.timezone) if kind != GOODS else None
    sender = BatchSender(client.session, ledger, endpoint, options.limits, read_back, on_settled=progress)
    contents: dict[str, DocumentContent] = {}
    aborted = None
    try:
        for plan in plans:
            contents.update((d.number, d.content) for d in plan.outgoing)
            _send(plan, ledger, sender, options.limits, endpoint.key, progress)
        sender.finish()
        if options.post and kind != GOODS:
            _post_drafts(client, ledger, kind)
    except ImportAborted as error:
        aborted = str(error)
    finally:
        sender.close()
        entries = ledger.entries()
        ledger.release()
    checks: dict[str, Verification] = {}
    if read_back is not None and aborted is None:
        checks = verify(read_back, entries, contents, posted=options.post)
    write_results(
        warehouse, import_id=import_id, run_id=run_id, doc_type=endpoint.doc_type, entries=entries,
        contents=contents, checks=checks,
    )  # fmt: skip
    return summarize(
        import_id=import_id, doc_type=endpoint.doc_type, entries=entries, checks=checks, sent=sender.sent,
        requests=sender.requests, aborted=aborted, http=client.stats.snapshot(),
    )  # fmt: skip


def _send(plan: ImportPlan, ledger: Ledger, sender: BatchSender, limits: Limits, key: str, progress: Progress) -> None:
    """Register a chunk in the ledger (rows already there keep their state: a re-run resumes), settle what an
    earlier run left in doubt, then hand everything not yet in 1C to the sender."""
    oversize = {d.number: reason for d in plan.outgoing if (reason := oversize_reason(d, limits, key))}
    entries = ledger.register(
        [(d.number, d.content.content_hash, State.OVERSIZE if d.number in oversize else State.PENDING,
          oversize.get(d.number)) for d in plan.outgoing]
        + [(r.key, None, State.INVALID, r.reason) for r in plan.rejected]
    )  # fmt: skip
    progress(sum(1 for e in entries.values() if e.state not in (State.PENDING, State.SENDING, State.FAILED)))
    in_doubt = [d for d in plan.outgoing if entries[d.number].state is State.SENDING]
    again = {d.number for d in sender.settle_in_doubt(in_doubt, "an earlier run stopped while sending it")}
    unsent = (State.PENDING, State.FAILED)
    sender.submit([d for d in plan.outgoing if entries[d.number].state in unsent or d.number in again])


def _post_drafts(client: OneCClient, ledger: Ledger, doc_type: str) -> None:
    """Post the drafts this import created (posting is safe to repeat: a posted document stays posted once)."""
    drafts = [e for e in ledger.entries().values() if e.state is State.CREATED and not e.posted and e.onec_id]

    def post(entry: Entry) -> Change:
        try:
            client.session.post_json(f"api/v1/documents/{doc_type}/{entry.onec_id}/post", {}, retry=True)
        except OneCHTTPError as error:
            return Change(entry.number, State.CREATED, last_error=f"posting refused: {error}")
        return Change(entry.number, State.CREATED, posted=True)

    try:
        with ThreadPoolExecutor(client.session.settings.max_connections, thread_name_prefix="post") as pool:
            changes = list(pool.map(post, drafts))
    except OneCError as error:
        raise ImportAborted(f"posting stopped: {error}") from None
    ledger.apply(changes)


def verify(
    read_back: ReadBack, entries: Mapping[str, Entry], contents: Mapping[str, DocumentContent], *, posted: bool
) -> dict[str, Verification]:
    """Read every landed document back in one paged query and compare lines, quantities and totals (and the
    whole content) with what the file said."""
    landed = [contents[n] for n, e in entries.items() if e.state in LANDED and n in contents]
    try:
        copies = read_back.in_range(landed)
    except OneCError as error:
        return {c.number: Verification(False, f"verification read failed: {error}") for c in landed}
    checks: dict[str, Verification] = {}
    for ours in landed:
        copy = copies.get(ours.number)
        problems: list[str] = []
        if copy is None:
            problems.append("not found in 1C on read-back")
        elif copy.content is None:
            problems.append(copy.problem or "1C's copy cannot be read")
        else:
            theirs = copy.content
            for label, mine, other in (
                ("lines", ours.lines, theirs.lines),
                ("quantity", ours.quantity, theirs.quantity),
                ("total", ours.total, theirs.total),
            ):
                if mine != other:
                    problems.append(f"{label}: 1C has {other}, the file {mine}")
            if not problems and theirs.content_hash != ours.content_hash:
                problems.append("content differs from the file (same counts and totals)")
            if posted and entries[ours.number].state is State.CREATED and not copy.posted:
                problems.append("not posted in 1C")
        checks[ours.number] = Verification(not problems, "; ".join(problems) or None)
    return checks


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
