"""The read-back verification of an import: every landed document's lines, quantity and total (and its whole
content) compared with what 1C returns, window by window while later batches are still being sent.

Why windows: 1C's rate limit makes requests the scarce resource, and a verification read done after the last
batch leaves both ends idle while 1C renders thousands of documents. The import sends its documents in date order
(the reader hands them over that way), so the documents of an early range of dates are all settled long before
the last batch goes out. A window is such a range, of at most one page of documents and never split between two
documents of the same second. It is read (`date_from` … `date_to`, one paged read through the same session, so
under the same pace and connection cap, ahead of the batches waiting for their turn: onec/push/turns.py) as soon
as every document in it has its final outcome of this run, while later batches are still under way. The last
windows shrink towards the end, so that little is left to read after the last answer; one more range read at
the end covers anything a window could not (a document whose outcome changed after its window was read, or
every document when the import posts its drafts, which changes them after they are sent).

The order is only an optimisation: a window reads the date range of its own documents, so an out-of-order file
costs more rows read, never a document left unverified.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from onec.http import OneCError
from onec.push.content import DocumentContent
from onec.push.ledger import LANDED, Change, Entry, State
from onec.push.readback import OneCCopy, ReadBack, to_the_second
from onec.push.report import Verification
from onec.push.turns import Turns

READERS = 3
"""Windows read at once: one's copies are checked while 1C renders the next (the last few become ready
close together)."""
UNSETTLED = frozenset({State.PENDING, State.SENDING})
"""States that may still change within the run (a document in them will be sent, or read, again)."""


def check_copy(ours: DocumentContent, copy: OneCCopy | None) -> Verification:
    """1C's copy of one landed document against the file: lines, quantity, total, then the whole content; and
    whether 1C holds it posted (what the summary reports, and what `--post` must have achieved)."""
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
    return Verification(not problems, "; ".join(problems) or None, copy.posted if copy is not None else None)


def verify_range(read_back: ReadBack, landed: Sequence[DocumentContent]) -> dict[str, Verification]:
    """Read the landed documents back in one paged read of their date range and check each one."""
    if not landed:
        return {}
    try:
        copies = read_back.in_range(landed)
    except OneCError as error:
        return {c.number: Verification(False, f"verification read failed: {error}") for c in landed}
    return {c.number: check_copy(c, copies.get(c.number)) for c in landed}


@dataclass
class _Window:
    """Documents read back together; `unsettled` counts those whose outcome may still change."""

    numbers: list[str]
    unsettled: int
    scheduled: bool = False


@dataclass
class _Cutter:
    """Cuts documents arriving in date order into windows of at most `size` documents (more only when that many
    share one date and time), never between two documents of the same second (one range read takes both).

    The last windows are read after the last answers, so their reads are what the import waits for at the end:
    the last full window is held back until `flush`, which cuts the final documents into windows that shrink
    towards the end (see `_final_windows`)."""

    size: int
    windows: list[list[DocumentContent]] = field(default_factory=list)
    run: list[DocumentContent] = field(default_factory=list)

    def add(self, content: DocumentContent) -> list[list[DocumentContent]]:
        """The windows this document lets go (at most one)."""
        if self.run and to_the_second(content.date) != to_the_second(self.run[-1].date):
            _add_run(self.windows, self.run, self.size)
            self.run = []
        self.run.append(content)
        return [self.windows.pop(0)] if len(self.windows) > 2 else []

    def flush(self) -> list[list[DocumentContent]]:
        """Every window not let go yet."""
        documents = [d for window in self.windows for d in window] + self.run
        self.windows, self.run = [], []
        return _final_windows(documents, self.size)


def _add_run(windows: list[list[DocumentContent]], run: list[DocumentContent], size: int) -> None:
    """Documents of one second join the last window, or open a new one when they would make it too large."""
    if windows and len(windows[-1]) + len(run) <= size:
        windows[-1] += run
    else:
        windows.append(list(run))


def _final_windows(documents: list[DocumentContent], size: int) -> list[list[DocumentContent]]:
    """The import's last documents as windows that halve towards the end (…, size/2, size/4, size/8), each cut at
    a change of second: each is read while the next, smaller one is still being sent, so what remains after
    the last answer is the read of an eighth of a window. Whatever is left before them fits one window; too
    few documents for halving make one window."""
    tail: list[list[DocumentContent]] = []
    limit = max(1, size // 8)
    while len(documents) > min(2 * limit, size):
        start = _piece_start(documents, min(limit, size))
        if start == 0:
            break
        tail.insert(0, documents[start:])
        documents = documents[:start]
        limit *= 2
    return ([documents] if documents else []) + tail


def _piece_start(documents: Sequence[DocumentContent], limit: int) -> int:
    """Where the last piece of at most `limit` documents starts: the earliest change of second among the last
    `limit` documents (or, when one second holds more, the last change before them; 0 when there is none)."""
    seconds = [to_the_second(d.date) for d in documents]
    changes = [i for i in range(1, len(documents)) if seconds[i] != seconds[i - 1]]
    within = [i for i in changes if i >= len(documents) - limit]
    before = [i for i in changes if i < len(documents) - limit]
    return within[0] if within else (before[-1] if before else 0)


class Verifier:
    """Verifies one import's documents through `read_back` (None: nothing to verify, e.g. goods).

    `track` the documents as they are registered (in the order they will be sent) and say when that is done
    (`tracked_all`), feed every ledger change to `changed`, then `finish` with the ledger's final entries;
    `close` (always) stops the reads still queued. With `early=False` nothing is read before `finish` (an
    import that posts its drafts changes them after they are sent). Thread-safe: changes come from the
    sending threads.
    """

    def __init__(self, read_back: ReadBack | None, turns: Turns, *, window: int, early: bool) -> None:
        self._read_back = read_back
        self._turns = turns
        self._early = early and read_back is not None
        self._cutter = _Cutter(window)
        self._lock = threading.Lock()
        self._contents: dict[str, DocumentContent] = {}
        self._state: dict[str, State] = {}
        self._window_of: dict[str, _Window] = {}
        self._checks: dict[str, Verification] = {}
        self._stale: set[str] = set()
        self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="verify")
        self._reads: list[Future[None]] = []

    def track(self, documents: Sequence[DocumentContent], entries: Mapping[str, Entry]) -> None:
        """Documents registered in the ledger, with their entries: settled by an earlier run, or to be sent
        (again) by this one."""
        with self._lock:
            for content in documents:
                self._contents[content.number] = content
                state = entries[content.number].state
                self._state[content.number] = State.PENDING if state is State.FAILED else state
                if self._early:
                    for window in self._cutter.add(content):
                        self._open(window)

    def changed(self, changes: Sequence[Change]) -> None:
        """New outcomes from the ledger: a window whose last document settles is read now."""
        if not self._early:
            return
        with self._lock:
            for change in changes:
                before = self._state.get(change.number)
                self._state[change.number] = change.state
                window = self._window_of.get(change.number)
                if window is None:
                    continue
                if window.scheduled:
                    self._stale.add(change.number)  # read already: read again at the end
                    continue
                window.unsettled += _unsettled(change.state) - _unsettled(before)
                self._schedule_if_settled(window)

    def tracked_all(self) -> None:
        """No more documents will be tracked: the last windows are cut (and read once their documents settle)."""
        with self._lock:
            for window in self._cutter.flush() if self._early else []:
                self._open(window)

    def finish(self, entries: Mapping[str, Entry]) -> dict[str, Verification]:
        """Every landed document's check: the windows read so far, then one read of the rest."""
        if self._read_back is None:
            return {}
        self.tracked_all()
        for read in list(self._reads):
            read.result()
        done = self.completed()
        with self._lock:
            contents = dict(self._contents)
        landed = {n for n, e in entries.items() if e.state in LANDED}
        rest = [contents[n] for n in landed - done.keys() if n in contents]
        done.update(verify_range(self._read_back, rest))
        return {n: check for n, check in done.items() if n in landed}

    def completed(self) -> dict[str, Verification]:
        """The checks of the windows read so far (what an aborted import can still report)."""
        with self._lock:
            return {n: c for n, c in self._checks.items() if n not in self._stale}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _open(self, documents: list[DocumentContent]) -> None:
        """Under the lock: a closed window starts waiting for its documents to settle."""
        numbers = [c.number for c in documents]
        window = _Window(numbers, sum(_unsettled(self._state.get(n)) for n in numbers))
        for number in numbers:
            self._window_of[number] = window
        self._schedule_if_settled(window)

    def _schedule_if_settled(self, window: _Window) -> None:
        if window.unsettled == 0 and not window.scheduled:
            window.scheduled = True
            self._reads.append(self._pool.submit(self._read, window))

    def _read(self, window: _Window) -> None:
        assert self._read_back is not None
        with self._lock:
            landed = [self._contents[n] for n in window.numbers if self._state.get(n) in LANDED]
        if landed:
            self._turns.take(first=True)
        checks = verify_range(self._read_back, landed)
        with self._lock:
            self._checks.update(checks)


def _unsettled(state: State | None) -> int:
    return 1 if state is None or state in UNSETTLED else 0
