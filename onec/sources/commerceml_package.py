"""CommerceML packages as 1C and sites exchange them: a folder, or files arriving one by one, landed as one set.

The package (1C:УТ 11 ↔ Bitrix, CommerceML 3.1) comes as a folder: the classifier `import___<id>.xml` at the top,
`goods/1/{import,offers,prices,rests}___<id>.xml`, `properties/1/…`, `documents/…` (pictures under `import_files/`
are not data). Its parts belong together: 3.1 splits what 2.x kept in offers.xml (the offers, their prices, their
stock) into files of their own, and 1C often marks them `СодержитТолькоИзменения="true"`. How a set lands:

- **Complete snapshot** (a catalog with its offers, no file says changes-only, and the set has stock): it replaces
  the goods snapshot of its day, as any complete goods file does. A set with a catalog and offers but no stock at
  all is refused by name: it cannot replace a snapshot, and landing its positions without quantities would only
  reject every row.
- **Changes** (a changes-only file, or parts alone: `offers.xml`, a later `prices.xml`, `rests.xml`; none of them
  says the positions it lacks are gone): merged into the day's
  snapshot (`Warehouse.goods_changes`) field by field. Each changed offer's positions of the current snapshot are
  read back and only what the set brings is replaced: prices from a prices file, quantities per warehouse from a
  rests file, sku/name/unit from a catalog or offers file; a prices file changes prices and nothing else. The
  positions are read before the landing takes the writer's lock, so a goods landing committed in between (another
  package's changes, a sync) is overwritten for these positions; merging field-wise inside the landing's
  transaction would close that gap.
- **Orders** (`documents.xml`) land as documents of type `order`, merged by number: an orders file never says it
  holds every order of a day, so it replaces none. A line's sku is its offer's sku in the package, else in the
  latest landed snapshot (orders often arrive after their package), else its `Артикул`, else the offer Ид.

The classifier (warehouses, price types, units, properties) is remembered under the data directory after each
landing, because changes-only files refer to it by Ид without repeating it.

Options (`onec.config.CommerceMLOptions`, from the environment): `ONEC_CML_PRICE_TYPE`, the price type to land,
by name or Ид (default: «Розничная» if the package declares it, else the first type it declares);
`ONEC_CML_WAIT_SECONDS`, how long the inbox keeps an incomplete package waiting for its parts (default 900) before
landing what is complete or refusing it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from onec.config import CommerceMLOptions, variable_name
from onec.http.limits import RequestStats
from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import ORDER
from onec.sources.commerceml import (
    TOTAL_WAREHOUSE,
    CommerceMLError,
    CommerceMLSet,
    Offer,
    Part,
    Reference,
    holds_documents,
    read_orders,
    read_set,
)
from onec.sources.typing import Batch
from onec.sources.xml_safety import open_binary
from onec.sync import ALL_DATES, ExtractResult, extract_goods, land_pages, local_today
from onec.validation import CheckedBatch, check_documents, check_goods
from onec.warehouse import Warehouse

WAIT_ENV = variable_name(CommerceMLOptions, "wait_s")
PICTURES_DIR = "import_files"
REFERENCE_FILE = Path("commerceml") / "classifier.json"
SOURCE = "commerceml"
_HEAD_BYTES = 1024 * 1024
_BASE_COLUMNS = ("sku", "warehouse", "name", "quantity", "unit", "price", "id", "code", "deleted")


def expand_folders(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a folder (a package in the Bitrix layout) as every file under it, pictures and hidden
    files left out."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        found += sorted(
            file
            for file in path.rglob("*")
            if file.is_file()
            and not any(part.startswith(".") or part == PICTURES_DIR for part in file.relative_to(path).parts)
        )
    return found


def load_package(
    paths: list[Path],
    warehouse: Warehouse,
    *,
    timezone: str,
    run_id: str,
    snapshot_date: date | None = None,
    options: CommerceMLOptions = CommerceMLOptions(),
    rules: ValidationRules = DEFAULT_RULES,
) -> list[ExtractResult]:
    """Land the CommerceML files of one package: its goods (snapshot or changes), then its orders."""
    documents = [path for path in paths if holds_documents(path)]
    catalog = [path for path in paths if path not in documents]
    results: list[ExtractResult] = []
    found: CommerceMLSet | None = None
    if catalog:
        found = read_set(catalog, _remembered(warehouse))
        day = snapshot_date or found.formed or local_today(timezone)
        results.append(_land_goods(found, warehouse, day, timezone, run_id, options.price_type, rules))
        _remember(warehouse, found.reference)
    if documents:
        results.append(_land_orders(documents, found, warehouse, timezone, run_id, rules))
    return results


class _PackageSource:
    """The package's goods records and orders as a `Source`."""

    name = SOURCE

    def __init__(self, goods: list[dict[str, Any]], orders: list[dict[str, Any]]) -> None:
        self._goods = goods
        self._orders = orders
        self._stats = RequestStats()

    @property
    def stats(self) -> RequestStats:
        return self._stats

    def goods(self) -> Iterator[Batch]:
        yield self._goods

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[Batch]:
        yield self._orders


