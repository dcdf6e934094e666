"""OData change detection by DataVersion: only changed documents are fetched, and the result equals a full
OData extract of the window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from onec.config import Settings
from onec.http.session import OneCSession
from onec.odata_changes import sync_odata_document_changes
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import SandboxConfig, SandboxEngine
from onec.sandbox.mutations import SandboxMutator
from onec.sandbox.transport import SandboxTransport
from onec.sources.odata import OdataSource, odata_root
from onec.sync import ExtractResult, extract_documents
from onec.warehouse import Warehouse
from tests.incremental.incremental_helpers import ZONE, new_warehouse

BASE = "http://sandbox.invalid/trade/hs/exchange"


@contextmanager
def odata(engine: SandboxEngine) -> Iterator[OdataSource]:
    settings = Settings(base_url=BASE, timezone=ZONE, rate_limit=1e6, page_size=50)
    with OneCSession(settings, transport=SandboxTransport(engine)) as session:
        yield OdataSource(session, root=odata_root(settings), page_size=50)


def test_only_changed_documents_are_fetched_and_the_window_ends_equal(
    data: SandboxData, mutator: SandboxMutator, tmp_path: Path
) -> None:
    engine = SandboxEngine(data, SandboxConfig())
    window = (data.start, data.start + timedelta(days=data.days))
    warehouse = new_warehouse(tmp_path / "changes")

    def run(run_id: str) -> ExtractResult:
        with odata(engine) as source:
            return sync_odata_document_changes(source, warehouse, doc_type="shipment", date_from=window[0],
                                               date_to=window[1], run_id=run_id, timezone=ZONE)  # fmt: skip

    first = run("first")
    assert first.records == len(data.documents_holdings("shipment", *window))
    changed = {mutator.edit_document("shipment").data["number"] for _ in range(3)}
    changed.add(mutator.mark_deleted("shipment").data["number"])
    changed.add(mutator.new_document("shipment").data["number"])
    second = run("second")
    assert second.records == len(changed) and second.http["requests"] < first.http["requests"]
    assert run("quiet").records == 0
    full = new_warehouse(tmp_path / "full")
    with odata(engine) as source:
        extract_documents(source, full, doc_type="shipment", date_from=window[0], date_to=window[1], run_id="full",
                          timezone=ZONE)  # fmt: skip
    for table, order in (("documents", "number"), ("document_lines", "number, line")):
        assert_frame_equal(_rows(warehouse, table, order), _rows(full, table, order))


def _rows(warehouse: Warehouse, table: str, order: str) -> pl.DataFrame:
    return warehouse.query(f"SELECT * FROM {table} WHERE doc_type = 'shipment' ORDER BY {order}")  # noqa: S608
