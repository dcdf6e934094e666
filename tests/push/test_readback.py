"""Resolving documents in doubt by date windows (`ReadBack.resolve`) says exactly what reading each one by number
says, whatever else 1C holds in those dates, and never costs more than a request per document plus a page per
window; when the windows are not crowded by other documents it costs a page per window."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onec.push.chunking import batch_body
from onec.push.content import OutgoingDocument
from onec.push.plan import plan_import
from onec.push.readback import ReadBack
from onec.push.readers import read_records
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from tests.push.push_helpers import document_lines, fresh_data, sandbox_client, write_csv

TYPE = "goods-receipt"
PAGE = 4
ABSENT, OURS, THEIRS = "absent", "ours", "theirs"


def _outgoing(tmp_path: Path, name: str, rows: list[dict[str, str]]) -> list[OutgoingDocument]:
    if not rows:
        return []
    records = read_records(write_csv(tmp_path / f"{name}.csv", rows), TYPE)
    return list(plan_import(records, TYPE, timezone="Europe/Moscow", run_id="t").outgoing)


def _dated(rows: list[dict[str, str]], spread: int) -> list[dict[str, str]]:
    """Document n dated on day 1 + n % spread at 08:(n % 16):(n // 16): the import's (n < 16) at whole minutes,
    the others seconds after them, inside their windows' ranges (a small spread crowds those ranges more)."""
    return [{**row, "Date": f"2026-02-{1 + _n(row) % spread:02d}T08:{_n(row) % 16:02d}:{_n(row) // 16:02d}"}
            for row in rows]  # fmt: skip


def _n(row: dict[str, str]) -> int:
    return int(row["Number"][-6:])


def _held_by_1c(client: Any, documents: list[OutgoingDocument]) -> None:
    if documents:
        answer = client.session.post_json(
            f"api/v1/documents/{TYPE}/batch", orjson.Fragment(batch_body("documents", documents))
        )
        assert all(result["status"] == "created" for result in answer["results"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(states=[OURS, ABSENT, THEIRS, OURS] * 2, others=30, spread=1)  # crowded windows: read by number
@example(states=[OURS, ABSENT, THEIRS] * 4, others=0, spread=27)  # a page per window
@given(
    states=st.lists(st.sampled_from([ABSENT, OURS, THEIRS]), min_size=1, max_size=16),
    others=st.integers(min_value=0, max_value=30),
    spread=st.integers(min_value=1, max_value=27),
)
def test_resolving_by_windows_agrees_with_reading_each_by_number(
    tmp_path_factory: Any, states: list[str], others: int, spread: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("resolve")
    rows = _dated(document_lines(len(states)), spread)
    ours = _outgoing(tmp_path, "ours", rows)
    changed = [{**row, "Quantity": "999", "Total": str(999 * float(row["UnitPrice"]))} for row in rows]
    theirs = {d.number: d for d in _outgoing(tmp_path, "theirs", changed)}
    other_rows = _dated(document_lines(others, first=len(states)), spread)  # the same dates as ours
    foreign = _outgoing(tmp_path, "others", [{**row, "Number": f"OTHER-{row['Number']}"} for row in other_rows])
    engine = SandboxEngine(fresh_data(), SandboxConfig())
    with sandbox_client(engine, page_size=PAGE) as client:
        held = [d for d, state in zip(ours, states, strict=True) if state == OURS]
        held += [theirs[d.number] for d, state in zip(ours, states, strict=True) if state == THEIRS]
        _held_by_1c(client, held + foreign)
        read_back = ReadBack(client, TYPE, "Europe/Moscow")
        before = engine.stats.snapshot()["requests"]
        resolved = read_back.resolve([d.content for d in ours], workers=3)
        cost = engine.stats.snapshot()["requests"] - before
        one_by_one = {d.number: read_back.by_number(d.number) for d in ours}
    assert resolved.keys() == one_by_one.keys()
    for number, copy in one_by_one.items():
        found = resolved[number]
        assert (found is None) == (copy is None), number
        if found is not None and copy is not None:
            assert (found.onec_id, found.posted, found.content) == (copy.onec_id, copy.posted, copy.content)
    for document, state in zip(ours, states, strict=True):
        copy = resolved[document.number]
        assert (copy is not None) == (state != ABSENT)
        if copy is not None and copy.content is not None:
            assert (copy.content.content_hash == document.content.content_hash) == (state == OURS)
    windows = math.ceil(len(ours) / PAGE)
    assert cost <= windows + len(ours), "never more than a page per window on top of a read per document"
    if others == 0 and len({d.content.date for d in ours}) == len(ours):
        assert cost == windows, "a page per window when nothing else shares their dates"
