"""`onec-etl odata inspect`: which OData model fits a 1C base, and what the base lacks of it, from its `$metadata`.

Why: every configuration names its objects its own way, and a base publishes only what its administrator chose
(§2). Guessing a model and finding out in the middle of a sync (a 404 on a register, a 400 on a field) is slow
and unclear; 1C's `$metadata` (EDMX: entity sets, entity types with their properties, tabular-section row types)
lists everything the base publishes, so each candidate model (the defaults, the shipped ones, the configured one)
is checked against it name by name, before anything is read.

The EDMX comes from outside: it is parsed with the exchange files' hardened parser (no DTD, no entities, no
network; `onec.sources.xml_safety`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from onec.sources.odata_model import SHIPPED_MODELS, DocumentEntity, OdataModel
from onec.sources.xml_safety import checked_stream, local_name, safe_iterparse

_COLLECTION = "Collection("
_STANDARD = "standard"
"""The candidate of the built-in defaults (the contract's §2.1 model)."""


@dataclass(frozen=True)
class Metadata:
    """What a base publishes: entity set names, and the property names of each entity or complex type."""

    entity_sets: dict[str, str]
    """Entity set → the (unqualified) name of its entity type."""
    types: dict[str, frozenset[str]]
    """Entity or complex type → its property names."""
    collections: dict[tuple[str, str], str]
    """(entity type, property) → the row type of a collection property (a tabular section)."""

    def fields_of(self, entity_set: str) -> frozenset[str] | None:
        """The properties of an entity set's type; for a register, of all the sets and types named after it
        (its records, `_RecordType`, `_Balance`, `_SliceLast`); None when nothing of that name is published."""
        names = [self.entity_sets.get(entity_set, entity_set)]
        names += [n for n in (*self.entity_sets, *self.types) if n.startswith(f"{entity_set}_") and _virtual(n)]
        known = [self.types[self.entity_sets.get(n, n)] for n in names if self.entity_sets.get(n, n) in self.types]
        if not known and entity_set not in self.entity_sets:
            return None
        return frozenset().union(*known)

    def line_fields(self, entity_set: str, lines: str) -> frozenset[str] | None:
        """The properties of a document's tabular-section rows: its row type, else the `Document_X_<lines>` set."""
        header = self.entity_sets.get(entity_set, entity_set)
        row_type = self.collections.get((header, lines))
        if row_type is not None and row_type in self.types:
            return self.types[row_type]
        return self.fields_of(f"{entity_set}_{lines}")


def _virtual(name: str) -> bool:
    return name.rsplit("_", 1)[-1] in ("RecordType", "Balance", "SliceLast", "BalanceAndTurnovers", "Turnovers")


def read_metadata(edmx: bytes) -> Metadata:
    """Parse 1C's `$metadata` document (EDMX, OData v3)."""
    stream, _ = checked_stream(io.BytesIO(edmx))
    entity_sets: dict[str, str] = {}
    types: dict[str, frozenset[str]] = {}
    collections: dict[tuple[str, str], str] = {}
    for element in safe_iterparse(stream, ("{*}EntityType", "{*}ComplexType", "{*}EntitySet")):
        name = element.get("Name") or ""
        if local_name(element.tag) == "EntitySet":
            entity_sets[name] = _unqualified(element.get("EntityType") or name)
            continue
        properties = [child for child in element if local_name(child.tag) == "Property"]
        types[name] = frozenset(p.get("Name") or "" for p in properties)
        for prop in properties:
            kind = prop.get("Type") or ""
            if kind.startswith(_COLLECTION):
                collections[(name, prop.get("Name") or "")] = _unqualified(kind[len(_COLLECTION) : -1])
    return Metadata(entity_sets, types, collections)


def _unqualified(name: str) -> str:
    return name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Need:
    """One thing a model reads: an entity set, and the fields of it (or of its lines) it needs."""

    entity_set: str
    fields: tuple[str, ...]
    lines: str | None = None
    """The tabular section whose rows must have `fields` (documents' lines)."""

    def label(self) -> str:
        return f"{self.entity_set}.{self.lines}" if self.lines else self.entity_set


def needs(model: OdataModel, metadata: Metadata) -> list[Need]:
    """Everything `model` reads, in the order a sync reads it. The line's unit field is optional (a base whose
    lines are all in base units has none); its catalog is needed once some document's lines have the field."""
    result = [
        Need(model.items, ("Ref_Key", "Code", "Description", model.item_sku, model.item_unit, "IsFolder")),
        Need(model.warehouses, ("Ref_Key", model.warehouse_name)),
        Need(model.units, ("Ref_Key", "Description")),
    ]
    if model.prices:
        result.append(Need(model.prices, (model.price_item, model.price)))
    if model.stock:
        result.append(Need(model.stock, (model.stock_item, model.stock_warehouse, model.stock_quantity)))
    if any(entity.counterparty for entity in model.documents.values()):
        result.append(Need(model.counterparties, ("Ref_Key", "Description")))
    if model.line_unit and _lines_name_units(model, metadata):
        coefficient = (model.unit_coefficient, model.unit_coefficient_denominator)
        result.append(Need(model.line_units, ("Ref_Key", "Description", *(f for f in coefficient if f))))
    for entity in model.documents.values():
        result += _document_needs(model, entity)
    return result


def _document_needs(model: OdataModel, entity: DocumentEntity) -> list[Need]:
    header = [entity.warehouse, entity.warehouse_to, entity.counterparty, entity.comment, entity.lines]
    lines = [model.line_item, entity.quantity or model.line_quantity, entity.book_quantity]
    if entity.priced:
        lines += [model.line_price, model.line_total]
    return [
        Need(entity.entity_set, ("Ref_Key", "Number", "Date", "Posted", "DeletionMark", *_present(header))),
        Need(entity.entity_set, ("LineNumber", *_present(lines)), lines=entity.lines),
    ]


def _lines_name_units(model: OdataModel, metadata: Metadata) -> bool:
    return any(
        model.line_unit in (metadata.line_fields(entity.entity_set, entity.lines) or ())
        for entity in model.documents.values()
    )


def _present(names: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class Fit:
    """How one candidate model fits a base: the share of its names published, and what is missing."""

    name: str
    found: int
    wanted: int
    missing: tuple[str, ...]

    @property
    def share(self) -> float:
        return self.found / self.wanted if self.wanted else 1.0


def fit(name: str, model: OdataModel, metadata: Metadata) -> Fit:
    """Check every name `model` reads against `metadata`; a missing entity set counts with all its fields."""
    found, wanted, missing = 0, 0, []
    for need in needs(model, metadata):
        fields = (
            metadata.line_fields(need.entity_set, need.lines) if need.lines else metadata.fields_of(need.entity_set)
        )
        wanted += 1 + len(need.fields)
        if fields is None:
            missing.append(f"{need.label()} (not published)")
            continue
        absent = [f for f in need.fields if not _has(fields, f)]
        found += 1 + len(need.fields) - len(absent)
        if absent:
            missing.append(f"{need.label()}: {', '.join(absent)}")
    return Fit(name, found, wanted, tuple(dict.fromkeys(missing)))


def _has(fields: frozenset[str], name: str) -> bool:
    """A register's `<resource>Balance` is its resource in the record type."""
    return name in fields or (name.endswith("Balance") and name.removesuffix("Balance") in fields)


def candidates(configured: Path | None) -> Iterator[tuple[str, OdataModel]]:
    """The defaults, every shipped model, and the configured model file (ONEC_ODATA_MODEL) if it is another."""
    yield _STANDARD, OdataModel()
    shipped = sorted(SHIPPED_MODELS.glob("*.toml"))
    for path in shipped:
        yield path.stem, OdataModel.load(path)
    if configured is not None and configured.resolve() not in {p.resolve() for p in shipped}:
        yield f"ONEC_ODATA_MODEL ({configured})", OdataModel.load(configured)


def inspect(metadata: Metadata, configured: Path | None = None) -> list[Fit]:
    """Every candidate's fit, best first (ties: the order of `candidates`)."""
    fits = [fit(name, model, metadata) for name, model in candidates(configured)]
    return sorted(fits, key=lambda f: -f.share)


def report(metadata: Metadata, fits: list[Fit]) -> str:
    """The text `onec-etl odata inspect` prints."""
    best = fits[0]
    lines = [f"$metadata: {len(metadata.entity_sets)} entity sets, {len(metadata.types)} types", ""]
    lines += [f"  {f.share:6.1%}  {f.name}  ({f.found} of {f.wanted} names published)" for f in fits]
    lines += ["", f"Best fit: {best.name}"]
    if best.name in {path.stem for path in SHIPPED_MODELS.glob("*.toml")}:
        lines.append(f"  use it with ONEC_ODATA_MODEL={best.name}")
    if best.missing:
        lines.append("Missing from this base (publish it, or name what the base has in a model file):")
        lines += [f"  - {item}" for item in best.missing]
    else:
        lines.append("Everything it reads is published.")
    return "\n".join(lines) + "\n"
