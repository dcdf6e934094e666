"""Change detection over 1C's standard OData interface, which has no modification time: by `DataVersion` (§2).

For one document type and a date window: list every document's (Ref_Key, DataVersion) in the window, two fields
a document, compare with the versions landed last time (`source_versions`), fetch only the documents whose version
is new or different, and merge them by key. The versions are saved in the same transaction as the rows, so a
failed run re-fetches what it did not land. Windows are how OData is read (no next link, `$top/$skip` within an
ordered, filtered set); a document moved into the window is new to it and fetched, one moved out is found by the
window it moved into.

Not covered: a document deleted outright in 1C (not just marked) disappears from the listing and stays in the
warehouse until a full refresh of its days; goods have no per-position DataVersion (the balance is a register
total), so goods stay with the full snapshot.
"""

from __future__ import annotations

from datetime import date

from onec.sources.odata import OdataSource
from onec.sources.typing import Batch
from onec.sync import ALL_DATES, ExtractResult, ProgressCallback, land_pages
from onec.validation import CheckedBatch, check_documents
from onec.warehouse import Warehouse


def sync_odata_document_changes(
    source: OdataSource,
    warehouse: Warehouse,
    *,
    doc_type: str,
    date_from: date,
    date_to: date,
    run_id: str,
    timezone: str,
    on_records: ProgressCallback | None = None,
) -> ExtractResult:
    """Land the documents of one type in [date_from, date_to) whose DataVersion changed since the last landing."""
    if date_to <= date_from:
        raise ValueError(f"empty date range: {date_from} .. {date_to} (the end is exclusive)")
    known = warehouse.source_versions(source.name, doc_type)
    current = source.document_versions(doc_type, date_from, date_to)
    changed = {ref: version for ref, version in current.items() if known.get(ref) != version}

    def check(records: Batch) -> CheckedBatch:
        # any date: a document re-dated between the listing and the fetch is still merged by key
        return check_documents(records, doc_type=doc_type, date_from=ALL_DATES[0], date_to=ALL_DATES[1],
                               timezone=timezone, run_id=run_id, source=source.name)  # fmt: skip

    landing = warehouse.document_changes(doc_type, run_id=run_id, source=source.name)
    pages = source.documents_by_ref(doc_type, changed)
    return land_pages(source, landing, pages, check, run_id=run_id, entity="documents", doc_type=doc_type,
                      span=(date_from, date_to), on_records=on_records, versions=changed)  # fmt: skip
