"""Check one page of 1C records and split it into canonical frames and rejected rows.

Why here and not in the readers: every source (JSON pages, CSV, XML, OData) must obey the same rules, and a
record that breaks one must land in `rejected_rows` with every reason and exactly what 1C sent, never be
dropped or half-loaded. Uniqueness is not checked here (a page does not see the rest of the extract); the
landing does.

Speed: every rule is a (condition, message) pair; conditions run vectorised over all rows, messages only over
the few rows that failed.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import Any

import polars as pl

from onec.normalize import (
    BATCH_ENGINE,
    Check,
    Column,
    Kind,
    failed,
    join_problems,
    named_text,
    parse,
    problems,
    raw_json,
    text_frame,
)
from onec.rules import DEFAULT_RULES, Rule, ValidationRules
from onec.schema import (
    COEFFICIENT,
    MONEY,
    PRICE,
    QUANTITY,
    DocumentType,
    document_lines_schema,
    document_type,
    documents_schema,
    goods_schema,
    rejected_rows_schema,
)
from onec.sources.typing import (
    ITEM_COUNT,
    MALFORMED_REASON,
    OWNER,
    RAW_TEXT,
    SOURCE_LINE,
    NamedRecords,
    RecordKeys,
    SourceBatch,
    TextRecords,
)

STATUSES = ("draft", "posted")

_GOODS_COLUMNS = (
    Column("sku", Kind.TEXT),
    Column("warehouse", Kind.TEXT),
    Column("name", Kind.TEXT),
    Column("quantity", Kind.DECIMAL, QUANTITY),
    Column("unit", Kind.TEXT),
    Column("price", Kind.DECIMAL, PRICE),
    Column("id", Kind.TEXT),
    Column("code", Kind.TEXT),
    Column("deleted", Kind.BOOLEAN, pl.Boolean()),
    Column("modified_at", Kind.INSTANT),
)
_HEADER_COLUMNS = (
    Column("id", Kind.TEXT),
    Column("number", Kind.TEXT),
    Column("date", Kind.INSTANT),
    Column("status", Kind.TEXT),
    Column("posted", Kind.BOOLEAN, pl.Boolean()),
    Column("counterparty", Kind.TEXT),
    Column("warehouse", Kind.TEXT),
    Column("warehouse_to", Kind.TEXT),
    Column("notes", Kind.TEXT),
    Column("deleted", Kind.BOOLEAN, pl.Boolean()),
    Column("modified_at", Kind.INSTANT),
)
_LINE_COLUMNS = (
    Column("line", Kind.INTEGER, pl.Int32()),
    Column("sku", Kind.TEXT),
    Column("name", Kind.TEXT),
    Column("quantity", Kind.DECIMAL, QUANTITY),
    Column("unit_price", Kind.DECIMAL, PRICE),
    Column("total", Kind.DECIMAL, MONEY),
    Column("book_quantity", Kind.DECIMAL, QUANTITY),
    Column("line_unit", Kind.TEXT),
    Column("unit_coefficient", Kind.DECIMAL, COEFFICIENT),
)


@dataclass(frozen=True)
class CheckedBatch:
    """One checked page: the canonical frames of the records that passed, and the ones that did not.

    A frame is None when the batch is not about that entity (goods vs documents). `line_document_rows`
    gives, for each row of `lines`, the row of its document in `documents`; the landing needs it only when one
    batch holds the same document number twice (lines cannot then be told apart by number).
    """

    goods: pl.DataFrame | None
    documents: pl.DataFrame | None
    lines: pl.DataFrame | None
    rejected: pl.DataFrame
    line_document_rows: pl.Series | None = None
    notes: Mapping[str, int] = field(default_factory=dict)
    """Rows that passed with a note (odd but real 1C data), counted per rule (`onec.rules.Rule`); zero counts
    are left out."""


CANONICAL_KEYS = RecordKeys(
    goods={c.name: c.name for c in _GOODS_COLUMNS},
    header={c.name: c.name for c in _HEADER_COLUMNS},
    line={c.name: c.name for c in _LINE_COLUMNS},
    items="items",
)
"""The exchange service's JSON records (§1.3): fields under their canonical names."""


@dataclass(frozen=True)
class GoodsScope:
    """What a goods batch is checked as: positions of the snapshot of `snapshot_date`."""

    snapshot_date: dt.date


@dataclass(frozen=True)
class DocumentsScope:
    """What a documents batch is checked as: documents of `doc_type` dated [date_from, date_to)."""

    doc_type: str
    date_from: dt.date
    date_to: dt.date


