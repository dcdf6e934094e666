"""Exchange files from a folder (UDE XML, CSV, CommerceML) landed in the same tables as a sync.

Why it looks like this: the kind of a file is told from its content (a root element, a header row), not trusted
from its name. A UDE XML file is read once to learn what it holds (goods, document types), then every file is
landed entity by entity through `onec.sync`, so the rules and the rejected rows are the sync's.

What a file replaces is only what it declares complete. A file declares no date range: its documents are upserted
by key (each replaces its own earlier version, lines with it), and the days they fall on are never a reason to
delete another document (one mistyped year must not empty the years between). Its goods go to one snapshot day
(the file's own date when it has one, else today in the 1C zone): a goods export (CSV, UDE XML) is 1C's whole
goods list and replaces that snapshot, unless the caller says the files are partial; a CommerceML package replaces
it only when complete (a catalog with its offers, not changes only), else merges into it field by field
(`onec.sources.commerceml_package`). The warehouse's shrink guard still stands between any replace and the
snapshot. Any error while reading discards that entity's landing.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from onec.config import CommerceMLOptions, RecordLimits, Settings
from onec.errors import InputDataError
from onec.filing import file_away
from onec.http.limits import RequestStats
from onec.prefetch import prefetched
from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DOCUMENT_SLUGS
from onec.sources.commerceml import ROOT as COMMERCEML_ROOT
from onec.sources.commerceml_package import InboxScan, expand_folders, inbox_package, load_package
from onec.sources.csv_export import CHUNK_BYTES, CsvEntity, CsvExportReader, CsvFormatError
from onec.sources.typing import SourceBatch, TextRecords
from onec.sources.ude_xml import GOODS_ENTITY, UdeXmlReader
from onec.sources.xml_safety import checked_stream, open_binary, root_name
from onec.sync import ExtractResult, extract_goods, local_today, upsert_documents
from onec.warehouse import Warehouse

_DOCUMENT_HEADERS = ("number", "date")
_SLUG_IN_NAME = re.compile("|".join(sorted(DOCUMENT_SLUGS, key=len, reverse=True)))


class FileKind(StrEnum):
    UDE_XML = "ude-xml"
    COMMERCEML = "commerceml"
    CSV_GOODS = "csv-goods"
    CSV_DOCUMENT_LINES = "csv-document-lines"


class ExchangeFileError(InputDataError, ValueError):
    """A file that cannot be loaded as a whole; the message says which and why."""


@dataclass
class _Contents:
    """What a file holds: goods or not, and the document types. (Not its days: they replace nothing.)"""

    goods: bool = False
    doc_types: set[str] = field(default_factory=set)


class FileSource:
    """One exchange file as a `Source`: its goods, and its documents of one type (all its dates)."""

    def __init__(
        self, name: str, goods: Callable[[], Iterator[SourceBatch]], documents: Callable[[str], Iterator[SourceBatch]]
    ) -> None:
        self.name = name
        self._goods = goods
        self._documents = documents
        self._stats = RequestStats()

    @property
    def stats(self) -> RequestStats:
        return self._stats

    def goods(self) -> Iterator[SourceBatch]:
        return self._goods()

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[SourceBatch]:
        return self._documents(doc_type)


def detect_kind(path: Path) -> FileKind:
    """UDE XML, CommerceML or a CSV export (goods or document lines), from the first bytes of the file."""
    with open_binary(path) as handle:
        head = handle.read(64 * 1024)
    if not head.strip():
        raise ExchangeFileError(f"{path.name}: the file is empty")
    if head.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"<":
        with open_binary(path) as handle:
            _, root = checked_stream(handle)
        name = root_name(root)
        if name == "DataExchange":
            return FileKind.UDE_XML
        if name == COMMERCEML_ROOT:
            return FileKind.COMMERCEML
        raise ExchangeFileError(f"{path.name}: an XML file with root <{name}>, neither UDE XML nor CommerceML")
    first_line = head.split(b"\n", 1)[0].removeprefix(codecs.BOM_UTF8)
    try:
        header = first_line.decode("utf-8")
    except UnicodeDecodeError:
        header = first_line.decode("cp1251", errors="replace")
    keys = {part.strip().strip('"').lower() for part in re.split("[;,]", header)}
    if all(key in keys for key in _DOCUMENT_HEADERS):
        return FileKind.CSV_DOCUMENT_LINES
    if len(keys) > 1:
        return FileKind.CSV_GOODS
    raise ExchangeFileError(f"{path.name}: neither XML nor a CSV export with a header row")


def load_files(
    paths: Iterable[Path],
    warehouse: Warehouse,
    *,
    timezone: str,
    run_id: str,
    doc_type: str | None = None,
    snapshot_date: date | None = None,
    rules: ValidationRules = DEFAULT_RULES,
    partial_goods: bool = False,
    csv_limits: RecordLimits = RecordLimits(),
    commerceml_options: CommerceMLOptions = CommerceMLOptions(),
) -> list[ExtractResult]:
    """Land every file; a folder is every file under it; CommerceML files are one package (its parts belong
    together: `onec.sources.commerceml_package`). `partial_goods`: the goods of CSV and UDE XML files are some
    positions only, to merge into the snapshot, not 1C's whole list."""
    paths = expand_folders(Path(p) for p in paths)
    for path in paths:
        if not path.is_file():
            raise ExchangeFileError(f"{path}: no such file")
    kinds = {path: detect_kind(path) for path in paths}
    results: list[ExtractResult] = []
    commerceml = [path for path, kind in kinds.items() if kind is FileKind.COMMERCEML]
    if commerceml:
        results += load_package(
            commerceml, warehouse, timezone=timezone, run_id=run_id, snapshot_date=snapshot_date,
            options=commerceml_options, rules=rules,
        )  # fmt: skip
    for path, kind in kinds.items():
        if kind is FileKind.UDE_XML:
            results += _load_ude(path, warehouse, timezone, run_id, snapshot_date, rules, complete=not partial_goods)
        elif kind is FileKind.CSV_GOODS:
            day = snapshot_date or local_today(timezone)
            results.append(
                _load_csv_goods(path, warehouse, timezone, run_id, day, rules, csv_limits, complete=not partial_goods)
            )
        elif kind is FileKind.CSV_DOCUMENT_LINES:
            slug = doc_type or _type_from_name(path)
            results += _load_csv_documents(path, warehouse, timezone, run_id, slug, rules, csv_limits)
    return results


