"""Which 1C metadata objects and fields the OData source reads: configuration, not code.

Every 1C configuration names its catalogs, registers and documents its own way (a seed-style trade base says
`ПриходТовара`, УТ 11 says `ПриобретениеТоваровУслуг`), so the names live in one dataclass whose defaults are
the contract's §2.1 table, and a JSON or TOML file (`ONEC_ODATA_MODEL`) overrides any of them. A file only
names what differs: every other name keeps its default, and a misspelt key is an error rather than ignored.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onec.config import ConfigError
from onec.schema import DOCUMENT_SLUGS


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
    prices: str = "InformationRegister_ЦеныНоменклатуры"
    price_item: str = "Номенклатура_Key"
    price: str = "Цена"
    price_condition: str | None = None
    """An OData `$filter` on the price slice, for bases with several price types, e.g.
    `ВидЦен_Key eq guid'…'`; without it every item must have at most one last price."""
    stock: str = "AccumulationRegister_ТоварыНаСкладах"
    stock_item: str = "Номенклатура_Key"
    stock_warehouse: str = "Склад_Key"
    stock_quantity: str = "КоличествоBalance"
    zero_stock_positions: bool = True
    """1C's Balance() leaves out positions with nothing in stock; the exchange service lists every item in
    every warehouse, zero or not. True (the default) restores those rows from the catalogs, so both sources
    land the same snapshot; False lands only positions that hold stock (for very large catalogs)."""
    line_item: str = "Номенклатура_Key"
    line_quantity: str = "Количество"
    line_price: str = "Цена"
    line_total: str = "Сумма"
    documents: Mapping[str, DocumentEntity] = field(default_factory=_default_documents)
    """Per document type slug; the defaults cover all six, a file overrides single fields of any of them."""

    @classmethod
    def load(cls, path: Path | None) -> OdataModel:
        """The defaults, overridden by the file at `path` (`.json` or `.toml`) when one is given."""
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
        for name, value in overrides.items():
            if name == "documents" or (name == "price_condition" and value is None):
                continue
            _check_type(origin, name, value, bool if name == "zero_stock_positions" else str)
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


def _document_with(origin: str, slug: str, default: DocumentEntity, changes: Any) -> DocumentEntity:
    if not isinstance(changes, Mapping):
        raise ConfigError(f"{origin}: documents.{slug} must be an object of names")
    known = {f.name for f in dataclasses.fields(DocumentEntity)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"{origin}: documents.{slug} has unknown names {', '.join(unknown)}")
    for name, value in changes.items():
        if value is not None or name in ("entity_set", "lines", "warehouse"):
            _check_type(origin, f"documents.{slug}.{name}", value, str)
    return dataclasses.replace(default, **changes)


def _check_type(origin: str, name: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{origin}: {name} must be a non-empty {kind.__name__}, got {value!r}")
