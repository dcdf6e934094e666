"""The import ledger: one row per document of an import, written before and after every request to 1C.

Why a ledger, and why before *and* after: a run can be killed at any moment and 1C may have applied a request
whose answer never arrived. A document is marked `sending` (durably) before its request goes out and gets its
outcome after the answer, so a restarted run knows exactly which documents are certainly not in 1C (`pending`:
send them), certainly there (`created`, `exists`: skip them) and in doubt (`sending`: look them up in 1C
before any resend). Nothing is sent twice and nothing is skipped.

Writes go through one warehouse writer connection that is kept open for a few seconds at a time (opening one
costs ~100 ms, a ledger write on an open one ~3 ms) and then released for a moment, so other writers (the
nightly extract) are delayed by seconds, not blocked for the whole import. Only the `sending` mark must be durable
before its request goes out; the outcome after an answer may ride along with the next write (`defer`): until it
is written the document stays `sending`, which a restarted run settles by reading it back. Losing a deferred
outcome costs a read, never a duplicate, and one commit per request instead of two keeps the ledger off the
import's critical path.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import duckdb
import polars as pl

from onec.warehouse import Warehouse

T = TypeVar("T")

HOLD_S = 5.0
"""How long the writer connection is kept between releases."""
YIELD_S = 0.06
"""How long it is released for, so a waiting writer (polling every 50 ms) gets its turn."""


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    CREATED = "created"
    EXISTS = "exists"
    CONFLICT = "conflict"
    REFUSED = "refused"
    INVALID = "invalid"
    OVERSIZE = "oversize"
    FAILED = "failed"


SETTLED = frozenset({State.CREATED, State.EXISTS, State.CONFLICT, State.REFUSED, State.INVALID, State.OVERSIZE})
"""States a later run leaves alone; `failed`, `pending` and `sending` are picked up again."""
LANDED = frozenset({State.CREATED, State.EXISTS})

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS import_ledger (
    import_id VARCHAR NOT NULL,
    doc_type VARCHAR NOT NULL,
    number VARCHAR NOT NULL,
    content_hash VARCHAR,
    state VARCHAR NOT NULL,
    onec_id VARCHAR,
    posted BOOLEAN NOT NULL DEFAULT false,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (import_id, doc_type, number)
)
"""


@dataclass(frozen=True)
class Entry:
    """One document's row in the ledger."""

    number: str
    content_hash: str | None
    state: State
    onec_id: str | None
    posted: bool
    attempts: int
    last_error: str | None


class LedgerWriteFailed(Exception):
    """Another thread's transaction that was to write these `sending` marks failed (its error is the cause)."""


@dataclass
class _Mark:
    """One thread's `sending` marks waiting for a group commit."""

    numbers: list[str]
    written: bool = False
    failure: BaseException | None = None


@dataclass(frozen=True)
class Change:
    """A new state for one document; None leaves a field as it is."""

    number: str
    state: State
    onec_id: str | None = None
    last_error: str | None = None
    posted: bool | None = None