def _load_ude(
    path: Path,
    warehouse: Warehouse,
    timezone: str,
    run_id: str,
    snapshot_date: date | None,
    rules: ValidationRules,
    *,
    complete: bool,
) -> list[ExtractResult]:
    contents = _Contents()
    with open_binary(path) as handle:
        reader = UdeXmlReader(handle)
        created = reader.created
        for entity in reader.entities():
            if entity == GOODS_ENTITY:
                contents.goods = True
            else:
                contents.doc_types.add(entity)

    def records(entity: str) -> Iterator[SourceBatch]:
        with open_binary(path) as handle:
            yield from prefetched(UdeXmlReader(handle).batches(entity, skip_others=True))

    source = FileSource("xml-file", lambda: records(GOODS_ENTITY), records)
    results = []
    if contents.goods:
        day = snapshot_date or created or local_today(timezone)
        results.append(
            extract_goods(
                source, warehouse, snapshot_date=day, run_id=run_id, timezone=timezone, rules=rules, complete=complete
            )
        )
    results += _upsert_documents(source, sorted(contents.doc_types), warehouse, timezone, run_id, rules)
    return results


def _load_csv_goods(
    path: Path,
    warehouse: Warehouse,
    timezone: str,
    run_id: str,
    day: date,
    rules: ValidationRules,
    limits: RecordLimits,
    *,
    complete: bool,
) -> ExtractResult:
    source = FileSource("csv-file", lambda: _csv(path, CsvEntity.GOODS, limits), _no_documents)
    return extract_goods(
        source, warehouse, snapshot_date=day, run_id=run_id, timezone=timezone, rules=rules, complete=complete
    )


