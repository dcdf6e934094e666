"""The standard OData v3 interface of 1C 8.3 (contract §2) as a source of contract-shaped records.

Why this is more than a generic OData client: 1C pages with `$top/$skip` and no next link, so every listing is
ordered (`Ref_Key`, or `Date,Ref_Key` for documents) and counted with `/$count` (`$inlinecount` makes 1C ignore
the paging); it reads `+` in `$filter` as a plus, so query strings are encoded here with `%20`; and it answers
with `_Key` GUIDs, so the small reference catalogs are loaded once and joined to names. What comes out is shaped
like the exchange service's JSON (§1.3), so validation and landing are the ones every source shares.

OData carries no `modified_at`: it stays null; each record keeps 1C's `DataVersion` under `_data_version` for
change detection (validation ignores keys it does not know). A reference 1C did not publish (or a broken one)
leaves its field null and is named under `_unresolved`, so validation rejects the record with the raw showing why.

Lines land in the item's base unit: a line written in a pack or another unit (`line_unit` of the model) keeps that
unit's name and coefficient in `line_unit`/`unit_coefficient`, its quantity is 1C's base-unit quantity (УТ 11) or
the line's quantity × the coefficient (older configurations), and its price, which 1C keeps per the line's unit,
is divided by the coefficient. A unit without a usable coefficient rejects the document rather than guess.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

from onec.config import ConfigError, Settings
from onec.http import OneCProtocolError, OneCSession, RequestStats
from onec.paginate import OffsetPaginator, Page, Record
from onec.sources.odata_model import DocumentEntity, OdataModel
from onec.sources.typing import Batch

ODATA_PATH = "odata/standard.odata/"
EMPTY_REF = "00000000-0000-0000-0000-000000000000"
QUERY_SAFE = "$,:/()'"
"""Characters left as they are in query values (engineering notes); a space becomes %20, never `+`."""
PATH_SAFE = "/()=',:"

QUANTITY_STEP = Decimal("0.001")
PRICE_STEP = Decimal("0.0001")
COEFFICIENT_STEP = Decimal("0.000001")
MONEY_STEP = Decimal("0.01")
REFS_PER_QUERY = 20
"""Ref_Keys per `$filter` when fetching changed documents: keeps the URL far below the usual 8 KB limits."""


def odata_root(settings: Settings) -> str:
    """`ONEC_ODATA_URL`, or the publication of `ONEC_BASE_URL` (scheme, host, first path segment) + the OData
    path: `https://erp.example/trade/hs/exchange` → `https://erp.example/trade/odata/standard.odata/`."""
    if settings.odata_url:
        return settings.odata_url.rstrip("/") + "/"
    if settings.base_url is None:
        raise ConfigError("the OData source needs ONEC_ODATA_URL or ONEC_BASE_URL")
    parts = urlsplit(settings.base_url)
    publication = parts.path.strip("/").split("/")[0]
    prefix = f"/{publication}/" if publication else "/"
    return f"{parts.scheme}://{parts.netloc}{prefix}{ODATA_PATH}"


def query_string(options: Mapping[str, str | int | None]) -> str:
    """`$name=value&…` with values percent-encoded as UTF-8 and spaces as %20 (1C reads `+` as a plus)."""
    return "&".join(
        f"{name}={quote(str(value), safe=QUERY_SAFE)}" for name, value in options.items() if value is not None
    )


def datetime_literal(value: date | datetime) -> str:
    """An OData v3 literal of a 1C date: local wall time without offset (dates mean local midnight)."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    return f"datetime'{moment.replace(tzinfo=None).strftime('%Y-%m-%dT%H:%M:%S')}'"


@dataclass(frozen=True)
class _Item:
    """A nomenclature item, as goods rows and document lines need it."""

    id: str
    sku: str | None
    name: Any
    code: Any
    unit_key: Any
    deleted: Any
    data_version: Any


