"""1C's standard OData interface (§2), read side: `GET {prefix}/{EntitySet}?$format=json&…` over the sandbox base.

Why it behaves as it does:
- Paging is `$top`/`$skip` with no next link. Without `$orderby` the rows come in a different order on every
  request (a per-request shuffle), as a DBMS without ORDER BY is free to: a client that pages without `$orderby`
  loses and duplicates rows, and the tests catch it. With `$orderby` the order is total and stable.
- `$inlinecount=allpages` makes 1C ignore `$top`/`$skip` (it returns everything, with `odata.count`); counting is
  `/$count`.
- Only JSON is served: without `$format=json` (or `Accept: application/json`) the answer is 406. (Real 1C would
  answer Atom XML; a client of this project must ask for JSON, so refusing is the stricter and simpler check.)
- Errors have the v3 body `{"odata.error": {"code": "-1", "message": {"lang": "ru", "value": "…"}}}`.

Auth, rate limits and faults are the engine's, exactly as for the exchange service.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from onec.sandbox.odata_metadata import metadata_document
from onec.sandbox.odata_model import EntitySet, ODataModel, Row
from onec.sandbox.odata_query import Options, QueryError, compile_filter, order, parse_options, select
from onec.sandbox.odata_writes import ODataWriter
from onec.sandbox.protocol import HttpError, SandboxRequest, SandboxResponse
from onec.sandbox.render import local_text

ODATA_JSON = "application/json;odata=minimalmetadata;charset=utf-8"
_KEY = re.compile(r"^(?P<set>[^()/]+)\(guid'(?P<key>[0-9a-fA-F-]{36})'\)$")
_BALANCE = re.compile(r"^Balance\((?:Period=datetime'(?P<period>[^']+)')?\)$")


@dataclass(frozen=True)
class _Target:
    """What a path addresses: a set (maybe one element of it), and whether only its count is wanted."""

    name: str
    rows: Callable[[], list[Row]]
    key: str | None = None
    count: bool = False


class ODataService:
    """Answers OData requests below `prefix`; `rows_cache` keeps built entity sets per data revision."""

    def __init__(self, model: ODataModel, prefix: str, writer: ODataWriter | None = None) -> None:
        self.model = model
        self.prefix = prefix.rstrip("/")
        self.writer = writer
        self._sets = model.entity_sets()
        self._cache: dict[tuple[int, str], list[Row]] = {}

    def handles(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def write(self, request: SandboxRequest) -> SandboxResponse:
        """One POST/PATCH (see `odata_writes`); the caller holds the engine's lock."""
        rest = request.path[len(self.prefix) :].strip("/")
        if self.writer is None or request.method not in ("POST", "PATCH"):
            raise HttpError(
                405, "-1", f"Метод {request.method} не поддерживается", headers={"allow": "GET, POST, PATCH"}
            )
        return self.writer.write(request, rest, self._root(request))

    def answer(self, request: SandboxRequest, shuffle: random.Random) -> SandboxResponse:
        """One GET; the caller holds the engine's lock (rows are built from the live data)."""
        rest = request.path[len(self.prefix) :].strip("/")
        try:
            options = parse_options(request.raw_query)
            if not rest:
                return self._service_document(request, options)
            if rest == "$metadata":
                return self._metadata()
            target = self._target(rest)
            _require_json(request, options, target.count)
            return self._query(request, target, options, shuffle)
        except QueryError as error:
            raise HttpError(400, "-1", str(error)) from None

    # --- addressing

    def _target(self, rest: str) -> _Target:
        parts = rest.split("/")
        count = parts[-1] == "$count"
        if count:
            parts = parts[:-1]
        if len(parts) == 1:
            match = _KEY.match(parts[0])
            name, key = (match["set"], match["key"].lower()) if match else (parts[0], None)
            entity_set = self._sets.get(name)
            if entity_set is None or (key is not None and not entity_set.keyed):
                raise _not_found(name)
            return _Target(name, self._cached(entity_set), key, count)
        prices, stock = self.model.price_register, self.model.stock_register
        if prices is not None and parts == [prices, "SliceLast()"]:
            return _Target(f"{prices}_RecordType/SliceLast", self.model.prices, count=count)
        balance = _BALANCE.match(parts[1]) if len(parts) == 2 and parts[0] == stock else None
        if balance is not None:
            period = _period(balance["period"])
            return _Target(f"{stock}_Balance", lambda: self.model.balance(period), count=count)
        raise _not_found(rest)

    def _cached(self, entity_set: EntitySet) -> Callable[[], list[Row]]:
        def rows() -> list[Row]:
            key = (self.model.data.revision, entity_set.name)
            hit = self._cache.get(key)
            if hit is None:
                if len(self._cache) > 64:
                    self._cache.clear()
                hit = self._cache[key] = entity_set.rows()
            return hit

        return rows

    # --- querying

    def _query(
        self, request: SandboxRequest, target: _Target, options: Options, shuffle: random.Random
    ) -> SandboxResponse:
        rows = target.rows()
        # A tabular section (a list) can be selected, never compared or sorted by. An empty set has no row to
        # learn its fields from: any name passes (nothing is returned anyway).
        fields: Container[str] = set(rows[0]) if rows else _ANY_FIELD
        scalars: Container[str] = {n for n, v in rows[0].items() if not isinstance(v, list)} if rows else _ANY_FIELD
        if target.key is not None:
            rows = [row for row in rows if row["Ref_Key"] == target.key]
            if not rows:
                raise _not_found(f"{target.name}(guid'{target.key}')")
        if options.filter is not None:
            predicate = compile_filter(options.filter, scalars)
            rows = [row for row in rows if predicate(row)]
        if target.count:
            return SandboxResponse(200, {"content-type": "text/plain; charset=utf-8"}, str(len(rows)).encode())
        if options.orderby:
            rows = order(rows, options.orderby, scalars)
        elif len(rows) > 1:
            rows = list(rows)
            shuffle.shuffle(rows)
        total = len(rows)
        if not options.inlinecount:
            rows = rows[options.skip :][: options.top] if options.top is not None else rows[options.skip :]
        if options.select:
            rows = select(rows, options.select, fields)
        metadata = f"{self._root(request)}/$metadata#{target.name}"
        if target.key is not None:
            return _json({"odata.metadata": f"{metadata}/@Element", **rows[0]})
        body: dict[str, Any] = {"odata.metadata": metadata}
        if options.inlinecount:
            body["odata.count"] = str(total)
        body["value"] = rows
        return _json(body)

    def _service_document(self, request: SandboxRequest, options: Options) -> SandboxResponse:
        _require_json(request, options, count=False)
        prices = self.model.price_register
        names = [*self._sets, *([f"{prices}/SliceLast()"] if prices else []), f"{self.model.stock_register}/Balance()"]
        return _json(
            {"odata.metadata": f"{self._root(request)}/$metadata", "value": [{"name": n, "url": n} for n in names]}
        )

    def _metadata(self) -> SandboxResponse:
        samples: dict[str, Row | None] = {}
        for name, entity_set in self._sets.items():
            rows = self._cached(entity_set)()
            samples[name] = rows[0] if rows else None
        if self.model.price_register is not None:
            prices = self.model.prices()
            samples[f"{self.model.price_register}_RecordType"] = prices[0] if prices else None
        balance = self.model.balance(None)
        samples[f"{self.model.stock_register}_Balance"] = balance[0] if balance else None
        return SandboxResponse(200, {"content-type": "application/xml;charset=utf-8"}, metadata_document(samples))

    def _root(self, request: SandboxRequest) -> str:
        return f"http://{request.header('host') or 'localhost'}{self.prefix}"


class _AnyField:
    def __contains__(self, name: object) -> bool:
        return True


_ANY_FIELD = _AnyField()


def odata_error(error: HttpError) -> SandboxResponse:
    """An error in OData v3's shape (auth challenges and Retry-After kept)."""
    body = {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": error.message}}}
    return SandboxResponse(error.status, {"content-type": ODATA_JSON, **error.headers}, orjson.dumps(body))


def _require_json(request: SandboxRequest, options: Options, count: bool) -> None:
    if count or options.format == "json" or "application/json" in (request.header("accept") or ""):
        return
    raise HttpError(406, "-1", "Поддерживается только формат JSON: укажите $format=json")


def _json(body: dict[str, Any]) -> SandboxResponse:
    return SandboxResponse(200, {"content-type": ODATA_JSON}, orjson.dumps(body, default=_default))


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return local_text(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _period(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"Неверное значение параметра Period: {text}") from None


def _not_found(name: str) -> HttpError:
    return HttpError(404, "-1", f"Не найден объект «{name}»")
