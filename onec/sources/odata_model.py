"""Which 1C metadata objects and fields the OData source reads: configuration, not code.

Every 1C configuration names its catalogs, registers and documents its own way (a seed-style trade base says
`ПриходТовара`, УТ 11 says `ПриобретениеТоваровУслуг`), so the names live in one dataclass whose defaults are
the contract's §2.1 table, and a JSON or TOML file (`ONEC_ODATA_MODEL`) overrides any of them. A file only
names what differs: every other name keeps its default, and a misspelt key is an error rather than ignored.
Ready files for common configurations ship in `onec/odata_models/` (`ONEC_ODATA_MODEL=ut11` names one of them).

What real configurations differ in, beyond names (contract §1.3 "What real bases hold"): a base may publish no
price register (`prices` None), a document's lines may carry no price (`priced` false, or `line_price` None),
an operation may have no counterparty (the empty reference lands null), and lines may be in packaging units:
`line_unit` names the line's unit reference, and `line_quantity_in_base_units` says whether `Количество` is
already in base units (УТ 11: `Упаковка_Key` with `КоличествоУпаковок` in packs) or in the line's unit (older
configurations: `ЕдиницаИзмерения_Key`, to be multiplied by the unit's `Коэффициент`).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onec.config import ODATA_MODELS, ConfigError, odata_model_path
from onec.schema import DOCUMENT_SLUGS

SHIPPED_MODELS = ODATA_MODELS
"""The model files of common configurations (`ut11.toml`, `bp30.toml`), each written from 1C's metadata."""


@dataclass(frozen=True)
class DocumentEntity:
    """One document type as 1C publishes it: the entity set, its tabular section of goods and its reference
    fields. A field set to None is not read (adjustments have no counterparty)."""

    entity_set: str
    lines: str = "Товары"
    warehouse: str = "Склад_Key"
    warehouse_to: str | None = None
    counterparty: str | None = "Контрагент_Key"
    comment: str | None = "Комментарий"
    book_quantity: str | None = None
    """The line field holding the book quantity of a stock-taking document."""
    quantity: str | None = None
    """The line field of the quantity, when this document's differs from the model's `line_quantity` (УТ 11's
    stock-taking counts in `КоличествоФакт`)."""
    priced: bool = True
    """False: this document's lines carry quantities only (warehouse orders, transfers in many configurations):
    `unit_price` and `total` land null instead of being read."""


def _default_documents() -> dict[str, DocumentEntity]:
    return {
        "goods-receipt": DocumentEntity("Document_ПриходТовара"),
        "shipment": DocumentEntity("Document_РасходТовара"),
        "transfer": DocumentEntity(
            "Document_ПеремещениеТовара",
            warehouse="СкладОтправитель_Key",
            warehouse_to="СкладПолучатель_Key",
            counterparty=None,
        ),
        "adjustment-up": DocumentEntity("Document_ОприходованиеИзлишковТоваров", counterparty=None),
        "adjustment-down": DocumentEntity("Document_СписаниеНедостачТоваров", counterparty=None),
        "inventory": DocumentEntity("Document_ИнвентаризацияТовара", counterparty=None, book_quantity="КоличествоУчет"),
    }