class OdataSource:
    """Goods and documents of one 1C base through its standard OData interface (the `odata` source).

    `session` may be based on the exchange service's URL: `root` is an absolute URL on the same server, so the
    same credentials, pace, connection cap and retries govern both interfaces.
    """

    name = "odata"

    def __init__(
        self,
        session: OneCSession,
        *,
        root: str,
        model: OdataModel | None = None,
        page_size: int = 500,
        max_workers: int | None = None,
    ) -> None:
        self._session = session
        self._root = root.rstrip("/") + "/"
        self._model = model or OdataModel()
        self._page_size = page_size
        self._max_workers = max_workers or session.settings.max_connections
        self._names: dict[str, dict[str, Any]] = {}
        self._items: dict[str, _Item] | None = None

    @property
    def stats(self) -> RequestStats:
        return self._session.stats

    def goods(self) -> Iterator[Batch]:
        """Stock positions as 1C holds them (contract §1.3): each (item, warehouse) of the register's current
        Balance(), and once, with no warehouse and quantity 0, each item Balance() has nowhere; with the last
        price when the base publishes a price register. `zero_stock_positions` adds the empty positions of the
        items that have stock somewhere, as an exchange service that lists them."""
        model = self._model
        if model.stock is None:
            raise ConfigError(
                "the OData model names no stock register (stock = false): this configuration keeps no balance of "
                "goods per warehouse that OData's Balance() can read; take goods from another source"
            )
        items = self._item_catalog()
        warehouses = self._catalog(model.warehouses, model.warehouse_name)
        units = self._catalog(model.units, "Description")
        prices = self._prices()
        quantities = self._balance()
        positions: set[tuple[str, str | None]] = set(quantities)
        stocked = {item for item, _ in quantities}
        if model.zero_stock_positions:
            active = [key for key, row in self._warehouse_rows().items() if row.get("DeletionMark") is not True]
            positions |= {(item, warehouse) for item in stocked for warehouse in active}
        positions |= {(item, None) for item in items if item not in stocked}
        records = [
            self._goods_record(item_key, warehouse_key, quantities, items, warehouses, units, prices)
            for item_key, warehouse_key in positions
        ]
        records.sort(key=lambda r: (str(r.get("sku") or ""), str(r.get("warehouse") or ""), r["_refs"]))
        for start in range(0, len(records), self._page_size):
            yield records[start : start + self._page_size]

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[Batch]:
        """Documents of one type dated in [date_from, date_to), paged in (Date, Ref_Key) order."""
        entity = self._model.documents[doc_type]
        resolve = self._document_resolver(entity)
        window = f"Date ge {datetime_literal(date_from)} and Date lt {datetime_literal(date_to)}"
        for page in self._listing(entity.entity_set, order="Date,Ref_Key", where=window):
            yield [resolve(record) for record in page]

    def document_versions(self, doc_type: str, date_from: date, date_to: date) -> dict[str, str]:
        """Ref_Key → DataVersion of the documents dated in [date_from, date_to): two fields a document, the cheap
        half of change detection (OData has no modification time, §2)."""
        entity = self._model.documents[doc_type]
        window = f"Date ge {datetime_literal(date_from)} and Date lt {datetime_literal(date_to)}"
        fields = ("Ref_Key", "DataVersion")
        versions: dict[str, str] = {}
        for page in self._listing(entity.entity_set, order="Date,Ref_Key", where=window, fields=fields):
            versions.update({str(row["Ref_Key"]): str(row.get("DataVersion")) for row in page if "Ref_Key" in row})
        return versions

    def documents_by_ref(self, doc_type: str, refs: Iterable[str]) -> Iterator[Batch]:
        """The documents with these Ref_Keys (the changed ones), `REFS_PER_QUERY` per `$filter`."""
        entity = self._model.documents[doc_type]
        resolve = self._document_resolver(entity)
        wanted = sorted(refs)
        for start in range(0, len(wanted), REFS_PER_QUERY):
            chunk = wanted[start : start + REFS_PER_QUERY]
            where = " or ".join(f"Ref_Key eq guid'{_guid(ref)}'" for ref in chunk)
            for page in self._listing(entity.entity_set, order="Date,Ref_Key", where=where):
                yield [resolve(record) for record in page]

    # --- records

    def _goods_record(
        self,
        item_key: str,
        warehouse_key: str | None,
        quantities: Mapping[tuple[str, str], Any],
        items: Mapping[str, _Item],
        warehouses: Mapping[str, Any],
        units: Mapping[str, Any],
        prices: Mapping[str, Any],
    ) -> Record:
        unresolved: list[str] = []
        item = items.get(item_key)
        if item is None:
            unresolved.append(f"{self._model.stock_item}={item_key}")
        record: Record = {
            "id": item_key,
            "code": item.code if item else None,
            "sku": item.sku if item else None,
            "name": item.name if item else None,
            "unit": _lookup(units, item.unit_key, self._model.item_unit, unresolved) if item else None,
            "price": _number(prices.get(item_key), PRICE_STEP),
            "quantity": _number(
                quantities.get((item_key, warehouse_key), Decimal(0)) if warehouse_key else Decimal(0), QUANTITY_STEP
            ),
            "warehouse": _lookup(warehouses, warehouse_key, self._model.stock_warehouse, unresolved),
            "deleted": item.deleted if item else None,
            "modified_at": None,
            "_data_version": item.data_version if item else None,
            "_refs": f"{item_key}|{warehouse_key}",
        }
        if unresolved:
            record["_unresolved"] = unresolved
        return record

    def _document_resolver(self, entity: DocumentEntity) -> Callable[[Any], Any]:
        """A function turning one OData document into a §1.3 document; catalogs are loaded once, up front."""
        warehouses = self._catalog(self._model.warehouses, self._model.warehouse_name)
        counterparties = self._catalog(self._model.counterparties, "Description") if entity.counterparty else {}
        items = self._item_catalog()
        model = self._model
        lines_of = _LineReader(entity, model, items, self._line_units)

        def resolve(raw: Any) -> Any:
            if not isinstance(raw, dict):
                return raw
            unresolved: list[str] = []
            posted = raw.get("Posted")
            record: Record = {
                "id": raw.get("Ref_Key"),
                "number": raw.get("Number"),
                "date": raw.get("Date"),
                "status": {True: "posted", False: "draft"}.get(posted) if isinstance(posted, bool) else None,
                "posted": posted,
                "warehouse": _lookup(warehouses, raw.get(entity.warehouse), entity.warehouse, unresolved),
                "deleted": raw.get("DeletionMark"),
                "modified_at": None,
                "_data_version": raw.get("DataVersion"),
            }
            if entity.warehouse_to:
                key = raw.get(entity.warehouse_to)
                record["warehouse_to"] = _lookup(warehouses, key, entity.warehouse_to, unresolved)
            if entity.counterparty:
                key = raw.get(entity.counterparty)
                record["counterparty"] = _lookup(counterparties, key, entity.counterparty, unresolved)
            if entity.comment:
                record["notes"] = raw.get(entity.comment)
            lines = raw.get(entity.lines)
            record["items"] = [lines_of(line, unresolved) for line in lines] if isinstance(lines, list) else lines
            if unresolved:
                record["_unresolved"] = unresolved
            return record

        return resolve

    # --- reference data

    def _item_catalog(self) -> dict[str, _Item]:
        """Nomenclature items by Ref_Key, folders skipped; sku is the article, or the code when that is blank."""
        if self._items is None:
            model = self._model
            fields = ("Ref_Key", "Code", "Description", model.item_sku, model.item_unit, "DeletionMark", "IsFolder")
            items: dict[str, _Item] = {}
            for page in self._listing(model.items, order="Ref_Key", fields=(*fields, "DataVersion")):
                for row in page:
                    if row.get("IsFolder") is True or not isinstance(row.get("Ref_Key"), str):
                        continue
                    article = row.get(model.item_sku)
                    sku = article if isinstance(article, str) and article.strip() else row.get("Code")
                    items[row["Ref_Key"]] = _Item(
                        row["Ref_Key"],
                        sku,
                        row.get("Description"),
                        row.get("Code"),
                        row.get(model.item_unit),
                        row.get("DeletionMark"),
                        row.get("DataVersion"),
                    )
            self._items = items
        return self._items

    def _line_units(self) -> dict[str, _Unit]:
        """The catalog of the lines' units by Ref_Key: name and base units per unit. Read on the first line that
        names a unit, so a base whose lines are all in base units never needs the catalog published."""
        model = self._model
        fields = ("Ref_Key", "Description", model.unit_coefficient, model.unit_coefficient_denominator)
        rows = self._rows(model.line_units, [name for name in fields if name])
        return {key: _Unit(row.get("Description"), _coefficient(row, model)) for key, row in rows.items()}

    def _warehouse_rows(self) -> dict[str, dict[str, Any]]:
        return self._rows(self._model.warehouses, ("Ref_Key", "DeletionMark", self._model.warehouse_name))

    def _catalog(self, entity_set: str, field: str) -> dict[str, Any]:
        """Ref_Key → the field's value, for a small reference catalog."""
        return {key: row.get(field) for key, row in self._rows(entity_set, ("Ref_Key", field)).items()}

    def _rows(self, entity_set: str, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
        """A whole catalog by Ref_Key, read once per source (each run builds its own source)."""
        selected = tuple(dict.fromkeys(fields))
        cache_key = f"{entity_set}|{','.join(selected)}"
        if cache_key not in self._names:
            self._names[cache_key] = {
                row["Ref_Key"]: row
                for page in self._listing(entity_set, order="Ref_Key", fields=selected)
                for row in page
                if isinstance(row.get("Ref_Key"), str)
            }
        return self._names[cache_key]

    def _prices(self) -> dict[str, Any]:
        """Item → its last price; none when the model has no price register. Two different prices for one item
        mean several price types: the model must say which one (`price_condition`), since picking one silently
        would land a wrong price."""
        model = self._model
        if model.prices is None:
            return {}
        rows = self._virtual(f"{model.prices}/SliceLast()", (model.price_item, model.price), model.price_condition)
        prices: dict[str, Any] = {}
        for row in rows:
            key, price = str(row.get(model.price_item)), row.get(model.price)
            if key in prices and prices[key] != price:
                raise ConfigError(
                    f"{model.prices}/SliceLast() gives item {key} two prices ({prices[key]} and {price}): set "
                    "price_condition in ONEC_ODATA_MODEL to pick one price type"
                )
            prices[key] = price
        return prices

    def _balance(self) -> dict[tuple[str, str], Any]:
        """(item, warehouse) → quantity now; rows of other register dimensions (series, …) add up."""
        model = self._model
        assert model.stock is not None, "goods() refuses a model without a stock register"
        rows = self._virtual(
            f"{model.stock}/Balance()", (model.stock_item, model.stock_warehouse, model.stock_quantity)
        )
        balance: dict[tuple[str, str], Any] = {}
        for row in rows:
            position = (str(row.get(model.stock_item)), str(row.get(model.stock_warehouse)))
            quantity = _number(row.get(model.stock_quantity), QUANTITY_STEP)
            known = balance.get(position)
            both_numbers = isinstance(known, Decimal) and isinstance(quantity, Decimal)
            balance[position] = known + quantity if both_numbers else quantity if known is None else known
        return balance

    # --- requests

    def _listing(
        self, entity_set: str, *, order: str, where: str | None = None, fields: Iterable[str] | None = None
    ) -> Iterator[list[Record]]:
        """Every row of an entity set, `$top/$skip` pages fetched concurrently, always with `$orderby`.

        The total comes from `/$count` at the start of each pass and again with the last page, so rows added
        while paging (which shift offsets) make the paginator read again instead of losing a row.
        """
        path = self._path(entity_set)
        select = ",".join(fields) if fields is not None else None
        totals = {"known": 0}

        def fetch(offset: int, limit: int) -> Page:
            if offset == 0:
                totals["known"] = self._count(path, where)
            options = {"$format": "json", "$select": select, "$filter": where, "$orderby": order}
            answer = self._session.get_json(path, query=query_string({**options, "$top": limit, "$skip": offset}))
            records = _values(answer, entity_set)
            total = totals["known"]
            if offset + len(records) > total or (offset > 0 and (offset + limit >= total or len(records) < limit)):
                # more rows than counted means the count was wrong (a truncated answer is a shorter number)
                total = self._count(path, where)
            return Page(records, offset, limit, total)

        paginator = OffsetPaginator(fetch, page_size=self._page_size, max_workers=self._max_workers, key=_ref_key)
        yield from paginator

    def _virtual(self, table: str, fields: Iterable[str], where: str | None = None) -> list[Record]:
        """A virtual table (Balance, SliceLast) in one answer: 1C computes it whole for every request anyway,
        and `$top/$skip` over a computed table has no stable order to page by."""
        options = {"$format": "json", "$select": ",".join(fields), "$filter": where}
        return _values(self._session.get_json(self._path(table), query=query_string(options)), table)

    def _count(self, path: str, where: str | None) -> int:
        text = self._session.get_text(f"{path}/$count", query=query_string({"$filter": where}))
        digits = text.strip().lstrip("\ufeff")
        if not digits.isdigit():
            raise OneCProtocolError(f"1C's {path}/$count answered {digits[:40]!r}, not a count")
        return int(digits)

    def _path(self, entity_set: str) -> str:
        return self._root + quote(entity_set, safe=PATH_SAFE)


@dataclass(frozen=True)
class _Unit:
    """A unit a line can be written in: its name and how many base units one of it holds (None: unknown)."""

    name: Any
    coefficient: Decimal | None


class _LineReader:
    """Turns one row of a document's tabular section into a §1.3 line, quantities in base units.

    A line in a packaging unit keeps that unit's name and coefficient (`line_unit`, `unit_coefficient`); its
    quantity is 1C's base-unit quantity where the configuration gives one (УТ 11), else the line's quantity ×
    the coefficient. A unit 1C did not publish, or one without a usable coefficient when the quantity needs it,
    is named under `_unresolved`: the document is rejected rather than landed in the wrong unit.
    """

    def __init__(
        self,
        entity: DocumentEntity,
        model: OdataModel,
        items: Mapping[str, _Item],
        units: Callable[[], Mapping[str, _Unit]],
    ) -> None:
        self._entity = entity
        self._model = model
        self._items = items
        self._units = units
        self._quantity = entity.quantity or model.line_quantity
        self._price = model.line_price if entity.priced else None
        self._total = model.line_total if entity.priced else None

    def __call__(self, raw: Any, unresolved: list[str]) -> Any:
        if not isinstance(raw, dict):
            return raw
        model, entity = self._model, self._entity
        where = f"{entity.lines}[{raw.get('LineNumber')}]"
        key = raw.get(model.line_item)
        item = self._items.get(key) if isinstance(key, str) else None
        if item is None and key is not None and key != EMPTY_REF:
            unresolved.append(f"{where}.{model.line_item}={key}")
        unit = self._unit(raw, where, unresolved)
        line: Record = {
            "line": raw.get("LineNumber"),
            "sku": item.sku if item else None,
            "name": item.name if item else None,
            "quantity": self._base_quantity(raw.get(self._quantity), unit),
            "unit_price": self._base_price(raw.get(self._price), unit) if self._price else None,
            "total": _number(raw.get(self._total), MONEY_STEP) if self._total else None,
            "line_unit": unit.name if unit else None,
            "unit_coefficient": unit.coefficient if unit else None,
        }
        if entity.book_quantity:
            line["book_quantity"] = self._base_quantity(raw.get(entity.book_quantity), unit)
        return line

    def _unit(self, raw: dict[str, Any], where: str, unresolved: list[str]) -> _Unit | None:
        """The line's unit; None for a line in base units (no unit field, or the empty reference)."""
        field = self._model.line_unit
        key = raw.get(field) if field else None
        if key is None or key == EMPTY_REF:
            return None
        unit = self._units().get(key) if isinstance(key, str) else None
        if unit is None:
            unresolved.append(f"{where}.{field}={key}")
        elif unit.coefficient is None:
            unresolved.append(f"{where}.{field}={key}: its {self._model.unit_coefficient} is no positive number")
        return unit

    @staticmethod
    def _base_price(value: Any, unit: _Unit | None) -> Any:
        """The price per base unit: 1C prices a line per its own unit (a pack), so a pack's price is divided by
        its coefficient; `total` is the line's and needs nothing."""
        price = _number(value, PRICE_STEP)
        if unit is None or not isinstance(price, Decimal):
            return price
        if unit.coefficient is None:
            return None  # named by `_unit`
        return (price / unit.coefficient).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)

    def _base_quantity(self, value: Any, unit: _Unit | None) -> Any:
        quantity = _number(value, QUANTITY_STEP)
        if unit is None or self._model.line_quantity_in_base_units or not isinstance(quantity, Decimal):
            return quantity
        if unit.coefficient is None:
            return None  # named by `_unit`
        return (quantity * unit.coefficient).quantize(QUANTITY_STEP, rounding=ROUND_HALF_UP)