def _load_csv_documents(
    path: Path,
    warehouse: Warehouse,
    timezone: str,
    run_id: str,
    doc_type: str,
    rules: ValidationRules,
    limits: RecordLimits,
) -> list[ExtractResult]:
    source = FileSource("csv-file", _no_goods, lambda _type: _csv(path, CsvEntity.DOCUMENT_LINES, limits))
    return _upsert_documents(source, [doc_type], warehouse, timezone, run_id, rules)


def _upsert_documents(
    source: FileSource,
    doc_types: list[str],
    warehouse: Warehouse,
    timezone: str,
    run_id: str,
    rules: ValidationRules,
) -> list[ExtractResult]:
    return [
        upsert_documents(source, warehouse, doc_type=slug, run_id=run_id, timezone=timezone, rules=rules)
        for slug in doc_types
    ]


def _csv(path: Path, entity: CsvEntity, limits: RecordLimits) -> Iterator[TextRecords]:
    with open_binary(path) as handle:
        yield from prefetched(CsvExportReader(entity, limits=limits).read(iter(lambda: handle.read(CHUNK_BYTES), b"")))


def _type_from_name(path: Path) -> str:
    found = _SLUG_IN_NAME.search(path.name.lower())
    if found is None:
        raise CsvFormatError(
            f"{path.name}: a CSV of document lines does not say its document type; name the file after it"
            f" (one of {', '.join(DOCUMENT_SLUGS)}, e.g. shipment-2026-01.csv) or pass --type"
        )
    return found.group(0)


def _no_goods() -> Iterator[SourceBatch]:
    raise ExchangeFileError("this file holds no goods")


def _no_documents(doc_type: str) -> Iterator[SourceBatch]:
    raise ExchangeFileError("this file holds no documents")


INBOX_DIR = Path("inbox") / "exchange"


def inbox_groups(inbox: Path, *, settle_s: float = 2.0, now: float | None = None) -> list[list[Path]]:
    """Files ready to load, as the groups each run loads (`scan_inbox`)."""
    return scan_inbox(inbox, settle_s=settle_s, now=now).groups


def scan_inbox(
    inbox: Path, *, settle_s: float = 2.0, now: float | None = None, wait_s: float = CommerceMLOptions.wait_s
) -> InboxScan:
    """Groups ready to load: one per file, except CommerceML files, which form one package that waits, up to
    `wait_s` (`ONEC_CML_WAIT_SECONDS`), for the parts that belong together (`inbox_package`); a waiting package
    is reported, not loaded. A file modified in the last `settle_s` seconds may still be being copied in and waits."""
    if not inbox.is_dir():
        return InboxScan()
    moment = time.time() if now is None else now
    ready = sorted(
        path
        for path in inbox.iterdir()
        if path.is_file() and not path.name.startswith(".") and moment - path.stat().st_mtime >= settle_s
    )
    scan = InboxScan()
    commerceml: list[Path] = []
    for path in ready:
        try:
            kind = detect_kind(path)
        except (ValueError, OSError):
            kind = None
        if kind is FileKind.COMMERCEML:
            commerceml.append(path)
        else:
            scan.groups.append([path])
    package, waiting = inbox_package(commerceml, now=moment, wait_s=wait_s)
    if package:
        scan.groups.append(package)
    if waiting:
        scan.waiting.append(waiting)
    return scan


def load_and_file_away(
    paths: list[Path], warehouse: Warehouse, settings: Settings, *, run_id: str
) -> list[ExtractResult]:
    """Load the group, then move its files to `processed/`, or on any error to `failed/` with a
    `<name>.reason.txt` beside each, and re-raise. A file is moved only after its landing committed or failed,
    so a killed run leaves it in the inbox to be loaded again (a second landing of the same file changes
    nothing: documents upsert by key, goods replace or merge into the same day)."""
    try:
        results = load_files(
            paths, warehouse, timezone=settings.timezone, run_id=run_id, rules=settings.rules,
            csv_limits=settings.csv_limits, commerceml_options=settings.commerceml,
        )  # fmt: skip
    except Exception as exc:
        for path in paths:
            file_away(path, failure=f"{type(exc).__name__}: {exc}\n")
        raise
    for path in paths:
        file_away(path, failure=None)
    return results