def check(
    batch: SourceBatch,
    scope: GoodsScope | DocumentsScope,
    *,
    timezone: str,
    run_id: str,
    source: str = "json",
    rules: ValidationRules = DEFAULT_RULES,
) -> CheckedBatch:
    """The one entry point for a source's batch: the batch's type picks the reader (a text frame, or records) and
    the scope the entity's rules, so callers need not know which kind of source they hold."""
    if isinstance(scope, GoodsScope):
        day = scope.snapshot_date
        if isinstance(batch, TextRecords):
            return check_goods_text(
                batch, snapshot_date=day, timezone=timezone, run_id=run_id, source=source, rules=rules
            )
        return check_goods(batch, snapshot_date=day, timezone=timezone, run_id=run_id, source=source, rules=rules)
    kind, start, end = scope.doc_type, scope.date_from, scope.date_to
    if isinstance(batch, TextRecords):
        return check_documents_text(
            batch,
            doc_type=kind,
            date_from=start,
            date_to=end,
            timezone=timezone,
            run_id=run_id,
            source=source,
            rules=rules,
        )
    return check_documents(
        batch, doc_type=kind, date_from=start, date_to=end, timezone=timezone, run_id=run_id, source=source, rules=rules
    )


def _goods_sources(keys: RecordKeys) -> dict[str, tuple[str, ...]]:
    return {c.name: (keys.goods[c.name],) for c in _GOODS_COLUMNS}


def _header_sources(kind: DocumentType, keys: RecordKeys) -> dict[str, tuple[str, ...]]:
    """Where each header column is; the counterparty also under the name its document type gives it (supplier,
    customer)."""
    sources: dict[str, tuple[str, ...]] = {c.name: (keys.header[c.name],) for c in _HEADER_COLUMNS}
    if kind.counterparty_field:
        sources["counterparty"] = (kind.counterparty_field, keys.header["counterparty"])
    return sources


def _line_sources(keys: RecordKeys) -> dict[str, tuple[str, ...]]:
    return {c.name: (keys.line[c.name],) for c in _LINE_COLUMNS}


def _named_document_text(batch: NamedRecords, kind: DocumentType) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The header and line text frames `_checked_documents` reads, from a batch's columns (no record is a dict
    again: a named batch is laid out by its reader, so it has no structural problems)."""
    header_text = _with_structure(named_text(batch.records, _header_sources(kind, batch.keys)), None)
    counts = batch.records.get_column(ITEM_COUNT) if ITEM_COUNT in batch.records.columns else None
    header_text = header_text.with_columns(
        pl.lit(None, pl.Int64).alias(ITEM_COUNT) if counts is None else counts.cast(pl.Int64)
    )
    lines = batch.lines if batch.lines is not None else pl.DataFrame(schema={OWNER: pl.UInt32})
    line_text = _with_structure(named_text(lines, _line_sources(batch.keys)), None).rename({"_i": "_n"})
    return header_text, line_text.with_columns(lines.get_column(OWNER).cast(pl.UInt32).alias("_i"))


def _with_file_lines(bad: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Reasons that name the file line where each failing record starts (`_i`: its row in `records`)."""
    lines = records.get_column(SOURCE_LINE).gather(bad.get_column("_i"))
    reason = pl.col("_reason")
    return bad.with_columns(
        pl.when(lines.is_not_null()).then(pl.format("{} (file line {})", reason, lines)).otherwise(reason)
    )


def _named_raws(batch: NamedRecords, rows: pl.Series) -> pl.Series:
    """The failing records (`rows` of `records`) as JSON under the file's names, lines under the items key: what
    the file held for them, rebuilt from their columns (an absent field and an empty element both show as
    absent)."""
    wanted = rows.to_list()
    records = batch.records.drop(SOURCE_LINE, ITEM_COUNT, strict=False)[wanted].iter_rows(named=True)
    texts = [{name: value for name, value in record.items() if value is not None} for record in records]
    if batch.lines is not None and ITEM_COUNT in batch.records.columns:
        items: dict[int, list[dict[str, Any]]] = {row: [] for row in wanted}
        for line in batch.lines.filter(pl.col(OWNER).is_in(wanted)).iter_rows(named=True):
            items[line.pop(OWNER)].append({name: value for name, value in line.items() if value is not None})
        for text, row in zip(texts, wanted, strict=True):
            text[batch.keys.items] = items[row]
    return pl.Series([raw_json(text) for text in texts], dtype=pl.String)


def check_goods(
    batch: Sequence[Mapping[str, Any]] | NamedRecords,
    *,
    snapshot_date: dt.date,
    timezone: str,
    run_id: str,
    source: str = "json",
    rules: ValidationRules = DEFAULT_RULES,
) -> CheckedBatch:
    """Goods positions of one snapshot: sku, name, warehouse and a numeric quantity are required (an item with
    no stock anywhere comes without a warehouse, quantity 0)."""
    if isinstance(batch, NamedRecords):
        text = _with_structure(named_text(batch.records, _goods_sources(batch.keys)), None)
        good, bad, notes = _checked_goods(text, snapshot_date, timezone, rules)
        bad = _with_file_lines(bad, batch.records)
        raws = _named_raws(batch, bad["_i"])
    else:
        rows, structure = _as_rows(batch)
        text = _with_structure(text_frame(rows, _goods_sources(CANONICAL_KEYS)), structure)
        good, bad, notes = _checked_goods(text, snapshot_date, timezone, rules)
        raws = pl.Series([raw_json(batch[i]) for i in bad["_i"].to_list()], dtype=pl.String)
    return CheckedBatch(
        goods=good,
        documents=None,
        lines=None,
        rejected=_rejected(bad, raws, entity="goods", doc_type=None, source=source, run_id=run_id),
        notes=notes,
    )