def _coefficient(row: Mapping[str, Any], model: OdataModel) -> Decimal | None:
    """Base units per unit, from the unit's coefficient field (over its denominator where the configuration
    keeps a ratio); None when 1C holds no positive number there."""
    numerator = _number(row.get(model.unit_coefficient), COEFFICIENT_STEP)
    denominator = (
        _number(row.get(model.unit_coefficient_denominator), COEFFICIENT_STEP)
        if model.unit_coefficient_denominator
        else Decimal(1)
    )
    if not isinstance(numerator, Decimal) or not isinstance(denominator, Decimal) or numerator <= 0 or denominator <= 0:
        return None
    return (numerator / denominator).quantize(COEFFICIENT_STEP, rounding=ROUND_HALF_UP)


def _lookup(names: Mapping[str, Any], key: Any, field: str, unresolved: list[str]) -> Any:
    """The name behind a `_Key`; the empty reference is no value, an unknown one is noted for the reject."""
    if key is None or key == EMPTY_REF:
        return None
    if isinstance(key, str) and key in names:
        return names[key]
    unresolved.append(f"{field}={key}")
    return None


def _number(value: Any, step: Decimal) -> Any:
    """A JSON double as the Decimal 1C meant: its shortest decimal text, to the column's scale (1C numbers
    have a fixed scale, so digits beyond it are binary noise). Anything else passes unchanged for validation
    to judge (a string in any §1.9 spelling, or garbage it rejects with the reason)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    try:
        return Decimal(str(value)).quantize(step, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return str(value)


def _values(answer: Any, entity_set: str) -> list[Record]:
    """Insist on the OData v3 shape `{"value": [...]}`: an unreadable page must stop the run."""
    values = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(values, list):
        raise OneCProtocolError(f"1C's OData {entity_set} answer has no 'value' list")
    return values


def _guid(text: str) -> str:
    """A Ref_Key as it may appear in a guid literal: the filter is built from 1C's own answers, but checked."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise OneCProtocolError(f"1C's Ref_Key {text[:40]!r} is not a GUID") from None


def _ref_key(record: Record) -> Hashable:
    key = record.get("Ref_Key") if isinstance(record, dict) else None
    return key if isinstance(key, str) else repr(record)
