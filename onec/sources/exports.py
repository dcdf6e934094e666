"""The exchange service's export endpoints (§1.2: `…/export?format=csv|xml`) as a source.

Why download first, then read: an export is one long streamed response, and a connection can drop mid-body
(§1.9). The body is spooled to a temporary file through the session (paced, capped, retried; a broken stream is
fetched again from the start), and only a complete body is read. Batches therefore never come from a partial
export, and the landing (which stages until commit) never sees half of one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import BinaryIO

from onec.http import OneCProtocolError, OneCSession, RequestStats
from onec.prefetch import prefetched
from onec.schema import document_type
from onec.sources.csv_export import CsvEntity, CsvExportReader, charset_of
from onec.sources.typing import SourceBatch
from onec.sources.ude_xml import GOODS_ENTITY, UdeXmlReader

READ_BYTES = 4 * 1024 * 1024
FORMATS = ("csv", "xml")


class ExportSource:
    """Goods and documents from the CSV or UDE XML export of one 1C base (the `csv` and `xml` sources)."""

    def __init__(self, session: OneCSession, export_format: str) -> None:
        if export_format not in FORMATS:
            raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {export_format!r}")
        self.name = export_format
        self._session = session

    @property
    def stats(self) -> RequestStats:
        return self._session.stats

    def goods(self) -> Iterator[SourceBatch]:
        return self._read("api/v1/goods/export", {}, CsvEntity.GOODS, GOODS_ENTITY)

    def documents(self, doc_type: str, date_from: date, date_to: date) -> Iterator[SourceBatch]:
        """Documents dated [date_from, date_to), as the export's query parameters say (§1.2)."""
        slug = document_type(doc_type).slug
        params = {"date_from": _local_iso(date_from), "date_to": _local_iso(date_to)}
        return self._read(f"api/v1/documents/{slug}/export", params, CsvEntity.DOCUMENT_LINES, slug)

    def _read(self, path: str, params: dict[str, str], csv_entity: CsvEntity, xml_entity: str) -> Iterator[SourceBatch]:
        with tempfile.TemporaryFile(prefix="onec-export-") as spool:
            content_type = self._session.download(path, {**params, "format": self.name}, spool)
            spool.seek(0)
            if self.name == "csv":
                _expect(content_type, ("csv", "text/plain", "octet-stream"), path)
                reader = CsvExportReader(
                    csv_entity, charset=charset_of(content_type), limits=self._session.settings.csv_limits
                )
                yield from prefetched(reader.read(_chunks(spool)))
            else:
                _expect(content_type, ("xml", "octet-stream"), path)
                yield from prefetched(UdeXmlReader(spool).batches(xml_entity))


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(READ_BYTES):
        yield chunk


def _expect(content_type: str, accepted: tuple[str, ...], path: str) -> None:
    """An export answered with JSON (an error body with status 200, say) must not be read as CSV or XML."""
    if content_type and not any(kind in content_type.lower() for kind in accepted):
        raise OneCProtocolError(f"1C's {path} answered with {content_type!r}, not an export file")


def _local_iso(day: date) -> str:
    """1C reads dates as local wall time without offset (§1)."""
    return datetime.combine(day, time()).strftime("%Y-%m-%dT%H:%M:%S")
