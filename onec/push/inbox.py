"""The import inbox: files dropped into `data/inbox/import/<type>/` are imported, then filed away.

Why a folder per type: a file of document lines does not say which document type it holds, and guessing would
send receipts as shipments. `<type>` is a document type slug or `goods`. After its import a file moves to
`<type>/processed/`, or to `<type>/failed/` with `<name>.reason.txt` beside it (what did not land, and why).
"""

from __future__ import annotations

import time
from pathlib import Path

from onec import filing
from onec.push.readers import FORMATS, GOODS
from onec.push.report import ImportSummary
from onec.schema import DOCUMENT_SLUGS

IMPORT_INBOX = Path("inbox") / "import"


def ready_imports(inbox: Path, *, settle_s: float = 2.0, now: float | None = None) -> list[tuple[Path, str]]:
    """(file, kind) of every import file not modified in the last `settle_s` seconds (it may still be copied)."""
    moment = time.time() if now is None else now
    ready: list[tuple[Path, str]] = []
    for kind in (*DOCUMENT_SLUGS, GOODS):
        folder = inbox / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            fresh = moment - path.stat().st_mtime < settle_s if path.is_file() else True
            if not fresh and not path.name.startswith(".") and path.suffix.lower().lstrip(".") in FORMATS:
                ready.append((path, kind))
    return ready


def file_away(path: Path, summary: ImportSummary | None, error: str | None = None) -> Path:
    """Move an imported file to `processed/` when everything landed, else to `failed/` with the reasons."""
    complete = summary is not None and summary.complete and error is None
    return filing.file_away(path, failure=None if complete else _reason_text(summary, error))


def _reason_text(summary: ImportSummary | None, error: str | None) -> str:
    lines = [error] if error else []
    if summary is not None:
        if summary.aborted:
            lines.append(f"stopped early: {summary.aborted} (drop the file again to resume)")
        lines += [f"{number}\t{outcome}\t{reason}" for number, outcome, reason in summary.reasons]
    return "\n".join(lines) + "\n"
