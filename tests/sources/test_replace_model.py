"""A model of 1C against random sequences of exchange-file loads and range syncs: whatever files arrive (current,
stale, mistyped years, all rejected), every document 1C holds on a day a complete source (a sync of that day)
covered since the document last changed is in the warehouse, as 1C holds it; and a file never removes one."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from onec.exchange_files import FileSource, load_files
from onec.sync import extract_documents
from onec.warehouse import ShrinkGuard, ShrinkRefused, Warehouse
from tests.sources.file_helpers import SHIPMENT_HEADER, ZONE, shipment_record, shipment_row

FIRST_DAY = date(2026, 1, 1)
DAYS = 8
MISTYPED_DAYS = ("0002-06-01", "1999-12-31", "2031-01-01", "2206-01-10")
Version = tuple[date, int, datetime]
"""A shipment as 1C holds it: its day, the quantity of its one line, its modified_at."""

days = st.integers(0, DAYS - 1).map(lambda n: FIRST_DAY + timedelta(days=n))


class FilesAndSyncs(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="replace-model-"))
        guard = ShrinkGuard(min_rows=4)  # small partitions, so the guard is met often
        self.warehouse = Warehouse(self.directory / "data", ZONE, shrink_guard=guard)
        self.warehouse.initialize()
        self.forced = Warehouse(self.directory / "data", ZONE, shrink_guard=ShrinkGuard(force=True))
        self.onec: dict[str, Version] = {}
        self.old_versions: dict[str, list[Version]] = {}
        self.changed_at: dict[str, int] = {}
        self.synced_at: dict[date, int] = {}
        self.step = 0
        self.files = 0

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _tick(self) -> datetime:
        self.step += 1
        return datetime(2026, 2, 1, 10) + timedelta(seconds=self.step)

    def _held(self) -> dict[str, tuple[date, int]]:
        rows = self.warehouse.query(
            "SELECT d.number, d.doc_date, l.quantity FROM documents d JOIN document_lines l USING (doc_type, number)"
            " WHERE d.doc_type = 'shipment'"
        ).rows()
        assert len(rows) == len({number for number, *_ in rows}), "a shipment is held twice"
        return {number: (day, int(quantity)) for number, day, quantity in rows}

    # --- 1C changes

    @rule(day=days, quantity=st.integers(1, 9))
    def create_in_1c(self, day: date, quantity: int) -> None:
        modified = self._tick()
        number = f"S-{len(self.onec) + 1:03d}"
        self.onec[number] = (day, quantity, modified)
        self.changed_at[number] = self.step

    @precondition(lambda self: self.onec)
    @rule(pick=st.integers(0, 10**6), day=days, quantity=st.integers(1, 9))
    def edit_in_1c(self, pick: int, day: date, quantity: int) -> None:
        number = sorted(self.onec)[pick % len(self.onec)]
        self.old_versions.setdefault(number, []).append(self.onec[number])
        self.onec[number] = (day, quantity, self._tick())
        self.changed_at[number] = self.step

    # --- complete sources

    @rule(first=days, length=st.integers(1, 4), force=st.booleans())
    def sync_range(self, first: date, length: int, force: bool) -> None:
        end = min(first + timedelta(days=length), FIRST_DAY + timedelta(days=DAYS))
        records = [
            shipment_record(n, d.isoformat(), m.isoformat(), q)
            for n, (d, q, m) in self.onec.items()
            if first <= d < end
        ]
        source = FileSource("json", lambda: iter([]), lambda _type: iter([records]))
        before = self._held()
        try:
            extract_documents(source, self.forced if force else self.warehouse, doc_type="shipment",
                              date_from=first, date_to=end, run_id=f"sync-{self.step}", timezone=ZONE)  # fmt: skip
        except ShrinkRefused:
            assert not force
            assert self._held() == before, "a refused replace changed the warehouse"
            return
        self._tick()
        for offset in range((end - first).days):
            self.synced_at[first + timedelta(days=offset)] = self.step

    # --- files someone dropped

    @rule(
        picks=st.lists(st.integers(0, 10**6), max_size=4),
        stale=st.lists(st.integers(0, 10**6), max_size=2),
        mistyped=st.lists(st.sampled_from(MISTYPED_DAYS), max_size=2),
        rejected=st.integers(0, 2),
    )
    def load_a_file(self, picks: list[int], stale: list[int], mistyped: list[str], rejected: int) -> None:
        rows: list[str] = []
        numbers = sorted(self.onec)
        for pick in picks if numbers else []:
            number = numbers[pick % len(numbers)]
            day, quantity, modified = self.onec[number]
            rows.append(shipment_row(number, day.isoformat(), modified.isoformat(), str(quantity)))
        edited = sorted(self.old_versions)
        for pick in stale if edited else []:
            number = edited[pick % len(edited)]
            day, quantity, modified = self.old_versions[number][pick % len(self.old_versions[number])]
            rows.append(shipment_row(number, day.isoformat(), modified.isoformat(), str(quantity)))
        self.files += 1
        for n, day_text in enumerate(mistyped):
            rows.append(shipment_row(f"X-{self.files}-{n}", day_text, self._tick().isoformat(), "1"))
        for n in range(rejected):
            rows.append(shipment_row(f"R-{self.files}-{n}", FIRST_DAY.isoformat(), self._tick().isoformat(), "много"))
        path = self.directory / f"shipment-{self.files}.csv"
        path.write_text("\n".join([SHIPMENT_HEADER, *rows]) + "\n", encoding="utf-8")
        before = self._held()
        load_files([path], self.warehouse, timezone=ZONE, run_id=f"file-{self.files}")
        assert set(before) <= set(self._held()), "a file removed a document"

    @invariant()
    def what_a_complete_source_covered_is_held_as_1c_holds_it(self) -> None:
        held = self._held()
        for number, (day, quantity, _) in self.onec.items():
            if self.synced_at.get(day, -1) > self.changed_at[number]:
                assert held.get(number) == (day, quantity), f"{number}: 1C holds {(day, quantity)}"


EXAMPLES = int(os.environ.get("REPLACE_MODEL_EXAMPLES", "15"))
"""Sequences tried; a soak sets it high (each is up to 12 steps)."""
FilesAndSyncs.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=12, deadline=None)
test_files_and_syncs = FilesAndSyncs.TestCase
