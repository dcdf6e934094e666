"""The exchange service's read side (§1.2) as iterators of raw record batches.

Records come out exactly as 1C sent them (numbers may be strings, strings padded): turning them into canonical
frames is normalization's job, and keeping the raw text lets rejected rows show what 1C really said.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Hashable, Iterator
from datetime import date, datetime, time
from typing import Any

import orjson

from onec.http import OneCProtocolError, OneCSession, RequestStats
from onec.http.limits import count
from onec.http.server_clock import ServerClock
from onec.paginate import OffsetPaginator, Page, Record
from onec.schema import document_type

DateLike = date | datetime | None


class OneCClient:
    """Goods and documents of one 1C base, paged concurrently through one shared session (the `json` source)."""

    name = "json"

    def __init__(self, session: OneCSession, *, page_size: int = 500, max_workers: int | None = None) -> None:
        self._session = session
        self._page_size = page_size
        self._max_workers = max_workers or session.settings.max_connections
        self._zone = zoneinfo.ZoneInfo(session.settings.timezone)

    @property
    def session(self) -> OneCSession:
        """The shared session, for callers that write (onec.push) under the same pace, cap and retries."""
        return self._session

    @property
    def page_size(self) -> int:
        """Rows asked for per page."""
        return self._page_size

    @property
    def stats(self) -> RequestStats:
        return self._session.stats

    @property
    def server_clock(self) -> ServerClock:
        """1C's clock as the `Date` headers of its answers tell it."""
        return self._session.server_clock

    def version(self) -> dict[str, Any]:
        answer = self._session.get_json("api/version")
        if not isinstance(answer, dict):
            raise OneCProtocolError("1C's /api/version did not answer with a JSON object")
        return answer

    def goods(self, modified_since: DateLike = None, modified_until: DateLike = None) -> Iterator[list[Record]]:
        params = self._dates(modified_since=modified_since, modified_until=modified_until)
        return self._paged("api/v1/goods", {"format": "json", **params}, _goods_key)

    def documents(
        self,
        doc_type: str,
        date_from: DateLike = None,
        date_to: DateLike = None,
        modified_since: DateLike = None,
        modified_until: DateLike = None,
    ) -> Iterator[list[Record]]:
        """`date_from` is inclusive, `date_to` and `modified_until` exclusive, as in the contract."""
        slug = document_type(doc_type).slug
        params = self._dates(
            date_from=date_from, date_to=date_to, modified_since=modified_since, modified_until=modified_until
        )
        return self._paged(f"api/v1/documents/{slug}", params, _document_key)

    def document_page(self, doc_type: str, date_from: DateLike, date_to: DateLike, *, offset: int, limit: int) -> Page:
        """One page of the documents dated in [date_from, date_to): for a caller that decides from the first
        page's `total` whether reading the rest of the range is worth it (onec/push/readback.py)."""
        path = f"api/v1/documents/{document_type(doc_type).slug}"
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        params.update(self._dates(date_from=date_from, date_to=date_to))
        page = _page(self._session.get_json(path, params), offset, path)
        count(self.stats, "pages")
        return page

    def _paged(self, path: str, params: dict[str, str], key: Callable[[Record], Hashable]) -> Iterator[list[Record]]:
        def fetch(offset: int, limit: int) -> Page:
            answer = self._session.get_json(path, {**params, "limit": limit, "offset": offset})
            return _page(answer, offset, path)

        paginator = OffsetPaginator(fetch, page_size=self._page_size, max_workers=self._max_workers, key=key)
        try:
            yield from paginator
        finally:
            count(self.stats, "pages", paginator.pages_fetched)
            count(self.stats, "passes", paginator.passes)

    def _dates(self, **values: DateLike) -> dict[str, str]:
        return {name: self._local_iso(value) for name, value in values.items() if value is not None}

    def _local_iso(self, value: date | datetime) -> str:
        """1C reads dates as local wall time without offset (§1): aware values go to its zone first."""
        if not isinstance(value, datetime):
            value = datetime.combine(value, time())
        elif value.tzinfo is not None:
            value = value.astimezone(self._zone).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S")


def _page(answer: Any, offset: int, path: str) -> Page:
    """Insist on the §1.2 shape: a page we cannot read must stop the run, not be taken as an empty result."""
    if not isinstance(answer, dict):
        raise OneCProtocolError(f"1C's {path} did not answer with a JSON object")
    data, pagination = answer.get("data"), answer.get("pagination")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise OneCProtocolError(f"1C's {path} answer has no 'data' list of records")
    if not isinstance(pagination, dict):
        raise OneCProtocolError(f"1C's {path} answer has no 'pagination' object")
    return Page(data, offset, _count(pagination, "limit", path), _count(pagination, "total", path))


def _count(pagination: dict[str, Any], name: str, path: str) -> int:
    value = pagination.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise OneCProtocolError(f"1C's {path} answer has pagination.{name}={value!r}, not a count")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _fallback_key(record: Record) -> Hashable:
    """A record without its key fields is still a row (validation rejects it with the reason), so it is keyed
    by its content: identical repeats collapse, different ones stay apart."""
    return ("", orjson.dumps(record, option=orjson.OPT_SORT_KEYS))


def _goods_key(record: Record) -> Hashable:
    sku, warehouse = _text(record.get("sku")), _text(record.get("warehouse"))
    return (sku, warehouse) if sku and warehouse else _fallback_key(record)


def _document_key(record: Record) -> Hashable:
    number = _text(record.get("number"))
    return number or _fallback_key(record)