def check_goods_text(
    records: TextRecords,
    *,
    snapshot_date: dt.date,
    timezone: str,
    run_id: str,
    source: str,
    rules: ValidationRules = DEFAULT_RULES,
) -> CheckedBatch:
    """`check_goods` for a text frame: the same rules; a rejected row keeps its text and its line in the file."""
    frame = _with_text_columns(records.frame, [c.name for c in _GOODS_COLUMNS])
    text = _with_structure(frame, None)
    good, bad, notes = _checked_goods(text, snapshot_date, timezone, rules)
    bad = bad.join(text.select("_i", SOURCE_LINE, RAW_TEXT), on="_i", how="left", maintain_order="left")
    bad = bad.with_columns(pl.format("{} (file line {})", "_reason", SOURCE_LINE).alias("_reason"))
    rejected = [
        _rejected(bad, bad[RAW_TEXT], entity="goods", doc_type=None, source=source, run_id=run_id),
        _malformed_rejects(
            records.malformed, snapshot_date, entity="goods", doc_type=None, source=source, run_id=run_id
        ),
    ]
    return CheckedBatch(goods=good, documents=None, lines=None, rejected=pl.concat(rejected), notes=notes)


def _checked_goods(
    text: pl.DataFrame, snapshot_date: dt.date, timezone: str, rules: ValidationRules
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """(canonical goods that passed, `_i`/record_key/partition_date/`_reason` of those that did not, notes)."""
    plan = _goods_plan(rules)
    checks, judged = plan.checks, plan.judged
    checked = (
        parse(text, _GOODS_COLUMNS, timezone)
        .with_columns(pl.col("deleted").fill_null(False), pl.lit(snapshot_date, pl.Date).alias("snapshot_date"))
        .with_columns(plan.bad)
        .collect(engine=BATCH_ENGINE)
    )
    passed = checked.filter(~pl.col("_bad"))
    bad = _reasons(checked.filter(pl.col("_bad")), checks).select(
        "_i",
        pl.concat_str([pl.col("sku").fill_null(""), pl.col("warehouse").fill_null("")], separator="|").alias(
            "record_key"
        ),
        pl.lit(snapshot_date, pl.Date).alias("partition_date"),
        "_reason",
    )
    return _conform(passed, goods_schema(timezone)), bad, _counted(passed, judged, rules)


@functools.lru_cache(maxsize=16)
def _goods_plan(rules: ValidationRules) -> _Plan:
    """`_checked_goods`' expressions."""
    col, zero = pl.col, pl.lit(Decimal(0))
    no_stock = col("warehouse").is_null() & ~col("warehouse__bad") & (col("quantity") == zero)
    judged = (
        _Judged(
            Rule.ITEM_WITHOUT_STOCK,
            no_stock,
            pl.lit("warehouse: required (an item without stock anywhere, quantity 0)"),
        ),
        _Judged(
            Rule.NEGATIVE_STOCK,
            col("quantity") < zero,
            pl.format("quantity: below zero, got {} (negative stock)", col("quantity")),
        ),
        _Judged(Rule.ZERO_PRICE, col("price") == zero, pl.lit("price: zero")),
    )
    checks = (
        *problems(_GOODS_COLUMNS),
        *(_required(name) for name in ("sku", "name", "quantity")),
        (col("warehouse").is_null() & ~col("warehouse__bad") & ~no_stock, pl.lit("warehouse: required")),
        *_rejecting(judged, rules),
    )
    return _Plan((), checks, judged)


def check_documents(
    batch: Sequence[Mapping[str, Any]] | NamedRecords,
    *,
    doc_type: str,
    date_from: dt.date,
    date_to: dt.date,
    timezone: str,
    run_id: str,
    source: str = "json",
    rules: ValidationRules = DEFAULT_RULES,
) -> CheckedBatch:
    """Documents of one type extracted for [date_from, date_to).

    A document with any bad line is rejected whole (one rejected row, the raw being the whole document): a
    partial document in the warehouse would be worse than none.
    """
    kind = document_type(doc_type)
    window = (date_from, date_to)
    if isinstance(batch, NamedRecords):
        header_text, line_text = _named_document_text(batch, kind)
        good, good_lines, bad, notes = _checked_documents(header_text, line_text, kind, window, timezone, False, rules)
        bad = _with_file_lines(bad, batch.records)
        raws = _named_raws(batch, bad["_i"])
    else:
        rows, structure = _as_rows(batch)
        items, owners, item_structure, counts = _flatten_items(rows, CANONICAL_KEYS.items)
        header_text = _with_structure(text_frame(rows, _header_sources(kind, CANONICAL_KEYS)), structure)
        header_text = header_text.with_columns(pl.Series(ITEM_COUNT, counts, dtype=pl.Int64))
        line_text = _with_structure(text_frame(items, _line_sources(CANONICAL_KEYS)), item_structure)
        line_text = line_text.rename({"_i": "_n"}).with_columns(pl.Series("_i", owners, dtype=pl.UInt32))
        good, good_lines, bad, notes = _checked_documents(header_text, line_text, kind, window, timezone, False, rules)
        raws = pl.Series([raw_json(batch[i]) for i in bad["_i"].to_list()], dtype=pl.String)
    rejected = _rejected(bad, raws, entity="documents", doc_type=doc_type, source=source, run_id=run_id)
    return _documents_batch(good, good_lines, rejected, doc_type, timezone, notes)


def check_documents_text(
    records: TextRecords,
    *,
    doc_type: str,
    date_from: dt.date,
    date_to: dt.date,
    timezone: str,
    run_id: str,
    source: str,
    rules: ValidationRules = DEFAULT_RULES,
) -> CheckedBatch:
    """`check_documents` for a text frame of document lines (header fields repeated on every line).

    The rows sharing a number (without one: sharing an Id) form one document; its header is taken from its first
    row, and header fields that differ between its rows reject it (which row would be right?). A rejected
    document keeps the text of all its rows and the lines of the file they came from.
    """
    kind = document_type(doc_type)
    names = [c.name for c in _HEADER_COLUMNS] + [c.name for c in _LINE_COLUMNS if c.name not in ("sku", "name")]
    frame = _with_text_columns(records.frame, [*dict.fromkeys([*names, "sku", "name"])])
    frame = _documents_in_order(frame)
    header_text = _document_headers(frame, [c.name for c in _HEADER_COLUMNS])
    line_text = frame.select(
        "_i", *(c.name for c in _LINE_COLUMNS), pl.lit(None, pl.String).alias("_structure")
    ).with_row_index("_n")
    window = (date_from, date_to)
    good, good_lines, bad, notes = _checked_documents(header_text, line_text, kind, window, timezone, True, rules)
    bad = bad.join(
        header_text.select("_i", "_first_file_line", "_last_file_line"), on="_i", how="left", maintain_order="left"
    ).with_columns(
        pl.when(pl.col("_first_file_line") == pl.col("_last_file_line"))
        .then(pl.format("{} (file line {})", "_reason", "_first_file_line"))
        .otherwise(pl.format("{} (file lines {}-{})", "_reason", "_first_file_line", "_last_file_line"))
        .alias("_reason")
    )
    raws = bad.select("_i").join(
        frame.filter(pl.col("_i").is_in(bad["_i"].implode())).group_by("_i").agg(pl.col(RAW_TEXT).str.join("\n")),
        on="_i",
        how="left",
        maintain_order="left",
    )[RAW_TEXT]
    rejected = pl.concat(
        [
            _rejected(bad, raws, entity="documents", doc_type=doc_type, source=source, run_id=run_id),
            _malformed_rejects(
                records.malformed, date_from, entity="documents", doc_type=doc_type, source=source, run_id=run_id
            ),
        ]
    )
    return _documents_batch(good, good_lines, rejected, doc_type, timezone, notes)


def _documents_in_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The text frame with `_row` (its order in the file) and `_i` (its document: rows sharing a number, or
    without one an Id), sorted by document then row.

    A document's rows are normally consecutive, and then `_i` is just a count of key changes, with no sort;
    only a file that scatters a document's rows pays for ranking and sorting them together (the keys that
    start a run are then not all different). Only a batch with rows lacking a number builds other keys.
    """
    number = frame["number"].str.strip_chars()
    frame = frame.with_row_index("_row")
    key = number
    if number.null_count() or (number == "").any():
        document_id = pl.col("id").str.strip_chars()
        key = frame.select(
            pl.coalesce(
                pl.when(number != "").then(number),
                pl.format("\x00id {}", pl.when(document_id != "").then(document_id)),
                pl.format("\x00row {}", "_row"),
            )
        ).to_series()
    starts = key.ne_missing(key.shift(1))
    document = (starts.cum_sum() - 1).cast(pl.UInt32)
    runs = frame.with_columns(key.alias("_key"), document.alias("_i"))
    if runs.is_empty() or document[-1] + 1 == key.filter(starts).n_unique():
        return runs
    first_row = pl.col("_row").min().over("_key")
    return runs.with_columns((first_row.rank("dense") - 1).cast(pl.UInt32).alias("_i")).sort("_i", "_row")


def _document_headers(frame: pl.DataFrame, header_names: list[str]) -> pl.DataFrame:
    """One row per document of a frame from `_documents_in_order`: the header fields of its first row, `_items`
    (its rows), its first and last file line, and `_differing` (the header fields its rows disagree on)."""
    document = pl.col("_i")
    continues = document == document.shift(1)
    last_lines = frame.select(SOURCE_LINE, "_i").filter(document.ne_missing(document.shift(-1)))[SOURCE_LINE]
    starts = (
        frame.select("_i", *header_names, pl.col(SOURCE_LINE).alias("_first_file_line"))
        .with_row_index("_position")
        .filter(~continues.fill_null(False))
    )
    position = pl.col("_position").cast(pl.Int64)
    headers = starts.select(
        "_i",
        *header_names,
        "_first_file_line",
        (position.shift(-1, fill_value=frame.height) - position).alias("_items"),
        last_lines.alias("_last_file_line"),
        pl.lit("").alias("_differing"),
        pl.lit(None, pl.String).alias("_structure"),
    )
    differs = [(continues & pl.col(name).ne_missing(pl.col(name).shift(1))).alias(name) for name in header_names]
    changes = frame.select("_i", *differs).filter(pl.any_horizontal(header_names))
    if changes.is_empty():
        return headers
    differing = changes.group_by("_i").agg(
        pl.concat_str(
            [pl.when(pl.col(name).any()).then(pl.lit(name)) for name in header_names], separator=", ", ignore_nulls=True
        ).alias("_found")
    )
    return (
        headers.join(differing, on="_i", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_found", "_differing").alias("_differing"))
        .drop("_found")
    )


def _checked_documents(
    header_text: pl.DataFrame,
    line_text: pl.DataFrame,
    kind: DocumentType,
    window: tuple[dt.date, dt.date],
    timezone: str,
    repeated_headers: bool,
    rules: ValidationRules,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """(headers that passed with `_row`, their lines, `_i`/record_key/partition_date/`_reason` of the rest, the
    notes of what passed).

    `header_text` has the header columns, `_i`, `_items` (lines per document) and `_structure`, and with
    `repeated_headers` (a text file repeating the header on each of a document's rows) `_differing`; `line_text`
    the line columns, `_n` (its row), `_i` (its document) and `_structure`, ordered by document.
    """
    header, header_checks, header_judged = _header(header_text, kind, window, timezone, repeated_headers, rules)
    lines, line_checks, line_judged = _lines(line_text, kind, rules)
    bad_docs = lines.filter(pl.col("_bad"))["_i"].unique()
    header = header.with_columns(pl.col("_bad") | pl.col("_i").is_in(bad_docs.implode()))
    good = header.filter(~pl.col("_bad")).with_row_index("_row")
    good_lines = lines.join(
        good.select("_i", "_row", "number", "doc_date"), on="_i", how="inner", maintain_order="left"
    )
    bad = _document_rejects(
        header.filter(pl.col("_bad")), lines.filter(pl.col("_bad")), header_checks, line_checks, window
    )
    notes = Counter(_counted(good, header_judged, rules)) + Counter(_counted(good_lines, line_judged, rules))
    return good, good_lines, bad, dict(notes)


def _documents_batch(
    good: pl.DataFrame,
    good_lines: pl.DataFrame,
    rejected: pl.DataFrame,
    doc_type: str,
    timezone: str,
    notes: dict[str, int],
) -> CheckedBatch:
    return CheckedBatch(
        goods=None,
        documents=_conform(good.with_columns(pl.lit(doc_type).alias("doc_type")), documents_schema(timezone)),
        lines=_conform(good_lines.with_columns(pl.lit(doc_type).alias("doc_type")), document_lines_schema()),
        rejected=rejected,
        line_document_rows=good_lines["_row"].cast(pl.Int64).rename("line_document_rows"),
        notes=notes,
    )


def _header(
    text: pl.DataFrame,
    kind: DocumentType,
    window: tuple[dt.date, dt.date],
    timezone: str,
    repeated_headers: bool,
    rules: ValidationRules,
) -> tuple[pl.DataFrame, Sequence[Check], Sequence[_Judged]]:
    """Typed headers with `_i` (record index), `_bad`, the checks that explain `_bad`, and the judged rules."""
    plausible = rules.plausible_window(timezone)
    plan = _header_plan(kind, window, plausible, timezone, repeated_headers, rules)
    typed = parse(text, _HEADER_COLUMNS, timezone).with_columns(plan.derived)
    return typed.with_columns(plan.bad).collect(engine=BATCH_ENGINE), plan.checks, plan.judged


@dataclass(frozen=True)
class _Plan:
    """The expressions that check one kind of row: columns derived from the typed ones, the checks, the judged
    rules, and `_bad`. Built once per distinct set of arguments (`functools.lru_cache`), since every batch of a
    run is checked with the same ones and building them in Python costs a good part of checking a batch."""

    derived: tuple[pl.Expr, ...]
    checks: tuple[Check, ...]
    judged: tuple[_Judged, ...]

    @functools.cached_property
    def bad(self) -> pl.Expr:
        return _failed(self.checks)


@functools.lru_cache(maxsize=64)
def _header_plan(
    kind: DocumentType,
    window: tuple[dt.date, dt.date],
    plausible: tuple[dt.date, dt.date],
    timezone: str,
    repeated_headers: bool,
    rules: ValidationRules,
) -> _Plan:
    """`_header`'s expressions; `plausible` is `rules.plausible_window` for the day they check on."""
    col = pl.col
    status = col("status").str.to_lowercase()
    known = status.is_in(STATUSES)
    from_posted = pl.when(col("posted")).then(pl.lit("posted")).when(col("posted").not_()).then(pl.lit("draft"))
    derived = (
        pl.coalesce(pl.when(known).then(status), from_posted).alias("status"),
        pl.coalesce(col("posted"), pl.when(known).then(status == "posted")).alias("posted"),
        col("status").alias("_status_text"),
        col("deleted").fill_null(False),
        col("date").dt.date().alias("doc_date"),
        (col("_items").fill_null(0).cum_sum() - col("_items").fill_null(0)).alias("_first_line"),
    )
    date_from, date_to = window
    earliest, latest = plausible
    implausible = ~col("doc_date").is_between(earliest, latest, closed="both")
    checks = [
        *((_DIFFERING_ROWS,) if repeated_headers else ()),
        *problems([c for c in _HEADER_COLUMNS if c.name != "counterparty"]),
        *(_required(name) for name in ("number", "date", *(("warehouse",) if kind.warehouse_required else ()))),
        (col("_items").is_null(), pl.lit("items: expected a list of lines")),
        (col("_items") == 0, pl.lit("no lines")),
        (
            col("_status_text").is_not_null() & ~col("_status_text").str.to_lowercase().is_in(STATUSES),
            pl.format("status: must be draft or posted, got '{}'", col("_status_text")),
        ),
        (col("status").is_null() & ~col("posted__bad"), pl.lit("status: required")),
        (
            col("_status_text").is_not_null() & ((col("status") == "posted") != col("posted")),
            pl.format("status '{}' disagrees with posted={}", col("status"), col("posted")),
        ),
        (
            implausible,
            pl.format(f"date {{}} is outside the plausible window {earliest}…{latest}", col("doc_date")),
        ),
        (
            ~implausible & ~col("doc_date").is_between(date_from, date_to, closed="left"),
            pl.format(f"date: day {{}} is outside the requested range [{date_from}, {date_to})", col("doc_date")),
        ),
    ]
    label = kind.counterparty_field or "counterparty"
    checks += _renamed(problems([c for c in _HEADER_COLUMNS if c.name == "counterparty"]), label)
    judged = []
    if kind.counterparty_field:
        missing = col("counterparty").is_null() & ~col("counterparty__bad")
        judged.append(_Judged(Rule.NO_COUNTERPARTY, missing, pl.lit(f"{label}: required")))
    if kind.slug == "transfer":
        checks.append(_required("warehouse_to", "warehouse_to", " for a transfer"))
        checks.append((col("warehouse_to") == col("warehouse"), pl.lit("warehouse_to: same as warehouse")))
    checks += _rejecting(judged, rules)
    return _Plan(derived, tuple(checks), tuple(judged))


_DIFFERING_ROWS: Check = (
    pl.col("_differing") != "",
    pl.format("header fields differ between the document's rows: {}", "_differing"),
)
"""A text file repeats a document's header on each of its rows: rows that disagree reject it (which is right?)."""


def _lines(
    text: pl.DataFrame, kind: DocumentType, rules: ValidationRules
) -> tuple[pl.DataFrame, Sequence[Check], Sequence[_Judged]]:
    """Typed lines with `_i` (their document's record index), `_bad`, the checks that explain `_bad`, and the
    judged rules."""
    plan = _lines_plan(kind, rules)
    typed = parse(text, _LINE_COLUMNS, "UTC")
    return typed.with_columns(plan.bad).collect(engine=BATCH_ENGINE), plan.checks, plan.judged


@functools.lru_cache(maxsize=64)
def _lines_plan(kind: DocumentType, rules: ValidationRules) -> _Plan:
    """`_lines`' expressions.

    An empty tabular row (no item, quantity 0) is judged on its own and exempt from the item and quantity rules;
    a line without a price is one with neither unit_price nor total (one without the other is an error).
    """
    col = pl.col
    zero = pl.lit(Decimal(0))
    absent = {
        name: col(name).is_null() & ~col(f"{name}__bad") for name in ("sku", "unit_price", "total", "book_quantity")
    }
    empty = absent["sku"] & (col("quantity") == zero)
    empty_exempt = empty if rules.notes(Rule.EMPTY_LINE) else pl.lit(False)
    priceless = absent["unit_price"] & absent["total"]
    sign = "≥" if kind.has_book_quantity else ">"
    quantity_ok = col("quantity") >= zero if kind.has_book_quantity else col("quantity") > zero
    product = col("quantity") * col("unit_price")
    judged = [
        _Judged(Rule.EMPTY_LINE, empty, pl.lit("empty line: no item, quantity 0")),
        _Judged(Rule.LINE_WITHOUT_PRICE, priceless & ~empty, pl.lit("unit_price: required; total: required")),
        _Judged(Rule.ZERO_PRICE, (col("unit_price") == zero) & ~empty, pl.lit("unit_price: zero")),
        _Judged(
            Rule.TOTAL_MISMATCH,
            (col("total") - product).abs() > pl.lit(rules.total_tolerance) + _repricing_error(),
            pl.format("total {} ≠ quantity × unit_price = {}", col("total"), product),
        ),
    ]
    checks = [
        *problems(_LINE_COLUMNS),
        *(_required(name) for name in ("line", "quantity")),
        (absent["sku"] & ~empty_exempt, pl.lit("sku: required")),
        *((absent[name] & ~priceless, pl.lit(f"{name}: required")) for name in ("unit_price", "total")),
        (col("line") <= 0, pl.lit("line: must be positive")),
        (pl.len().over("_i", "line") > 1, pl.lit("line: number used twice in the document")),
        (~quantity_ok & ~empty_exempt, pl.format(f"quantity: must be {sign} 0, got {{}}", col("quantity"))),
        (col("unit_price") < zero, pl.format("unit_price: must be ≥ 0, got {}", col("unit_price"))),
    ]
    if kind.has_book_quantity:
        judged.append(
            _Judged(
                Rule.NEGATIVE_BOOK_QUANTITY,
                col("book_quantity") < zero,
                pl.format("book_quantity: below zero, got {} (negative stock)", col("book_quantity")),
            )
        )
        checks.append((absent["book_quantity"] & ~empty_exempt, pl.lit("book_quantity: required for an inventory")))
    checks += _rejecting(judged, rules)
    return _Plan((), tuple(checks), tuple(judged))


def _repricing_error() -> pl.Expr:
    """A line in packs whose price 1C keeps per pack carries a base-unit price rounded to the PRICE scale, so its
    quantity × unit_price may miss the total by up to half a price step per base unit (a pack of 12 at 100.00)."""
    half_step = Decimal(1).scaleb(-(PRICE.scale or 0)) / 2
    repriced = pl.col("unit_coefficient").is_not_null() & (pl.col("unit_coefficient") != pl.lit(Decimal(1)))
    return pl.when(repriced).then(pl.col("quantity").abs() * pl.lit(half_step)).otherwise(pl.lit(Decimal(0)))


def _document_rejects(
    header: pl.DataFrame,
    lines: pl.DataFrame,
    header_checks: Sequence[Check],
    line_checks: Sequence[Check],
    window: tuple[dt.date, dt.date],
) -> pl.DataFrame:
    """One row per failing document: its reasons, then each bad line's, prefixed with the line it is about."""
    if header.is_empty():
        return pl.DataFrame(
            schema={"_i": pl.UInt32, "record_key": pl.String, "partition_date": pl.Date, "_reason": pl.String}
        )
    position = pl.col("_n") - pl.col("_first_line") + 1
    line_reasons = (
        _reasons(
            lines.join(header.select("_i", "_first_line"), on="_i", how="inner", maintain_order="left"),
            line_checks,
        )
        .with_columns(
            pl.format(
                "line {}: {}",
                pl.coalesce(pl.col("line__raw").str.strip_chars(), pl.format("#{}", position)),
                pl.col("_reason"),
            ).alias("_reason")
        )
        .group_by("_i", maintain_order=True)
        .agg(pl.col("_reason").str.join("; ").alias("_line_reasons"))
    )
    date_from, _ = window
    return (
        _reasons(header, header_checks)
        .join(line_reasons, on="_i", how="left", maintain_order="left")
        .select(
            "_i",
            pl.col("number").alias("record_key"),
            pl.when(pl.col("doc_date").is_between(*window, closed="left"))
            .then(pl.col("doc_date"))
            .otherwise(pl.lit(date_from, pl.Date))
            .alias("partition_date"),
            pl.concat_str([pl.col("_reason"), pl.col("_line_reasons")], separator="; ", ignore_nulls=True).alias(
                "_reason"
            ),
        )
    )


@dataclass(frozen=True)
class _Judged:
    """A configurable rule (`onec.rules.Rule`) applied to typed rows: where it holds, and what a reject says."""

    rule: Rule
    condition: pl.Expr
    message: pl.Expr


def _rejecting(judged: Sequence[_Judged], rules: ValidationRules) -> list[Check]:
    """The checks of the judged rules configured to reject."""
    return [(j.condition, j.message) for j in judged if not rules.notes(j.rule)]


def _counted(passed: pl.DataFrame, judged: Sequence[_Judged], rules: ValidationRules) -> dict[str, int]:
    """How many rows that passed each noted rule holds for (rules that hold for none are left out)."""
    noted = [j for j in judged if rules.notes(j.rule)]
    if not noted or passed.is_empty():
        return {}
    counts = passed.select(j.condition.fill_null(False).sum().alias(j.rule.value) for j in noted).row(0, named=True)
    return {rule: int(count) for rule, count in counts.items() if count}


def _with_structure(text: pl.DataFrame, structure: list[str | None] | None) -> pl.DataFrame:
    """Add the record index and the structural problem (a record that is not an object, …) of each row."""
    problems = pl.lit(None, pl.String) if structure is None else pl.Series(structure, dtype=pl.String)
    return text.with_columns(problems.alias("_structure")).with_row_index("_i")


def _failed(checks: Sequence[Check]) -> pl.Expr:
    return failed([(pl.col("_structure").is_not_null(), pl.col("_structure")), *checks]).alias("_bad")


def _reasons(frame: pl.DataFrame, checks: Sequence[Check]) -> pl.DataFrame:
    """`_reason` for failing rows; a record that is not even an object gets only that, not a list of missing
    fields."""
    return frame.with_columns(pl.coalesce(pl.col("_structure"), join_problems(checks)).alias("_reason"))


def _required(name: str, label: str | None = None, context: str = "") -> Check:
    """`<field>: required` when the value is absent (not merely unreadable: that has its own message)."""
    return (
        pl.col(name).is_null() & ~pl.col(f"{name}__bad"),
        pl.lit(f"{label or name}: required{context}"),
    )


def _renamed(checks: list[Check], label: str) -> list[Check]:
    """Name the counterparty by the field 1C sends it in (supplier, customer)."""
    return [(cond, message.str.replace("counterparty:", f"{label}:", literal=True)) for cond, message in checks]


def _as_rows(records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Plain dicts to read fields from, and a structural problem per record (a page can hold garbage)."""
    rows: list[dict[str, Any]] = []
    problems: list[str | None] = []
    for record in records:
        if type(record) is dict:
            rows.append(record)
            problems.append(None)
        elif isinstance(record, Mapping):
            rows.append(dict(record))
            problems.append(None)
        else:
            rows.append({})
            problems.append(f"record: expected an object, got {type(record).__name__}")
    return rows, problems


def _flatten_items(
    rows: list[dict[str, Any]], key: str
) -> tuple[list[dict[str, Any]], list[int], list[str | None] | None, list[int | None]]:
    """All lines of all documents with their document's index, a structural problem per line (None when
    every line is an object, the normal case), and the number of lines per document (None when `items` is not
    a list: that is its own problem, not "no lines"). Bulk list operations keep this at C speed."""
    items: list[Any] = []
    owners: list[int] = []
    counts: list[int | None] = []
    for index, row in enumerate(rows):
        lines = row.get(key)
        if lines is None:
            lines = []
        elif type(lines) is not list:
            counts.append(None)
            continue
        items.extend(lines)
        owners.extend(repeat(index, len(lines)))
        counts.append(len(lines))
    if set(map(type, items)) <= {dict}:
        return items, owners, None, counts
    problems = [
        None if isinstance(line, Mapping) else f"expected an object, got {type(line).__name__}" for line in items
    ]
    plain = [line if type(line) is dict else dict(line) if isinstance(line, Mapping) else {} for line in items]
    return plain, owners, problems, counts


def _conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Exactly the canonical columns, in order, with the canonical dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _with_text_columns(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """The text frame with every canonical column present (an optional column the file lacks is all null)."""
    missing = [name for name in names if name not in frame.columns]
    return frame.with_columns(pl.lit(None, pl.String).alias(name) for name in missing)


def _malformed_rejects(
    malformed: pl.DataFrame, partition_date: dt.date, *, entity: str, doc_type: str | None, source: str, run_id: str
) -> pl.DataFrame:
    """Rows the reader could not split into fields: kept with their line, text and reason."""
    bad = malformed.select(
        pl.format("file line {}", SOURCE_LINE).alias("record_key"),
        pl.lit(partition_date, pl.Date).alias("partition_date"),
        pl.col(MALFORMED_REASON).alias("_reason"),
    )
    return _rejected(bad, malformed[RAW_TEXT], entity=entity, doc_type=doc_type, source=source, run_id=run_id)


def _rejected(
    bad: pl.DataFrame,
    raws: pl.Series,
    *,
    entity: str,
    doc_type: str | None,
    source: str,
    run_id: str,
) -> pl.DataFrame:
    """Rejected rows with the record exactly as 1C sent it (`raws`: one text per row of `bad`, built by the
    caller for the failing records only)."""
    return _conform(
        bad.with_columns(
            pl.lit(entity).alias("entity"),
            pl.lit(doc_type, pl.String).alias("doc_type"),
            pl.col("_reason").alias("reason"),
            raws.cast(pl.String).alias("raw"),
            pl.lit(source).alias("source"),
            pl.lit(run_id).alias("run_id"),
            pl.lit(dt.datetime.now(dt.UTC)).alias("rejected_at"),
        ),
        rejected_rows_schema(),
    )
