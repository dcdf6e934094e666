"""What 1C holds for the documents of an import: one by number (to settle a write in doubt, or compare an
`exists`), or all of a date range at once (the verification, onec/push/verify.py).

Why through validation: 1C answers in every spelling §1.9 allows; reading its copy with the same rules and the
same content hash as the file makes "same content" a comparison of canonical values, not of spellings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    def in_range(self, contents: Sequence[DocumentContent]) -> dict[str, OneCCopy]:
        """Every copy of the given numbers, from one paged read of the documents dated from the earliest of
        them to the latest (1C keeps dates to the second: the range ends a second after the latest)."""
        wanted = {c.number for c in contents}
        dates = [moment for c in contents if (moment := to_the_second(c.date)) is not None]
        if not dates:
            return {}
        found: dict[str, OneCCopy] = {}
        for page in self._client.documents(self._doc_type, min(dates), max(dates) + timedelta(seconds=1)):
            mine = [r for r in page if isinstance(r, dict) and str(r.get("number") or "").strip() in wanted]
            found.update(self._copies(mine))
        return found

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


def to_the_second(moment: datetime | None) -> datetime | None:
    """1C keeps a document's date to the second."""
    return moment.replace(microsecond=0) if moment is not None else None
