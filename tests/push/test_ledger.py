"""The import ledger's deferred outcomes: written with the next write, never lost by a failed one."""

from __future__ import annotations

import duckdb
import pytest

from onec.push.ledger import Change, Ledger, State
from onec.warehouse import Warehouse


def test_deferred_outcomes_ride_with_the_next_write_and_survive_a_failed_one(warehouse: Warehouse) -> None:
    ledger = Ledger(warehouse, "imp", "goods-receipt")
    ledger.register([(n, "h", State.PENDING, None) for n in ("A", "B", "C")])
    ledger.mark_sending(["A", "B"])
    ledger.defer([Change("A", State.CREATED, onec_id="id-a")])
    assert _states(ledger)["A"] == "sending", "a deferred outcome is not written on its own"

    with pytest.raises(duckdb.Error):
        ledger._write(lambda con: con.execute("SELECT * FROM no_such_table"))
    assert _states(ledger)["A"] == "sending"

    ledger.mark_sending(["C"])  # the next write carries the deferred outcome, before its own change
    assert _states(ledger) == {"A": "created", "B": "sending", "C": "sending"}
    ledger.defer([Change("B", State.PENDING, last_error="413"), Change("B", State.CONFLICT, last_error="differs")])
    ledger.release()
    rows = {e.number: e for e in Ledger(warehouse, "imp", "goods-receipt").entries().values()}
    assert rows["A"].onec_id == "id-a" and rows["B"].state is State.CONFLICT and rows["B"].last_error == "differs"


def _states(ledger: Ledger) -> dict[str, str]:
    """What is committed, read on the ledger's own writer connection (another would wait for its lock)."""
    assert ledger._connection is not None
    return dict(ledger._connection.execute("SELECT number, state FROM import_ledger").fetchall())
