"""What a source hands over: one entity's records in a shape validation understands, defined apart from both.

A batch is either a list of records shaped like the exchange service's JSON (§1.3 of the contract: dicts, documents
with `items`), String frames that keep the field names of their file (UDE XML), or, for columnar sources such as the CSV
export, a text frame already named in canonical columns. The sources build these and `onec.validation.check` reads
them; keeping the types in this leaf module lets both import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

SOURCE_LINE = "_source_line"
"""Column of a text frame: the physical line of the file where the record starts (1-based, header included)."""
RAW_TEXT = "_raw_text"
"""Column of a text frame: the record exactly as the file spelled it, kept for rejected rows."""
MALFORMED_REASON = "_reason"
ITEM_COUNT = "_items"
"""Column of a named records frame of documents: how many lines the document has (its rows in `lines`)."""
OWNER = "_i"
"""Column of a named lines frame: the row of the line's document in the records frame."""


@dataclass(frozen=True)
class TextRecords:
    """Records of a text export (CSV) already split into fields: the path that never builds a dict per row.

    `frame` holds the canonical column names, every value a String as the file spelled it (absent optional
    columns may be missing), plus SOURCE_LINE and RAW_TEXT. `malformed` holds the rows that could not even be
    split into fields (SOURCE_LINE, RAW_TEXT, MALFORMED_REASON): they become rejected rows, never lost.
    Document-line frames hold one row per line with the header fields repeated; a document is all the rows that
    share a number, and must not be split across two batches.
    """

    frame: pl.DataFrame
    malformed: pl.DataFrame = field(default_factory=lambda: empty_malformed())

    def __len__(self) -> int:
        return self.frame.height + self.malformed.height


def empty_malformed() -> pl.DataFrame:
    return pl.DataFrame(schema={SOURCE_LINE: pl.Int64, RAW_TEXT: pl.String, MALFORMED_REASON: pl.String})


@dataclass(frozen=True)
class RecordKeys:
    """The key under which a record holds each canonical field, and its lines."""

    goods: Mapping[str, str]
    header: Mapping[str, str]
    line: Mapping[str, str]
    items: str


@dataclass(frozen=True)
class NamedRecords:
    """Records of a file laid out as String columns under the file's names (UDE XML: `SKU`, `UnitPrice`).

    Why: renaming every field of every record costs a reader as much as parsing does; `keys` says where each
    canonical field is instead, and a rejected record's raw text shows the names the file used. `records` has one
    row per good or document: a String column per name its records use, SOURCE_LINE (the file line where the
    record starts) and, for documents, ITEM_COUNT. `lines` (documents only) has one row per line, in document
    order, a String column per name and OWNER.
    """

    records: pl.DataFrame
    lines: pl.DataFrame | None
    keys: RecordKeys

    def __len__(self) -> int:
        return self.records.height


Batch = list[dict[str, Any]]
SourceBatch = Batch | NamedRecords | TextRecords
"""What a source yields: contract-shaped records (under the canonical names, or the file's names as the UDE XML
export has them), or a text frame (the CSV export) that never becomes dicts."""
