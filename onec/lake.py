"""The Parquet lake: hive-partitioned copies of the warehouse tables, readable with DuckDB or Polars alone.

Why a lake next to the DuckDB file: DuckDB allows one writer process, so analysts and other tools read Parquet
instead of holding the database open. Files are written from the committed tables, to a temporary name in the
same directory and then `os.replace`d, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

LAKE_DIR = "lake"
FILE_NAME = "data.parquet"


@dataclass(frozen=True)
class LakeWrite:
    """What one partition write did: the file written (None: the partition became empty, file removed)."""

    path: Path | None
    bytes: int


def goods_partition(lake: Path, snapshot_date: dt.date) -> Path:
    return lake / "goods" / f"snapshot_date={snapshot_date.isoformat()}"


def document_partition(lake: Path, table: str, doc_type: str, doc_date: dt.date) -> Path:
    return lake / table / f"doc_type={doc_type}" / f"doc_date={doc_date.isoformat()}"


def write_partition(directory: Path, frame: pl.DataFrame) -> LakeWrite:
    """Replace one partition's file atomically; an empty frame removes the file (and the empty directory)."""
    target = directory / FILE_NAME
    if frame.is_empty():
        target.unlink(missing_ok=True)
        _remove_empty(directory)
        return LakeWrite(path=None, bytes=0)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{FILE_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return LakeWrite(path=target, bytes=target.stat().st_size)


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        return
