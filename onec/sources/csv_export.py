"""The CSV export of the exchange service (§1.4) as text frames, with every spelling §1.9 allows.

Why it looks like this:
- Speed: Polars splits the fields (an explicit all-String schema, no inference) and validation works on the
  frame, so no Python object is built per row. The bytes are read in chunks that end on a record boundary, so
  memory is bounded by the chunk size, not the file size.
- Nothing lost, nothing shifted: before Polars sees a chunk, the chunk is cut into records (physical lines,
  joined while a quoted field is open) and each record's fields are counted with the quoted parts taken out. A
  record with the wrong number of fields or broken quoting becomes a malformed row (its line and text kept,
  rejected with the reason) and Polars parses only the sound records, so one bad row never moves another row's
  values into the wrong columns.
- Memory per record is bounded: a record over `RecordLimits.record_bytes` is read past a piece at a time, never
  held, and becomes a malformed row (its line, its first bytes, its size); a field over `field_bytes` in a record
  that fits is rejected the same way. The rows after either load as usual.
- Encodings: a BOM or the declared charset wins; otherwise the first chunk is tried as strict UTF-8 and
  Windows-1251 is taken when it is not. Bytes that contradict the chosen encoding fail the whole file with the
  line they are on: a file in the wrong encoding must not land as mojibake.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice

import polars as pl

from onec.config import RecordLimits, variable_name
from onec.errors import InputDataError
from onec.exchange_columns import (
    DOCUMENT_LINE_HEADERS,
    GOODS_HEADERS,
    RUSSIAN_GOODS_HEADERS,
    RUSSIAN_LINE_HEADERS,
)
from onec.sources.typing import MALFORMED_REASON, RAW_TEXT, SOURCE_LINE, TextRecords, empty_malformed

log = logging.getLogger("onec.sources.csv")

CHUNK_BYTES = 8 * 1024 * 1024
"""Bytes per chunk handed to Polars; a chunk is held as text and checked frames, two at a time with the prefetch,
so the peak grows with it while bigger chunks run no faster (docs/benchmarks.md, History)."""
UTF8 = "utf-8"
CP1251 = "cp1251"
_QUOTED_FIELD = r'"[^"]*(?:""[^"]*)*"'
_MAX_SPLIT_TRIES = 256
_QUOTE = ord('"')
_SHOWN_BYTES = 200
"""How much of an oversized record its rejected row keeps (the raw text of a 300 MB field helps nobody)."""
FIELD_BYTES_ENV = variable_name(RecordLimits, "field_bytes")
RECORD_BYTES_ENV = variable_name(RecordLimits, "record_bytes")


@dataclass(frozen=True)
class _Oversized:
    """A record over the limit, read past: its first bytes, its size, and the line ends it spans (its own too)."""

    head: bytes
    size: int
    newlines: int


class CsvFormatError(InputDataError, ValueError):
    """The file as a whole cannot be read (encoding, header): nothing of it may land."""


class CsvEntity(StrEnum):
    GOODS = "goods"
    DOCUMENT_LINES = "document_lines"


CONTRACT_HEADERS: Mapping[CsvEntity, Mapping[str, str]] = {
    CsvEntity.GOODS: GOODS_HEADERS,
    CsvEntity.DOCUMENT_LINES: DOCUMENT_LINE_HEADERS,
}
"""Canonical column → its header in the contract (§1.4)."""
RUSSIAN_HEADERS: Mapping[CsvEntity, Mapping[str, str]] = {
    CsvEntity.GOODS: RUSSIAN_GOODS_HEADERS,
    CsvEntity.DOCUMENT_LINES: RUSSIAN_LINE_HEADERS,
}
"""The Russian aliases §1.9 allows."""

REQUIRED_COLUMNS: Mapping[CsvEntity, tuple[str, ...]] = {
    CsvEntity.GOODS: ("sku", "name", "quantity", "warehouse"),
    CsvEntity.DOCUMENT_LINES: ("number", "date", "warehouse", "line", "sku", "quantity", "unit_price", "total"),
}
"""Without these a file cannot hold a single valid record: their absence fails the file, not every row."""


@dataclass(frozen=True)
class CsvLayout:
    """What the header said: the separator, and which field position feeds which canonical column."""

    separator: str
    width: int
    columns: dict[int, str]
    ignored: tuple[str, ...]


class CsvExportReader:
    """Reads one CSV export from a stream of byte chunks into `TextRecords` batches.

    After reading starts, `encoding`, `layout` and `ignored_columns` tell what the file turned out to be.
    """

    def __init__(
        self,
        entity: CsvEntity,
        *,
        charset: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        limits: RecordLimits = RecordLimits(),
    ) -> None:
        self.entity = entity
        self.declared_charset = _charset_name(charset) if charset else None
        self.chunk_bytes = chunk_bytes
        self.limits = limits
        self.encoding: str | None = None
        self.layout: CsvLayout | None = None

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        return self.layout.ignored if self.layout else ()

    def read(self, stream: Iterable[bytes]) -> Iterator[TextRecords]:
        """Batches in file order; a document's rows are never split across two batches."""
        carry: pl.DataFrame | None = None
        oversized: list[pl.DataFrame] = []
        next_line = 1
        for chunk in _record_chunks(stream, self.chunk_bytes, self.limits.record_bytes, self._separator):
            if isinstance(chunk, _Oversized):
                oversized.append(self._oversized_row(chunk, next_line))
                next_line += chunk.newlines
                continue
            body = self._utf8(chunk, next_line)
            if self.layout is None:
                header_end = body.find(b"\n")
                header_end = len(body) if header_end < 0 else header_end
                self.layout = self._layout(body[:header_end].decode())
                body = body[header_end + 1 :]
                next_line += 1
            newlines = body.count(b"\n")
            records = self._records(body, next_line, newlines)
            next_line += newlines
            if carry is not None:
                records = TextRecords(pl.concat([carry, records.frame]), records.malformed)
            if oversized:
                records = TextRecords(records.frame, pl.concat([*oversized, records.malformed]))
                oversized = []
            records, carry = self._hold_back_last_document(records)
            if len(records):
                yield records
        if self.layout is None:
            raise CsvFormatError("the CSV is empty: not even a header row")
        if (carry is not None and carry.height) or oversized:
            frame = carry if carry is not None else self._records(b"", next_line, 0).frame
            yield TextRecords(frame, pl.concat(oversized) if oversized else empty_malformed())

    def _separator(self) -> str:
        """The separator the header declared, for reading past an oversized record (only rows follow a header)."""
        if self.layout is None:
            raise CsvFormatError(f"the CSV's first line is over {self.limits.record_bytes} bytes: it is no header row")
        return self.layout.separator

    def _oversized_row(self, record: _Oversized, line: int) -> pl.DataFrame:
        """The malformed row of a record read past: its line, its first bytes, why."""
        return pl.DataFrame(
            {
                SOURCE_LINE: [line],
                RAW_TEXT: [record.head.decode(self.encoding or UTF8, errors="replace") + "…"],
                MALFORMED_REASON: [
                    f"file line {line}: a record of {record.size} bytes is over the limit of"
                    f" {self.limits.record_bytes} bytes ({RECORD_BYTES_ENV}); not loaded"
                ],
            },
            schema=empty_malformed().schema,
        )

    # --- encoding

    def _utf8(self, chunk: bytes, first_line: int) -> bytes:
        """The chunk as UTF-8 bytes (what Polars reads). A UTF-8 file is not copied, and only its first chunk is
        checked here: Polars checks every chunk it splits, and a chunk it declines is checked before the careful
        path decodes it (`_records`)."""
        first = self.encoding is None
        if self.encoding is None:
            self.encoding = self._detect(chunk)
            if self.encoding == UTF8 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
        if self.encoding != UTF8:
            return self._decoded(chunk, first_line).encode()
        if first and not _is_utf8(chunk):
            self._decoded(chunk, first_line)
        return chunk

    def _decoded(self, chunk: bytes, first_line: int) -> str:
        """The chunk as text in the file's encoding; bytes that are not fail the whole file, naming their line."""
        assert self.encoding is not None
        try:
            return chunk.decode(self.encoding)
        except UnicodeDecodeError as exc:
            line = first_line + chunk.count(b"\n", 0, exc.start)
            raise CsvFormatError(
                f"the CSV is not valid {self.encoding} (byte 0x{chunk[exc.start]:02x} on line {line})"
                f"{'; the declared charset is wrong' if self.declared_charset else ''}: nothing of it was loaded"
            ) from None

    def _detect(self, first: bytes) -> str:
        if first.startswith(codecs.BOM_UTF8):
            if self.declared_charset not in (None, UTF8):
                raise CsvFormatError(f"the CSV is declared as {self.declared_charset} but starts with a UTF-8 BOM")
            return UTF8
        if self.declared_charset is not None:
            if self.declared_charset == CP1251 and _is_utf8_with_non_ascii(first):
                raise CsvFormatError("the CSV is declared as windows-1251 but its bytes are UTF-8")
            return self.declared_charset
        try:
            first.decode(UTF8)
        except UnicodeDecodeError as exc:
            # Cyrillic before the bad byte that reads as UTF-8: a file of mixed encodings, not a windows-1251 one
            return UTF8 if not first[: exc.start].isascii() else CP1251
        return UTF8

    # --- header

    def _layout(self, header: str) -> CsvLayout:
        header = header.removesuffix("\r")
        if not header.strip():
            raise CsvFormatError("the CSV has no header row (its first line is empty)")
        separator = ";" if header.count(";") > header.count(",") else ","
        names = next(csv.reader([header], delimiter=separator))
        aliases = _aliases(self.entity)
        columns: dict[int, str] = {}
        ignored: list[str] = []
        for position, name in enumerate(names):
            canonical = aliases.get(_header_key(name))
            if canonical is None:
                ignored.append(name.strip())
            elif canonical in columns.values():
                raise CsvFormatError(f"the CSV header names column {canonical!r} twice (as {name.strip()!r})")
            else:
                columns[position] = canonical
        missing = [name for name in REQUIRED_COLUMNS[self.entity] if name not in columns.values()]
        if missing:
            raise CsvFormatError(
                f"the CSV has no {', '.join(_header_spelling(self.entity, m) for m in missing)} column"
                f" (header: {', '.join(n.strip() for n in names)})"
            )
        if ignored:
            log.warning("CSV columns not in the contract were ignored: %s", ", ".join(ignored))
        return CsvLayout(separator, len(names), columns, tuple(ignored))

    # --- records

    def _records(self, body: bytes, first_line: int, newlines: int) -> TextRecords:
        """Split the chunk's records into fields, setting the malformed ones aside (see `_fast_records`)."""
        fast = self._fast_records(body, first_line, newlines)
        if fast is not None:
            return fast
        text = self._decoded(body, first_line) if self.encoding == UTF8 else body.decode()
        return self._careful_records(text, first_line)

    def _fast_records(self, body: bytes, first_line: int, newlines: int) -> TextRecords | None:
        """The usual chunk, at Polars speed: None when the chunk needs `_careful_records`.

        Polars splits the chunk into fields and, a second time, into raw lines (one String column: no quote
        handling, a separator the chunk does not contain, each CR spelled as another absent character so that
        Polars keeps it). `_parity_records` joins the lines into records as the careful path would, and holds
        each to `_sound_record`. Anything else (Polars refusing the chunk, a record that the careful path would
        join otherwise, a different number of records and split rows) sends the whole chunk to the careful path.
        """
        assert self.layout is not None
        layout = self.layout
        markers = _absent_characters(body, 2)
        if not body or len(markers) < 2:
            return None
        marker, carriage_return = markers
        masked = b"\r" in body
        try:
            fields = self._split(body)
            lines = pl.read_csv(
                body.replace(b"\r", carriage_return.encode()) if masked else body,
                has_header=False, separator=marker, quote_char=None, schema={RAW_TEXT: pl.String},
                infer_schema=False, raise_if_empty=False,
            )  # fmt: skip
        except pl.exceptions.PolarsError:
            return None
        if lines.height != newlines + (0 if body.endswith(b"\n") else 1):
            return None
        records = _parity_records(lines[RAW_TEXT], first_line, layout, carriage_return if masked else None)
        if records is None or records.height != fields.height:
            return None
        positions = fields.columns
        frame = pl.concat([fields, records], how="horizontal")
        blank = ~frame[RAW_TEXT].str.contains(r"\S")  # what `_careful_records` leaves out
        if blank.any():
            frame = frame.filter(~blank)

        def split(sound: pl.DataFrame) -> pl.DataFrame:
            """Polars's split of the chunk, row for row, when every record is sound; otherwise a malformed record
            may have thrown that split out of step, and the sound records are split again on their own."""
            return sound.select(positions) if sound.height == frame.height else self._fields(sound, None)

        return self._split_off_malformed(frame, split)

    def _careful_records(self, text: str, first_line: int) -> TextRecords:
        """Cut into records, set the malformed ones aside, let Polars split the sound ones."""
        assert self.layout is not None
        records = _physical_records(text, first_line, self.layout.separator)
        checked = records.with_columns(_sound_record(self.layout.separator, self.layout.width).alias("_sound"))
        checked = checked.filter(pl.col(RAW_TEXT).str.strip_chars() != "")
        whole = records.height

        def split(sound: pl.DataFrame) -> pl.DataFrame:
            return self._fields(sound, text.encode() if sound.height == whole else None)

        return self._split_off_malformed(checked, split)

    def _split_off_malformed(self, checked: pl.DataFrame, split: Callable[[pl.DataFrame], pl.DataFrame]) -> TextRecords:
        """`checked` has SOURCE_LINE, RAW_TEXT and `_sound` per record; `split` gives the fields (`_0`, `_1`, …) of
        its sound records, in order. Why a record is not sound is worked out for those records only."""
        assert self.layout is not None
        layout = self.layout
        checked, oversized = self._set_aside_oversized(checked, split)
        bad = ~pl.col("_sound")
        malformed = (
            checked.select(SOURCE_LINE, RAW_TEXT, "_sound")
            .filter(bad)
            .with_columns(_quote_aware_counts(layout.separator))
            .select(
                SOURCE_LINE,
                RAW_TEXT,
                pl.when(pl.col("_stray_quote"))
                .then(
                    pl.format("file line {}: broken quoting (a quote that does not open or close a field)", SOURCE_LINE)
                )
                .otherwise(
                    pl.format(f"file line {{}}: expected {layout.width} fields, found {{}}", SOURCE_LINE, "_fields")
                )
                .alias(MALFORMED_REASON),
            )
        )
        if oversized.height:
            malformed = pl.concat([oversized, malformed]).sort(SOURCE_LINE)
        sound = checked.filter(~bad) if malformed.height else checked
        fields = split(sound)
        frame = pl.DataFrame(
            [*(fields[f"_{i}"].alias(name) for i, name in layout.columns.items()), sound[SOURCE_LINE], sound[RAW_TEXT]]
        )
        return TextRecords(frame, malformed if malformed.height else empty_malformed())

    def _set_aside_oversized(
        self, checked: pl.DataFrame, split: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(`checked` without its records over a limit, those records as malformed rows). Only a record longer
        than the field limit can hold a field over it, so the usual chunk costs one length per record."""
        limits = self.limits
        size = pl.col(RAW_TEXT).str.len_bytes()
        if checked.is_empty() or checked.select(size.max()).item() <= limits.field_bytes:
            return checked, empty_malformed()
        long = checked.filter(pl.col("_sound") & (size > limits.field_bytes))
        widest = split(long).select(pl.max_horizontal(pl.all().str.len_bytes()).fill_null(0)).to_series()
        long = long.with_columns(widest.alias("_widest"), size.alias("_size")).filter(
            (pl.col("_widest") > limits.field_bytes) | (pl.col("_size") > limits.record_bytes)
        )
        whole = checked.filter(~pl.col("_sound") & (size > limits.record_bytes)).with_columns(
            pl.lit(0, pl.UInt32).alias("_widest"), size.alias("_size")
        )
        too_big = pl.concat([long, whole])
        if too_big.is_empty():
            return checked, empty_malformed()
        record = f"a record of {{}} bytes is over the limit of {limits.record_bytes} bytes ({RECORD_BYTES_ENV})"
        field = f"a field of {{}} bytes is over the limit of {limits.field_bytes} bytes ({FIELD_BYTES_ENV})"
        reason = (
            pl.when(pl.col("_size") > limits.record_bytes)
            .then(pl.format(f"file line {{}}: {record}; not loaded", SOURCE_LINE, "_size"))
            .otherwise(pl.format(f"file line {{}}: {field}; not loaded", SOURCE_LINE, "_widest"))
        )
        malformed = too_big.select(
            SOURCE_LINE,
            (pl.col(RAW_TEXT).str.slice(0, _SHOWN_BYTES) + pl.lit("…")).alias(RAW_TEXT),
            reason.alias(MALFORMED_REASON),
        )
        return checked.filter(~pl.col(SOURCE_LINE).is_in(too_big[SOURCE_LINE].implode())), malformed

    def _split(self, body: bytes) -> pl.DataFrame:
        """Polars's split of records into `_0`, `_1`, … (all String, as the file spelled them)."""
        assert self.layout is not None
        return pl.read_csv(
            body,
            has_header=False,
            separator=self.layout.separator,
            quote_char='"',
            schema={f"_{i}": pl.String for i in range(self.layout.width)},
            infer_schema=False,
            raise_if_empty=False,
        )

    def _fields(self, sound: pl.DataFrame, body: bytes | None) -> pl.DataFrame:
        """Polars splits the sound records: straight from the chunk when every record is sound, else from the
        sound records' text joined again."""
        assert self.layout is not None
        if sound.is_empty():
            return pl.DataFrame(schema={f"_{i}": pl.String for i in range(self.layout.width)})
        body = body or sound[RAW_TEXT].str.join("\n").item().encode()
        try:
            fields = self._split(body)
        except pl.exceptions.PolarsError as exc:
            raise CsvFormatError(
                f"the CSV records from line {sound[SOURCE_LINE][0]} could not be split: {str(exc).splitlines()[0]}"
            ) from None
        if fields.height != sound.height:
            raise CsvFormatError(
                f"the CSV records from line {sound[SOURCE_LINE][0]} could not be split consistently"
                f" ({sound.height} records, {fields.height} rows parsed)"
            )
        return fields

    def _hold_back_last_document(self, records: TextRecords) -> tuple[TextRecords, pl.DataFrame | None]:
        """Document lines: keep the rows of the last number for the next chunk (it may continue there)."""
        frame = records.frame
        if self.entity is not CsvEntity.DOCUMENT_LINES or frame.is_empty():
            return records, None
        last = frame["number"][-1]
        same = (
            frame["number"].str.strip_chars() == last.strip() if last is not None else pl.Series([False] * frame.height)
        )
        tail_start = frame.height
        while tail_start > 0 and same[tail_start - 1]:
            tail_start -= 1
        return TextRecords(frame.head(tail_start), records.malformed), frame.slice(tail_start)


def _physical_records(text: str, first_line: int, separator: str) -> pl.DataFrame:
    """SOURCE_LINE and RAW_TEXT per record: physical lines, joined while a quoted field is still open (a line
    break inside a value keeps its CR; the record's own line end is dropped).

    Only a quote at the start of a field opens one (RFC 4180), so a stray quote inside a value spoils its own
    line only and never swallows the lines after it. Lines with an odd number of quotes are rare (a value with
    a line break in it), so the joining runs in Python over just those.
    """
    lines = pl.Series(RAW_TEXT, [text]).str.split("\n").explode()
    frame = pl.DataFrame(lines).with_row_index(SOURCE_LINE, offset=first_line).cast({SOURCE_LINE: pl.Int64})
    if text.endswith("\n"):
        frame = frame.head(frame.height - 1)
    odd = frame.with_row_index("_k").filter(pl.col(RAW_TEXT).str.count_matches('"', literal=True) % 2 == 1)
    if odd.is_empty():
        return frame.with_columns(pl.col(RAW_TEXT).str.strip_suffix("\r"))
    opens_field = _opens_field(separator)
    continued: list[int] = []
    open_from: int | None = None
    for k, opens in odd.select("_k", pl.col(RAW_TEXT).str.contains(opens_field)).iter_rows():
        if open_from is None:
            open_from = k if opens else None
        else:
            continued.extend(range(open_from + 1, k + 1))
            open_from = None
    if open_from is not None:
        continued.extend(range(open_from + 1, frame.height))
    record = (~pl.int_range(pl.len()).is_in(continued)).cum_sum()
    return (
        frame.with_columns(record.alias("_record"))
        .group_by("_record", maintain_order=True)
        .agg(pl.col(SOURCE_LINE).first(), pl.col(RAW_TEXT).str.join("\n").str.strip_suffix("\r"))
        .drop("_record")
    )


def _sound_record(separator: str, width: int) -> pl.Expr:
    """A RAW_TEXT record that follows RFC 4180 (see `_broken_quoting`) with exactly `width` fields: one regex
    checks both, and a record's fields can be split only one way, so this is exact."""
    return pl.col(RAW_TEXT).str.contains(_record_pattern(separator, f"{{{width - 1}}}"))


def _quote_aware_counts(separator: str) -> list[pl.Expr]:
    """`_fields` and `_stray_quote` of each RAW_TEXT record, to say why it is not sound: fields counted with the
    quoted ones taken out (exact for a record that follows RFC 4180, and only such a record loads)."""
    raw = pl.col(RAW_TEXT)
    unquoted = pl.when(raw.str.contains('"', literal=True)).then(raw.str.replace_all(_QUOTED_FIELD, "")).otherwise(raw)
    return [
        (unquoted.str.count_matches(separator, literal=True) + 1).alias("_fields"),
        _broken_quoting(separator).alias("_stray_quote"),
    ]


def _broken_quoting(separator: str) -> pl.Expr:
    """A RAW_TEXT record with a quote that RFC 4180 does not allow: in an unquoted value, or text after a
    closing quote. Parsers disagree on such records (Polars reads a quote anywhere as opening a field), so
    none of them loads: each is rejected with its text instead of landing with its values shifted."""
    raw = pl.col(RAW_TEXT)
    return raw.str.contains('"', literal=True) & ~raw.str.contains(_record_pattern(separator, "*"))


def _record_pattern(separator: str, more: str) -> str:
    """A whole record of RFC 4180 fields: one, then `more` (a regex quantifier) after a separator each."""
    field = _field_pattern(separator)
    return rf"^{field}(?:{re.escape(separator)}{field}){more}$"


def _field_pattern(separator: str) -> str:
    """One RFC 4180 field: quoted (a quote inside doubled), or with neither quotes nor separators."""
    return rf'(?:{_QUOTED_FIELD}|[^"{re.escape(separator)}]*)'


def _parity_records(
    lines: pl.Series, first_line: int, layout: CsvLayout, carriage_return: str | None
) -> pl.DataFrame | None:
    """SOURCE_LINE, RAW_TEXT and `_sound` per record of the chunk's `lines` (each CR spelled `carriage_return`,
    when the chunk has any), joined as `_physical_records` joins them; None when that is not how it would (a
    line opening a quote outside a field start, a quote still open at the end of the chunk, a CR before a CRLF).

    A sound line has an even number of quotes (each field's are paired), so only the lines that are not sound
    on their own can open or close a record that spans lines: just their quotes are counted, and just the
    records they make are joined and held to `_sound_record` again. A line inside such a record is a part of
    it, even when it would be sound on its own.
    """
    raw = lines.fill_null("")
    cr = carriage_return or "\r"
    if carriage_return is not None and raw.str.ends_with(cr * 2).any():
        return None  # a CR before a CRLF: where Polars's split and the careful path's line ends disagree
    sound_record = _record_pattern(layout.separator, f"{{{layout.width - 1}}}")
    frame = pl.DataFrame(
        [
            raw.str.strip_suffix(cr).alias(RAW_TEXT),
            pl.int_range(first_line, first_line + raw.len(), dtype=pl.Int64, eager=True).alias(SOURCE_LINE),
        ]
    ).select(SOURCE_LINE, RAW_TEXT, pl.col(RAW_TEXT).str.contains(sound_record).alias("_sound"))
    records = frame if frame["_sound"].all() else _joined_by_parity(frame, raw, layout.separator, sound_record, cr)
    if records is not None and carriage_return and records[RAW_TEXT].str.contains(carriage_return, literal=True).any():
        records = records.with_columns(pl.col(RAW_TEXT).str.replace_all(carriage_return, "\r", literal=True))
    return records


def _joined_by_parity(
    frame: pl.DataFrame, raw: pl.Series, separator: str, sound_record: str, cr: str
) -> pl.DataFrame | None:
    """`frame` (a record per line) with the lines of each record that spans lines joined into one (see
    `_parity_records`)."""
    suspects = frame["_sound"].not_().arg_true()
    odd_lines = suspects.filter(raw.gather(suspects).str.count_matches('"', literal=True) % 2 == 1)
    if odd_lines.len() % 2:
        return None
    odd = pl.zeros(frame.height, pl.Boolean, eager=True).scatter(odd_lines, True)
    inside = ((odd.cast(pl.UInt32).cum_sum() - odd.cast(pl.UInt32)) % 2 == 1).alias("_inside")
    opener = odd & ~inside
    if not raw.filter(opener).str.contains(_opens_field(separator)).all():
        return None
    record = ((~inside).cum_sum() - 1).alias("_record")
    joined = (
        pl.DataFrame([raw.alias(RAW_TEXT), record])
        .filter(opener | inside)
        .group_by("_record", maintain_order=True)
        .agg(pl.col(RAW_TEXT).str.join("\n").str.strip_suffix(cr))
        .with_columns(pl.col(RAW_TEXT).str.contains(sound_record).alias("_sound"))
    )
    starts = frame.filter(~inside)
    return starts.with_columns(
        starts[RAW_TEXT].scatter(joined["_record"], joined[RAW_TEXT]),
        starts["_sound"].scatter(joined["_record"], joined["_sound"]),
    )


def _opens_field(separator: str) -> str:
    """A line whose last quote opens a field (RFC 4180: only a quote at the start of a field opens one)."""
    return rf'^(?:{_field_pattern(separator)}{re.escape(separator)})*"(?:[^"]|"")*$'


def _absent_characters(body: bytes, count: int) -> list[str]:
    """Up to `count` control characters the chunk does not contain (markers that cannot clash with its text)."""
    candidates = (chr(code) for code in range(32) if chr(code) not in "\t\n\r")
    return list(islice((c for c in candidates if c.encode() not in body), count))


def _record_chunks(
    stream: Iterable[bytes], size: int, max_record: int, separator: Callable[[], str]
) -> Iterator[bytes | _Oversized]:
    """Byte chunks of about `size` that end after a newline outside any quoted field. A record still open after
    `max_record` bytes is read past (see `_read_past`) and comes as an `_Oversized` in its place, so the buffer
    never holds more than `size` plus a piece, or `max_record` plus a piece; `separator` is asked for only then,
    after the chunks before the record went out (the first holds the header). A record over the limit that ends
    within the last chunk is Polars's to split (the chunk is small) and `_set_aside_oversized`'s to reject."""
    pieces = iter(stream)
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            cut = _record_boundary(buffer)
            start = cut or 0
            if len(buffer) - start > max_record:
                if start:
                    yield _take(buffer, start)
                record, rest = _read_past(bytes(buffer), pieces, separator(), max_record)
                yield record
                buffer = bytearray(rest)
            elif cut is None:
                break
            else:
                yield _take(buffer, cut)
    if buffer:
        yield bytes(buffer)


def _take(buffer: bytearray, end: int) -> bytes:
    """The first `end` bytes of the buffer, removed from it."""
    with memoryview(buffer) as view:
        chunk = bytes(view[:end])
    del buffer[:end]
    return chunk


def _read_past(
    start: bytes, pieces: Iterator[bytes], separator: str, max_record: int
) -> tuple[bytes | _Oversized, bytes]:
    """The record that `start` begins (`start` holds more than `max_record` bytes), and the bytes after its line
    end. A record that ends within `max_record` bytes comes whole (quote parity took a stray quote for an open
    field); a longer one is read past one piece at a time, never held, and comes as an `_Oversized`."""
    end = _RecordEnd(separator.encode())
    found = end.find(start)
    if found is not None and found <= max_record:
        return start[:found], start[found:]
    head = start[:_SHOWN_BYTES]
    size = newlines = 0
    data = start
    while found is None:
        size += len(data)
        newlines += data.count(b"\n")
        data = next(pieces, b"")
        if not data:
            return _Oversized(head, size, newlines + 1), b""
        found = end.find(data)
    return _Oversized(head, size + found, newlines + data.count(b"\n", 0, found)), data[found:]


class _RecordEnd:
    """Where a record ends, found one piece at a time by RFC 4180's rules (those `_physical_records` follows): a
    quote opens a field only at the start of one, `""` inside a quoted field is a quote, and a line end inside a
    quoted field belongs to the value."""

    def __init__(self, separator: bytes) -> None:
        self._opener = separator + b'"'
        self._separator = separator[0]
        self._quoted = False
        self._field_start = True
        self._quote_last = False  # inside quotes, the last piece ended on a quote: closing or doubled, next byte says

    def find(self, data: bytes) -> int | None:
        """The index just past the record's line end in `data`, or None when the record goes on past it."""
        at = 0
        if self._quote_last and data:
            self._quote_last = False
            if data[0] == _QUOTE:
                at = 1
            else:
                self._quoted = False
        while at < len(data):
            if self._quoted:
                quote = data.find(b'"', at)
                if quote < 0:
                    return None
                if quote + 1 == len(data):
                    self._quote_last = True
                    return None
                if data[quote + 1] == _QUOTE:
                    at = quote + 2
                    continue
                self._quoted, at = False, quote + 1
                continue
            if self._field_start and data[at] == _QUOTE:
                self._quoted, self._field_start, at = True, False, at + 1
                continue
            self._field_start = False
            newline = data.find(b"\n", at)
            opener = data.find(self._opener, at)
            if opener >= 0 and (newline < 0 or opener < newline):
                self._quoted, at = True, opener + 2
                continue
            if newline >= 0:
                return newline + 1
            self._field_start = data[-1] == self._separator
            return None
        return None


def _record_boundary(buffer: bytearray) -> int | None:
    """The end of the last complete record in the buffer: after a newline with an even number of quotes before
    it. A stray quote flips that count for the rest of the file, so after a bounded search the last newline is
    taken anyway: a record cut in two is then reported malformed (both parts kept), and memory stays bounded.
    None when there is no newline, or when by parity every newline is inside the buffer's first record."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return None
    last = end
    quotes = buffer.count(b'"', 0, end)
    for _ in range(_MAX_SPLIT_TRIES):
        if quotes % 2 == 0:
            return end + 1
        previous = buffer.rfind(b"\n", 0, end)
        if previous < 0:
            return None  # every newline is inside the first record, by parity: `_record_chunks` bounds its length
        quotes -= buffer.count(b'"', previous, end)
        end = previous
    return last + 1


def _header_key(name: str) -> str:
    return name.strip().strip('"').replace("_", "").replace(" ", "").lower()


def _aliases(entity: CsvEntity) -> dict[str, str]:
    """Header key (see `_header_key`) → canonical column."""
    pairs = [*CONTRACT_HEADERS[entity].items(), *RUSSIAN_HEADERS[entity].items()]
    return {_header_key(header): canonical for canonical, header in pairs}


def _header_spelling(entity: CsvEntity, canonical: str) -> str:
    """The column as the contract spells it, with its Russian alias when it has one."""
    russian = RUSSIAN_HEADERS[entity].get(canonical)
    return CONTRACT_HEADERS[entity][canonical] + (f" (or {russian})" if russian else "")


def _charset_name(charset: str) -> str:
    """Python's name for a declared charset; an unknown one is a clear error, not a guess."""
    try:
        name = codecs.lookup(charset.strip().strip('"')).name
    except LookupError:
        raise CsvFormatError(f"the CSV declares an unknown charset {charset!r}") from None
    return {"utf-8-sig": UTF8, "windows-1251": CP1251}.get(name, name)


def _is_utf8(data: bytes) -> bool:
    """Polars's check (a few times faster than decoding in Python, which only a bad chunk then pays for, to
    name the line)."""
    try:
        pl.Series([data], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError:
        return False
    return True


def _is_utf8_with_non_ascii(data: bytes) -> bool:
    """Windows-1251 Cyrillic is practically never valid UTF-8: bytes that are, and are not ASCII, are UTF-8."""
    if data.isascii():
        return False
    try:
        data.decode(UTF8)
    except UnicodeDecodeError:
        return False
    return True


def charset_of(content_type: str | None) -> str | None:
    """The `charset=` of a Content-Type header, if any."""
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None
