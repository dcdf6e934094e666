"""From the records of an import file to what will be sent and what will not (and why).

Why validate everything before sending anything: a document 1C half-accepts is worse than one never sent, and a
user wants the full list of problems in the file at once. The rules are the warehouse's own (onec/validation.py:
types, required fields, totals, known statuses) plus the ones only an import has: one header per document number
(fields repeated on each line must agree) and no number twice in a file. Invalid documents are reported with
their reasons and never sent; the valid ones go on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import polars as pl

from onec.normalize import raw_json
from onec.push.content import DocumentContent, OutgoingDocument, outgoing_documents
from onec.push.readers import GOODS, key_text
from onec.schema import document_type
from onec.validation import check_documents, check_goods

EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(3000, 1, 1)
"""Import files are not extracts of a date range: any plausible date is accepted."""


@dataclass(frozen=True)
class Rejection:
    """A document (or goods row) that will not be sent: its key, every reason, the record as the file had it."""

    key: str
    reason: str
    raw: str
    outcome: str = "invalid"


@dataclass(frozen=True)
class ImportPlan:
    """Everything an import will send (`outgoing`, in the order read) and everything it will not (`rejected`)."""

    kind: str
    outgoing: list[OutgoingDocument]
    rejected: list[Rejection]

    @property
    def records(self) -> int:
        return len(self.outgoing) + len(self.rejected)


def plan_import(records: Sequence[Any], kind: str, *, timezone: str, run_id: str) -> ImportPlan:
    """Validate the records of one file of `kind` (a document type slug, or "goods")."""
    if kind == GOODS:
        return _plan_goods(records, timezone=timezone, run_id=run_id)
    return _plan_documents(records, kind, timezone=timezone, run_id=run_id)


def _plan_documents(records: Sequence[Any], kind: str, *, timezone: str, run_id: str) -> ImportPlan:
    doc_kind = document_type(kind)
    prepared = [_as_draft(record) for record in records]
    checked = check_documents(
        prepared, doc_type=kind, date_from=EARLIEST, date_to=LATEST, timezone=timezone, run_id=run_id, source="import"
    )
    assert checked.documents is not None and checked.lines is not None
    extra = _import_rules(records)
    rejected = _rejections(checked.rejected, extra)
    refused = {r.key for r in rejected}
    documents = checked.documents.filter(~pl.col("number").is_in(list(refused)))
    lines = checked.lines.filter(~pl.col("number").is_in(list(refused)))
    return ImportPlan(kind, list(outgoing_documents(doc_kind, documents, lines)), rejected)


def _as_draft(record: Any) -> Any:
    """An import creates drafts: a document with neither `status` nor `posted` is a draft, not a missing
    status (posting is the import's `post` option, after creation)."""
    if isinstance(record, dict) and key_text(record.get("status")) is None and key_text(record.get("posted")) is None:
        return {**record, "status": "draft"}
    return record


def _import_rules(records: Sequence[Any]) -> dict[str, list[str]]:
    """Reasons per number from the rules only an import has."""
    reasons: dict[str, list[str]] = {}
    numbers = Counter(key_text(r.get("number")) for r in records if isinstance(r, dict))
    for record in records:
        if not isinstance(record, dict):
            continue
        number = key_text(record.get("number"))
        if number and numbers[number] > 1:
            reasons.setdefault(number, []).append(f"number {number} appears {numbers[number]} times in the file")
        for field, values in sorted(record.get("_header_conflicts", {}).items()):
            shown = " vs ".join(sorted(values))
            reasons.setdefault(number or "", []).append(f"{field}: differs between the document's lines ({shown})")
    return reasons


def _rejections(rejected: pl.DataFrame, extra: dict[str, list[str]]) -> list[Rejection]:
    """Validation's rejects plus the import rules' (merged per number, reasons joined)."""
    result: dict[str, Rejection] = {}
    anonymous = 0
    for key, reason, raw in rejected.select("record_key", "reason", "raw").iter_rows():
        if key is None:
            anonymous += 1
            key = f"(no number, record {anonymous})"
        earlier = [result[key].reason] if key in result else []
        joined = "; ".join([*earlier, reason, *extra.pop(key, [])])
        result[key] = Rejection(key, joined, result[key].raw if earlier else raw)
    for key, reasons in extra.items():
        result[key] = Rejection(key, "; ".join(dict.fromkeys(reasons)), "")
    return list(result.values())


def _plan_goods(records: Sequence[Any], *, timezone: str, run_id: str) -> ImportPlan:
    """Goods rows: the warehouse's goods rules, plus one row per (sku, warehouse) in a file."""
    checked = check_goods(records, snapshot_date=dt.date.today(), timezone=timezone, run_id=run_id, source="import")
    assert checked.goods is not None
    rejected = [
        Rejection(key or "(no sku)", reason, raw)
        for key, reason, raw in checked.rejected.select("record_key", "reason", "raw").iter_rows()
    ]
    goods = checked.goods.with_columns(pl.concat_str(["sku", "warehouse"], separator="|").alias("_key"))
    repeated = goods.filter(pl.len().over("_key") > 1)
    for key, count in repeated.group_by("_key", maintain_order=True).len().iter_rows():
        rows = [raw_json(r) for r in repeated.filter(pl.col("_key") == key).drop("_key").to_dicts()]
        rejected.append(Rejection(key, f"(sku, warehouse) {key} appears {count} times in the file", rows[0]))
    unique = goods.filter(pl.len().over("_key") == 1)
    return ImportPlan(GOODS, [_outgoing_good(row) for row in unique.iter_rows(named=True)], rejected)


def _outgoing_good(row: dict[str, Any]) -> OutgoingDocument:
    """A goods row as `POST goods/batch` takes it: only the fields the file gave (absent ones are left alone)."""
    body: dict[str, Any] = {"sku": row["sku"], "warehouse": row["warehouse"]}
    for name in ("name", "quantity", "unit", "price", "code"):
        value = row[name]
        if value is not None:
            body[name] = orjson.Fragment(str(value)) if isinstance(value, Decimal) else value
    if row["deleted"]:
        body["deleted"] = True
    encoded = orjson.dumps(body)
    content = DocumentContent(row["_key"], _digest(encoded), 1, row["quantity"] or Decimal(0), Decimal(0))
    return OutgoingDocument(content, encoded)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
