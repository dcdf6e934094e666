"""What 1C holds for the documents of an import: those of a write in doubt or of an `exists` answer, resolved by
their date windows (`resolve`), all of a date range at once (the verification, onec/push/verify.py), or one by
number or id.

Why by date windows: after a killed run every batch that was under way is in doubt (hundreds of documents), and
a request per document made the run that finishes an interrupted import cost more than ten clean ones (1,657
requests against 131, issue 14). One page of a window answers for up to a page of documents. The rule "never
resend what 1C may have" holds either way: a document counts as absent only when a complete read of a range
holding its date did not return it (or 1C's answer by number said so).

Why through validation: 1C answers in every spelling §1.9 allows; reading its copy with the same rules and the
same content hash as the file makes "same content" a comparison of canonical values, not of spellings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from onec.client import OneCClient
from onec.http import OneCProtocolError
from onec.push.content import DocumentContent, document_contents
from onec.push.plan import EARLIEST, LATEST
from onec.validation import check_documents


@dataclass(frozen=True)
class OneCCopy:
    """1C's copy of a document: its id, whether it is posted, and its content (None when the copy does not
    validate; `problem` then says why)."""

    number: str
    onec_id: str | None
    posted: bool
    content: DocumentContent | None
    problem: str | None = None


class ReadBack:
    """Reads documents of one type back from 1C through the client's session (its pace, cap and retries)."""

    def __init__(self, client: OneCClient, doc_type: str, timezone: str) -> None:
        self._client = client
        self._doc_type = doc_type
        self._timezone = timezone

    def by_number(self, number: str) -> OneCCopy | None:
        """`GET documents/{type}?number=…`: the copy, or None when 1C has no document with that number."""
        answer = self._client.session.get_json(
            f"api/v1/documents/{self._doc_type}", {"number": number, "limit": 10, "offset": 0}
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise OneCProtocolError(f"1C's read by number {number!r} did not answer with a 'data' list")
        copies = self._copies(data)
        if len(data) > 1:
            raise OneCProtocolError(f"1C holds {len(data)} {self._doc_type} documents numbered {number!r}")
        return copies.get(number)

    def by_id(self, onec_id: str, number: str) -> OneCCopy | None:
        """`GET documents/{type}/{id}`: the copy 1C pointed to in an `exists` answer."""
        answer = self._client.session.get_json(f"api/v1/documents/{self._doc_type}/{onec_id}")
        return self._copies([answer]).get(number) if isinstance(answer, dict) else None

    def resolve(self, contents: Sequence[DocumentContent], *, workers: int) -> dict[str, OneCCopy | None]:
        """What 1C holds of each document (None: it holds no document of that number), read window by window:
        the documents in date order, a page size of them at a time, each window one paged read of its date range
        (`workers` windows at once). A window whose range holds so many other documents that its pages would
        outnumber its own documents (1C's first page says how many) is read by number instead, as is a document
        without a date; so resolving never costs more than a read per document and one page per window."""
        dated = [c for _, c in sorted(((c.date, c) for c in contents if c.date is not None), key=lambda p: p[0])]
        size = max(1, self._client.page_size)
        windows = [dated[start : start + size] for start in range(0, len(dated), size)]
        by_number = [c.number for c in contents if c.date is None]
        copies: dict[str, OneCCopy | None] = {}
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="read-back") as pool:
            for window, found in zip(windows, pool.map(self._window, windows), strict=True):
                if found is None:
                    by_number += [c.number for c in window]
                else:
                    copies.update((c.number, found.get(c.number)) for c in window)
            copies.update(zip(by_number, pool.map(self.by_number, by_number), strict=True))
        return copies

    def _window(self, window: Sequence[DocumentContent]) -> dict[str, OneCCopy] | None:
        """The copies of a window's documents from the pages of its date range; None when those pages would be
        more requests than reading its documents by number."""
        start, end = _date_range(window)
        first = self._client.document_page(self._doc_type, start, end, offset=0, limit=self._client.page_size)
        if first.total <= len(first.records):
            return self._mine(first.records, {c.number for c in window})
        pages = math.ceil(first.total / max(1, first.limit, len(first.records)))
        return self.in_range(window) if pages <= len(window) else None

    def in_range(self, contents: Sequence[DocumentContent]) -> dict[str, OneCCopy]:
        """Every copy of the given numbers, from one paged read of the documents dated from the earliest of
        them to the latest (1C keeps dates to the second: the range ends a second after the latest)."""
        wanted = {c.number for c in contents}
        if not any(c.date is not None for c in contents):
            return {}
        start, end = _date_range(contents)
        found: dict[str, OneCCopy] = {}
        for page in self._client.documents(self._doc_type, start, end):
            found.update(self._mine(page, wanted))
        return found

    def _mine(self, records: Iterable[Any], wanted: set[str]) -> dict[str, OneCCopy]:
        """The copies among `records` whose numbers are `wanted` (a range holds other documents too)."""
        return self._copies(r for r in records if isinstance(r, dict) and str(r.get("number") or "").strip() in wanted)

    def _copies(self, records: Iterable[Any]) -> dict[str, OneCCopy]:
        records = list(records)
        if not records:
            return {}
        checked = check_documents(
            records,
            doc_type=self._doc_type,
            date_from=EARLIEST,
            date_to=LATEST,
            timezone=self._timezone,
            run_id="read-back",
            source="read-back",
        )
        assert checked.documents is not None and checked.lines is not None
        contents = document_contents(checked.documents, checked.lines)
        copies = {
            number: OneCCopy(number, onec_id, bool(posted), contents.get(number))
            for number, onec_id, posted in checked.documents.select("number", "id", "posted").iter_rows()
        }
        for key, reason in checked.rejected.select("record_key", "reason").iter_rows():
            if key is not None:
                copies[key] = OneCCopy(key, _id_of(records, key), False, None, f"1C's copy does not validate: {reason}")
        return copies


def _id_of(records: list[Any], number: str) -> str | None:
    for record in records:
        if isinstance(record, dict) and str(record.get("number") or "").strip() == number:
            value = record.get("id")
            return str(value) if value is not None else None
    return None


def _date_range(contents: Sequence[DocumentContent]) -> tuple[datetime, datetime]:
    """[earliest, latest + 1 s) of the dated documents (1C keeps dates to the second)."""
    dates = [moment for c in contents if (moment := to_the_second(c.date)) is not None]
    return min(dates), max(dates) + timedelta(seconds=1)


def to_the_second(moment: datetime | None) -> datetime | None:
    """1C keeps a document's date to the second."""
    return moment.replace(microsecond=0) if moment is not None else None
