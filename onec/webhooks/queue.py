"""The durable queue of accepted webhook events: a SQLite file next to the warehouse.

Why not a table in the DuckDB warehouse: DuckDB allows one writer process at a time and a landing holds that lock
for its whole commit (seconds to minutes), while 1C expects a webhook answered within its timeout. SQLite lets the
receiver and the Dagster sensor (other processes) write concurrently (WAL, short transactions), syncs each
accepted event to disk before the receiver answers 2xx (`synchronous=FULL`), and its primary key on the event id
is the replay check, across restarts.

An event goes pending → claimed (by one batch, one Dagster run) → done once that run succeeded; a batch whose run
failed or never started goes back to pending.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from onec.config import base_directory

QUEUE_FILE = "webhooks.sqlite3"
"""In a base's folder (`queue_path`): each base has its own receiver and queue."""
PENDING, CLAIMED, DONE = "pending", "claimed", "done"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_events (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    data TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    batch TEXT,
    claimed_at TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS webhook_events_status ON webhook_events (status, batch);
"""


def queue_path(data_dir: Path, base_id: str) -> Path:
    """The queue of base `base_id`'s receiver, in the base's folder: `main`'s stays `data/webhooks.sqlite3`, base
    `<id>`'s is `data/bases/<id>/webhooks.sqlite3`. A queue holds one base's events, so the run it becomes is that
    base's, and two bases' 1C can never mix their events."""
    return base_directory(data_dir, base_id) / QUEUE_FILE


@dataclass(frozen=True)
class QueuedEvent:
    id: str
    event: str
    occurred_at: datetime
    data: dict[str, Any]


class EventQueue:
    """Thread- and process-safe: every call opens its own short connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con:
            con.executescript(_SCHEMA)

    def record(self, event_id: str, event: str, occurred_at: datetime, data: dict[str, Any], body: bytes) -> bool:
        """Store an accepted event durably; False if its id was seen before (a replay or 1C's re-delivery)."""
        with self._connection() as con:
            cursor = con.execute(
                "INSERT OR IGNORE INTO webhook_events (id, event, occurred_at, received_at, data, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, event, occurred_at.isoformat(), _now(), orjson.dumps(data).decode(), body),
            )
            return cursor.rowcount == 1

    def pending(self, limit: int = 10_000) -> list[QueuedEvent]:
        with self._connection() as con:
            rows = con.execute(
                "SELECT id, event, occurred_at, data FROM webhook_events WHERE status = ? ORDER BY received_at LIMIT ?",
                (PENDING, limit),
            ).fetchall()
        return [QueuedEvent(r[0], r[1], datetime.fromisoformat(r[2]), orjson.loads(r[3])) for r in rows]

    def claim(self, batch: str, event_ids: Sequence[str]) -> int:
        """Put pending events into one batch (one run); returns how many it took."""
        with self._connection() as con:
            taken = 0
            for event_id in event_ids:
                taken += con.execute(
                    "UPDATE webhook_events SET status = ?, batch = ?, claimed_at = ? WHERE id = ? AND status = ?",
                    (CLAIMED, batch, _now(), event_id, PENDING),
                ).rowcount
            return taken

    def batches_in_flight(self) -> dict[str, datetime]:
        """Claimed batches and when they were claimed."""
        with self._connection() as con:
            rows = con.execute(
                "SELECT batch, min(claimed_at) FROM webhook_events WHERE status = ? GROUP BY batch", (CLAIMED,)
            ).fetchall()
        return {batch: datetime.fromisoformat(claimed) for batch, claimed in rows}

    def finish(self, batch: str) -> int:
        """The batch's run succeeded: its events are done."""
        with self._connection() as con:
            return con.execute(
                "UPDATE webhook_events SET status = ?, done_at = ? WHERE batch = ? AND status = ?",
                (DONE, _now(), batch, CLAIMED),
            ).rowcount

    def release(self, batch: str) -> int:
        """The batch's run failed or never started: its events wait for the next run."""
        with self._connection() as con:
            return con.execute(
                "UPDATE webhook_events SET status = ?, batch = NULL, claimed_at = NULL WHERE batch = ? AND status = ?",
                (PENDING, batch, CLAIMED),
            ).rowcount

    def counts(self) -> dict[str, int]:
        with self._connection() as con:
            rows = con.execute("SELECT status, count(*) FROM webhook_events GROUP BY status").fetchall()
        return {PENDING: 0, CLAIMED: 0, DONE: 0, **dict(rows)}

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        return con

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (taken at once, so concurrent writers queue instead of deadlocking)."""
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


def _now() -> str:
    return datetime.now(UTC).isoformat()