class Ledger:
    """The ledger rows of one import (`import_id`, `doc_type`); thread-safe."""

    def __init__(
        self,
        warehouse: Warehouse,
        import_id: str,
        doc_type: str,
        *,
        on_change: Callable[[Sequence[Change]], None] = lambda _: None,
    ) -> None:
        """`on_change` hears every outcome as it is recorded (applied or deferred), from the recording thread."""
        self.import_id = import_id
        self.doc_type = doc_type
        self._warehouse = warehouse
        self._lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._opened_at = 0.0
        self._deferred: list[Change] = []
        self._deferred_lock = threading.Lock()
        self._on_change = on_change
        self._marks: list[_Mark] = []
        self._marks_lock = threading.Lock()

    def register(self, rows: Iterable[tuple[str, str | None, State, str | None]]) -> dict[str, Entry]:
        """Add (number, content hash, state, reason) rows not yet in the ledger; rows already there keep their
        state (this is how a restarted run resumes). Returns the ledger's row of each number given."""
        frame = pl.DataFrame(
            list(rows),
            schema={"number": pl.String, "content_hash": pl.String, "state": pl.String, "last_error": pl.String},
            orient="row",
        )

        def insert(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
            con.register("incoming", frame.to_arrow())
            inserted = con.execute(
                "INSERT INTO import_ledger (import_id, doc_type, number, content_hash, state, last_error, created_at,"
                " updated_at) SELECT ?, ?, number, content_hash, state, last_error, now(), now() FROM incoming"
                " ON CONFLICT DO NOTHING",
                [self.import_id, self.doc_type],
            ).fetchone()
            if inserted is not None and inserted[0] == frame.height:  # all new: the rows are what was given
                rows = [(number, digest, state, None, False, 0, why) for number, digest, state, why in frame.rows()]
            else:
                rows = con.execute(_SELECT_REGISTERED, [self.import_id, self.doc_type]).fetchall()
            con.unregister("incoming")
            return rows

        return _entries(self._write(insert))

    def entries(self) -> dict[str, Entry]:
        """Every row of the import (outcomes deferred so far are written first)."""
        rows = self._write(lambda con: con.execute(_SELECT_ENTRIES, [self.import_id, self.doc_type]).fetchall())
        return _entries(rows)

    def mark_sending(self, numbers: Sequence[str]) -> None:
        """Before a request: these documents may be in 1C from now on, until an answer says otherwise.

        Marks of several sending threads that wait for the writer at the same time go in one transaction (group
        commit): each returns once a commit holding its numbers is done, and none waits for more than one
        transaction ahead of its own, so the ledger cannot become the import's bottleneck."""
        ticket = _Mark(list(numbers))
        with self._marks_lock:
            self._marks.append(ticket)
        with self._lock:
            if not ticket.written:
                with self._marks_lock:
                    tickets, self._marks = self._marks, []
                try:
                    self._write_locked(lambda con: None, sending=[n for t in tickets for n in t.numbers])
                except BaseException as error:
                    for waiting in tickets:
                        waiting.failure = error
                    raise
                finally:
                    for waiting in tickets:
                        waiting.written = True
        if ticket.failure is not None:
            raise LedgerWriteFailed(f"marking documents as sending failed: {ticket.failure}") from ticket.failure

    def apply(self, changes: Sequence[Change]) -> None:
        """After an answer (or a read-back): the outcome of each document, in one transaction, now."""
        if changes:
            self._write(lambda con: self._update(con, changes, ()))
            self._on_change(changes)

    def defer(self, changes: Sequence[Change]) -> None:
        """Outcomes written with the ledger's next write (at the latest by `flush`, `entries` or `release`)."""
        with self._deferred_lock:
            self._deferred.extend(changes)
        self._on_change(changes)

    def flush(self) -> None:
        """Write the deferred outcomes now."""
        with self._deferred_lock:
            if not self._deferred:
                return
        self._write(lambda con: None)

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work` in one of the ledger's transactions, on its open writer connection (after the deferred
        outcomes): for what the import writes next to its ledger, such as its results."""
        return self._write(work)

    def release(self) -> None:
        """Write the deferred outcomes and close the writer connection (end of a phase, end of the run)."""
        self.flush()
        with self._lock:
            self._close()

    def _update(self, con: duckdb.DuckDBPyConnection, changes: Sequence[Change], sending: Sequence[str]) -> None:
        """Outcomes, then `sending` marks (attempts + 1, the rest as the outcome left it), in one statement."""
        rows = {c.number: (c.state.value, c.onec_id, c.last_error, c.posted, False, 0) for c in changes}
        for number in sending:
            earlier = rows.get(number)
            onec_id, last_error, posted = earlier[1:4] if earlier else (None, None, None)
            rows[number] = (State.SENDING.value, onec_id, last_error, posted, earlier is None, 1)
        columns = list(zip(*rows.values(), strict=True))
        con.execute(
            "UPDATE import_ledger AS l SET state = c.state, onec_id = coalesce(c.onec_id, l.onec_id),"
            " last_error = CASE WHEN c.keep_error THEN l.last_error ELSE c.last_error END,"
            " posted = coalesce(c.posted, l.posted), attempts = l.attempts + c.bump, updated_at = now()"
            " FROM (SELECT unnest(?::VARCHAR[]) AS number, unnest(?::VARCHAR[]) AS state,"
            " unnest(?::VARCHAR[]) AS onec_id, unnest(?::VARCHAR[]) AS last_error, unnest(?::BOOLEAN[]) AS posted,"
            " unnest(?::BOOLEAN[]) AS keep_error, unnest(?::INTEGER[]) AS bump) AS c"
            " WHERE l.import_id = ? AND l.doc_type = ? AND l.number = c.number",
            [list(rows), *(list(column) for column in columns), self.import_id, self.doc_type],
        )

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        with self._lock:
            return self._write_locked(work)

    def _write_locked(self, work: Callable[[duckdb.DuckDBPyConnection], T], sending: Sequence[str] = ()) -> T:
        """`work` in one transaction, after the deferred outcomes and then the `sending` marks (in that order: a
        document's outcome is always older than a later mark of it). The caller holds the writer lock."""
        con = self._open()
        with self._deferred_lock:
            deferred, self._deferred = self._deferred, []
        con.execute("BEGIN TRANSACTION")
        try:
            if deferred or sending:
                self._update(con, deferred, sending)
            result = work(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            with self._deferred_lock:
                self._deferred[:0] = deferred
            raise
        return result

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The open connection; after HOLD_S, closed and released for YIELD_S first (other writers' turn)."""
        now = time.monotonic()
        if self._connection is not None and now - self._opened_at > HOLD_S:
            self._close()
            time.sleep(YIELD_S)
        if self._connection is None:
            stack = contextlib.ExitStack()
            connection = stack.enter_context(self._warehouse.writer())
            connection.execute(LEDGER_DDL)
            self._stack, self._connection, self._opened_at = stack, connection, time.monotonic()
        return self._connection

    def _close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._connection = None, None


_SELECT_ENTRIES = (
    "SELECT number, content_hash, state, onec_id, posted, attempts, last_error FROM import_ledger"
    " WHERE import_id = ? AND doc_type = ?"
)
_SELECT_REGISTERED = (
    "SELECT number, content_hash, state, onec_id, posted, attempts, last_error FROM import_ledger"
    " WHERE import_id = ? AND doc_type = ? AND number IN (SELECT number FROM incoming)"
)


def _entries(rows: list[tuple[Any, ...]]) -> dict[str, Entry]:
    return {row[0]: Entry(row[0], row[1], State(row[2]), row[3], bool(row[4]), int(row[5]), row[6]) for row in rows}


def ledger_rows(warehouse: Warehouse, import_id: str) -> list[dict[str, Any]]:
    """The ledger of one import as dicts (tests, reports)."""
    frame = warehouse.query("SELECT * FROM import_ledger WHERE import_id = ? ORDER BY number", [import_id])
    return frame.to_dicts()