def _land_goods(
    found: CommerceMLSet,
    warehouse: Warehouse,
    day: date,
    timezone: str,
    run_id: str,
    price_type: str | None,
    rules: ValidationRules,
) -> ExtractResult:
    whole = {Part.CATALOG, Part.OFFERS} <= found.parts
    if not found.changes_only and whole:
        if Part.STOCK not in found.parts:
            raise CommerceMLError(
                "the package has goods and offers but no stock (its rests file, e.g. goods/1/rests___….xml, is"
                " missing): a complete package replaces the goods snapshot and cannot without quantities"
            )
        source = _PackageSource(list(found.records(price_type)), [])
        return extract_goods(source, warehouse, snapshot_date=day, run_id=run_id, timezone=timezone, rules=rules)
    records = list(_changed_records(found, _current_positions(warehouse, day, list(found.offers)), price_type))

    def check(batch: Batch) -> CheckedBatch:
        return check_goods(batch, snapshot_date=day, timezone=timezone, run_id=run_id, source=SOURCE, rules=rules)

    source = _PackageSource(records, [])
    landing = warehouse.goods_changes(day, run_id=run_id, source=SOURCE)
    return land_pages(source, landing, source.goods(), check, run_id=run_id, entity="goods", doc_type=None,
                      span=(day, day + timedelta(days=1)), on_records=None)  # fmt: skip


def _changed_records(
    found: CommerceMLSet, current: Mapping[str, list[dict[str, Any]]], price_type: str | None
) -> Iterator[dict[str, Any]]:
    """Each changed offer's positions: its current rows with only what the set brings replaced."""
    chosen = found.price_type(price_type)
    for offer in found.offers.values():
        rows = {row["warehouse"]: row for row in current.get(offer.id, [])}
        template = next(iter(rows.values()), {"id": offer.id})
        known = offer.described or offer.id.partition("#")[0] in found.goods
        quantities: dict[str, str | None] = (
            found.stock(offer) if offer.has_stock else {w: row["quantity"] for w, row in rows.items()}
        )
        if not quantities:  # no position yet and no stock: a row validation rejects with why, not a silent drop
            quantities = {TOTAL_WAREHOUSE: None}
        for warehouse_name, quantity in quantities.items():
            row = dict(rows.get(warehouse_name, template))
            if known:  # what the set says of the offer; what it does not say stays as it was
                row.update({k: v for k, v in found.describe(offer).items() if v is not None})
            if _prices_changed(offer, chosen):
                row["price"] = found.price(offer, chosen)
            yield {**row, "warehouse": warehouse_name, "quantity": quantity}


def _prices_changed(offer: Offer, chosen: str | None) -> bool:
    """Whether the set brings the landed price type's price (a changes-only file may carry other types only)."""
    return chosen in offer.prices if chosen is not None else bool(offer.prices)