@dataclass(frozen=True)
class OdataModel:
    """The 1C names behind each entity of this project (contract §2.1); see the module docstring."""

    warehouses: str = "Catalog_Склады"
    warehouse_name: str = "Description"
    """The warehouse catalog field that becomes `warehouse` (the exchange service's warehouse code)."""
    counterparties: str = "Catalog_Контрагенты"
    units: str = "Catalog_ЕдиницыИзмерения"
    items: str = "Catalog_Номенклатура"
    item_sku: str = "Артикул"
    """Blank in 1C: the item's `Code` stands in, as §2.1 says."""
    item_unit: str = "ЕдиницаИзмерения_Key"
    prices: str | None = "InformationRegister_ЦеныНоменклатуры"
    """The price register read with SliceLast(); None: the base has none published, goods land without price."""
    price_item: str = "Номенклатура_Key"
    price: str = "Цена"
    price_condition: str | None = None
    """An OData `$filter` on the price slice, for bases with several price types, e.g.
    `ВидЦен_Key eq guid'…'`; without it every item must have at most one last price."""
    stock: str | None = "AccumulationRegister_ТоварыНаСкладах"
    """The accumulation register read with Balance(); None: the configuration has none usable (БП 3.0 keeps
    stock in its accounting register), and a goods sync stops naming that instead of landing nothing."""
    stock_item: str = "Номенклатура_Key"
    stock_warehouse: str = "Склад_Key"
    stock_quantity: str = "КоличествоBalance"
    zero_stock_positions: bool = False
    """Goods are what 1C returns (contract §1.3): the positions Balance() holds, and once, with no warehouse and
    quantity 0, each item that has no balance anywhere. True adds a zero row for every warehouse Balance() leaves
    out of an item that has stock somewhere (a snapshot shaped like a listing of every position, as some exchange
    services, the sandbox's among them, send)."""
    line_item: str = "Номенклатура_Key"
    line_quantity: str = "Количество"
    line_price: str | None = "Цена"
    """None: no document's lines carry a price (see `DocumentEntity.priced` for one type)."""
    line_total: str | None = "Сумма"
    line_unit: str | None = "ЕдиницаИзмерения_Key"
    """The line's unit reference. Empty or absent in a line: the line is in the item's base unit."""
    line_units: str = "Catalog_ЕдиницыИзмерения"
    """The catalog `line_unit` refers to: its `Description` is the unit's name."""
    unit_coefficient: str = "Коэффициент"
    """The field of `line_units` holding base units per unit."""
    unit_coefficient_denominator: str | None = None
    """When set, the coefficient is `unit_coefficient` / this field (УТ 11.4+: `Числитель` / `Знаменатель`)."""
    line_quantity_in_base_units: bool = False
    """True: the line's quantity field is already in base units (УТ 11's `Количество` beside
    `КоличествоУпаковок`); False: it is in the line's unit and is multiplied by the coefficient (older
    configurations)."""
    documents: Mapping[str, DocumentEntity] = field(default_factory=_default_documents)
    """Per document type slug; the defaults cover all six, a file overrides single fields of any of them."""

    @classmethod
    def load(cls, path: Path | None) -> OdataModel:
        """The defaults, overridden by the file at `path` (`.json` or `.toml`) when one is given; a bare name
        that is no file (`ut11`) is the shipped model of that name."""
        path = odata_model_path(str(path)) if path is not None else None
        if path is None:
            return cls()
        try:
            raw = path.read_bytes()
            overrides = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"ONEC_ODATA_MODEL={str(path)!r} cannot be read: {exc}") from None
        if not isinstance(overrides, dict):
            raise ConfigError(f"ONEC_ODATA_MODEL={str(path)!r} must hold an object of names")
        return cls.with_overrides(overrides, origin=f"ONEC_ODATA_MODEL={str(path)!r}")

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any], *, origin: str = "the OData model") -> OdataModel:
        """The defaults with `overrides` applied; `documents` entries override field by field per type."""
        scalar = {f.name: f for f in dataclasses.fields(cls) if f.name != "documents"}
        unknown = sorted(set(overrides) - set(scalar) - {"documents"})
        if unknown:
            raise ConfigError(f"{origin}: unknown names {', '.join(unknown)}; known: {', '.join(sorted(scalar))}")
        overrides = {name: _off(value) if name in _OPTIONAL else value for name, value in overrides.items()}
        for name, value in overrides.items():
            if name == "documents" or (value is None and name in _OPTIONAL):
                continue
            _check_type(origin, name, value, bool if name in _FLAGS else str)
        changes_by_type = overrides.get("documents") or {}
        if not isinstance(changes_by_type, Mapping):
            raise ConfigError(f"{origin}: documents must be an object keyed by document type")
        documents = _default_documents()
        for slug, changes in changes_by_type.items():
            if slug not in documents:
                raise ConfigError(
                    f"{origin}: unknown document type {slug!r}; expected one of: {', '.join(DOCUMENT_SLUGS)}"
                )
            documents[slug] = _document_with(origin, slug, documents[slug], changes)
        return cls(**{k: v for k, v in overrides.items() if k != "documents"}, documents=documents)


_FLAGS = frozenset({"zero_stock_positions", "line_quantity_in_base_units"})
_OPTIONAL = frozenset(
    {"price_condition", "prices", "stock", "line_price", "line_total", "line_unit", "unit_coefficient_denominator"}
)
"""Names that may be switched off: null in JSON, `false` in TOML (which has no null)."""


def _off(value: Any) -> Any:
    return None if value is False else value


def _document_with(origin: str, slug: str, default: DocumentEntity, changes: Any) -> DocumentEntity:
    if not isinstance(changes, Mapping):
        raise ConfigError(f"{origin}: documents.{slug} must be an object of names")
    known = {f.name for f in dataclasses.fields(DocumentEntity)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"{origin}: documents.{slug} has unknown names {', '.join(unknown)}")
    changes = {name: value if name == "priced" else _off(value) for name, value in changes.items()}
    for name, value in changes.items():
        if value is not None or name in ("entity_set", "lines", "warehouse", "priced"):
            _check_type(origin, f"documents.{slug}.{name}", value, bool if name == "priced" else str)
    return dataclasses.replace(default, **changes)


def _check_type(origin: str, name: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{origin}: {name} must be a non-empty {kind.__name__}, got {value!r}")
