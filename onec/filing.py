"""Filing dropped files away once handled: `processed/`, or `failed/` with the reason beside the file.

Both inboxes (exchange files into the warehouse, import files into 1C) file the same way, so an operator looks for
`<name>.reason.txt` in one place and never loses an earlier file of the same name.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

PROCESSED = "processed"
FAILED = "failed"
REASON_SUFFIX = ".reason.txt"


def file_away(path: Path, *, failure: str | None) -> Path:
    """Move `path` into `processed/` beside it, or into `failed/` with `failure` written next to it."""
    target = _move(path, path.parent / (PROCESSED if failure is None else FAILED))
    if failure is not None:
        target.with_name(target.name + REASON_SUFFIX).write_text(failure, "utf-8")
    return target


def _move(path: Path, directory: Path) -> Path:
    """Into `directory`, never overwriting an earlier file of the same name."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / path.name
    if target.exists():
        target = directory / f"{path.stem}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}{path.suffix}"
    return path.rename(target)