def _current_positions(warehouse: Warehouse, day: date, offer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The positions of these offers in the snapshot a merge into `day` starts from (that day's, else the latest
    earlier one), by offer Ид."""
    if not warehouse.database.exists() or not offer_ids:
        return {}
    frame = warehouse.query(
        f"SELECT {', '.join(_BASE_COLUMNS)} FROM goods WHERE list_contains(?, id) AND snapshot_date ="  # noqa: S608
        " (SELECT max(snapshot_date) FROM goods WHERE snapshot_date <= ?)",
        [offer_ids, day],
    )
    current: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        current.setdefault(row["id"], []).append({k: _plain(v) for k, v in row.items()})
    return current


def _plain(value: Any) -> Any:
    """A warehouse value as the exchange would send it (numbers as text, so validation parses them as it does)."""
    return value if value is None or isinstance(value, str | bool) else str(value)


def _land_orders(
    paths: list[Path],
    found: CommerceMLSet | None,
    warehouse: Warehouse,
    timezone: str,
    run_id: str,
    rules: ValidationRules,
) -> ExtractResult:
    landed = _landed_skus(warehouse)

    def sku_of(offer_id: str) -> str | None:
        return (found.sku_of(offer_id) if found else None) or landed.get(offer_id)

    orders = [order for path in paths for order in read_orders(path, sku_of)]

    def check(batch: Batch) -> CheckedBatch:
        return check_documents(batch, doc_type=ORDER.slug, date_from=ALL_DATES[0], date_to=ALL_DATES[1],
                               timezone=timezone, run_id=run_id, source=SOURCE, rules=rules)  # fmt: skip

    source = _PackageSource([], orders)
    landing = warehouse.document_changes(ORDER.slug, run_id=run_id, source=SOURCE)
    pages = source.documents(ORDER.slug, *ALL_DATES)
    return land_pages(source, landing, pages, check, run_id=run_id, entity="documents", doc_type=ORDER.slug,
                      span=ALL_DATES, on_records=None)  # fmt: skip


def _landed_skus(warehouse: Warehouse) -> dict[str, str]:
    """The sku each landed offer Ид has in its latest snapshot: orders often come after their package."""
    if not warehouse.database.exists():
        return {}
    frame = warehouse.query(
        "SELECT id, arg_max(sku, snapshot_date) AS sku FROM goods WHERE id IS NOT NULL AND sku IS NOT NULL GROUP BY id"
    )
    return dict(zip(frame["id"].to_list(), frame["sku"].to_list(), strict=True))


def _remembered(warehouse: Warehouse) -> Reference:
    path = warehouse.data_dir / REFERENCE_FILE
    if not path.is_file():
        return Reference()
    return Reference.from_dict(orjson.loads(path.read_bytes()))


def _remember(warehouse: Warehouse, reference: Reference) -> None:
    """Write the classifier beside the warehouse, atomically (a reader never sees half a file)."""
    path = warehouse.data_dir / REFERENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(reference.as_dict(), option=orjson.OPT_INDENT_2))
    temporary.replace(path)


# --- the inbox: files arriving one by one


@dataclass(frozen=True)
class Waiting:
    """A package in the inbox still missing parts that belong with the ones there."""

    files: tuple[str, ...]
    missing: tuple[str, ...]
    since: float
    gives_up_at: float

    def describe(self) -> str:
        def moment(seconds: float) -> str:
            return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")

        return (
            f"waiting for {' and '.join(self.missing)} of package {', '.join(self.files)} since {moment(self.since)};"
            f" at {moment(self.gives_up_at)} it lands what is complete or is refused ({WAIT_ENV})"
        )


@dataclass
class InboxScan:
    """What the inbox holds: groups ready to load, and packages waiting for their parts."""

    groups: list[list[Path]] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)


def inbox_package(paths: list[Path], *, now: float, wait_s: float) -> tuple[list[Path] | None, Waiting | None]:
    """The inbox's CommerceML files as one package: ready to load (the paths), or waiting (why, since when).

    A package with a classifier, goods or offers waits until files with prices and with stock are there too (2.x
    offers.xml has both; 3.1 brings prices.xml and rests.xml). Parts alone (a later prices.xml or rests.xml) and
    orders are ready at once. After `wait_s` from its oldest file the package is released: its load lands what is
    complete or refuses it, with the reason, into failed/. Parts are told from each file's first megabyte, which
    is enough to wait on; the load itself reads every file whole.
    """
    if not paths:
        return None, None
    parts: set[Part] = set().union(*(_head_parts(path) for path in paths))
    missing = [] if not parts & {Part.CLASSIFIER, Part.CATALOG, Part.OFFERS} else [
        part.value for part in (Part.PRICES, Part.STOCK) if part not in parts
    ]  # fmt: skip
    since = min(path.stat().st_mtime for path in paths)
    if not missing or now - since >= wait_s:
        return paths, None
    return None, Waiting(tuple(sorted(p.name for p in paths)), tuple(missing), since, since + wait_s)


def _pattern(*names: str) -> tuple[re.Pattern[bytes], ...]:
    alternatives = "|".join(names)
    text = f"<(?:[\\w.-]+:)?(?:{alternatives})[\\s/>]"
    return re.compile(text.encode()), re.compile(text.encode("cp1251"))


_HEAD_MARKS: dict[Part, tuple[re.Pattern[bytes], ...]] = {
    Part.ORDERS: _pattern("Документ", "Контейнер"),
    Part.CLASSIFIER: _pattern("Классификатор"),
    Part.CATALOG: _pattern("Товары"),
    Part.OFFERS: _pattern("Предложения"),
    Part.PRICES: _pattern("Цены"),
    Part.STOCK: _pattern("Остатки", "Количество"),
}
_STOCK_ATTRIBUTE = ("КоличествоНаСкладе".encode(), "КоличествоНаСкладе".encode("cp1251"))


def _head_parts(path: Path) -> set[Part]:
    with open_binary(path) as handle:
        head = handle.read(_HEAD_BYTES)
    parts = {part for part, patterns in _HEAD_MARKS.items() if any(p.search(head) for p in patterns)}
    if any(mark in head for mark in _STOCK_ATTRIBUTE):
        parts.add(Part.STOCK)
    if Part.ORDERS in parts:
        return {Part.ORDERS}
    if parts & {Part.PRICES, Part.STOCK}:
        parts.discard(Part.OFFERS)  # offers that carry only prices or stock describe nothing
    return parts
