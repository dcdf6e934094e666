"""The Parquet lake: hive-partitioned copies of the warehouse tables, readable with DuckDB or Polars alone.

Why a lake next to the DuckDB file: DuckDB allows one writer process, so analysts and other tools read Parquet
instead of holding the database open. Files are written from the committed tables, to a temporary name in the
same directory and then `os.replace`d, so a reader never sees half a file. Large partitions are written from a
stream of Arrow record batches (`write_partitions`), so memory is bounded by a batch, not by the partition.

Every lake write happens under the warehouse's single-writer lock, so whoever holds that lock owns no temporary
file: any one it finds was left by a killed writer (`remove_litter`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

LAKE_DIR = "lake"
FILE_NAME = "data.parquet"
TEMPORARY_SUFFIX = ".tmp"
BASE_KEY = "base"
"""The hive key of the 1C base: the first folder of the lake (`lake/base=<id>/documents/doc_type=…/doc_date=…/`)."""
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The folder value of a partition whose key is NULL (goods_history's open versions: `closed_month=…`), the name
Hive, DuckDB's and Polars' hive readers read as NULL."""
SINGLE_BASE_TABLES = ("goods", "documents", "document_lines", "goods_history", "marts")
"""The lake's top folders before bases: they belong to the base `main` (`adopt_single_base_layout`)."""


@dataclass(frozen=True)
class LakeWrite:
    """What one partition write did: the file written (None: the partition became empty, file removed)."""

    path: Path | None
    bytes: int


def write_partition(directory: Path, frame: pl.DataFrame) -> LakeWrite:
    """Replace one partition's file atomically; an empty frame removes the file (and the empty directory)."""
    if frame.is_empty():
        return _remove_partition(directory)
    return _replace_file(
        directory, lambda temporary: frame.write_parquet(temporary, compression="zstd", statistics=True)
    )


PartitionValue = TypeVar("PartitionValue", bound=dt.date | None)
"""A partition's key value: a day, or None for the partition of NULL keys (`NULL_PARTITION`)."""


def write_partitions(
    batches: Iterable[pa.RecordBatch], key: str, directories: Mapping[PartitionValue, Path]
) -> list[LakeWrite]:
    """Replace the file of every partition in `directories` (partition value → directory) from record batches
    sorted by the `key` column, which is dropped from the files (it is in the directory name). A partition that
    gets no rows loses its file. Only one batch and one open file are in memory at a time."""
    written: dict[PartitionValue, LakeWrite] = {}
    open_file: tuple[PartitionValue, _StreamedFile] | None = None
    try:
        for batch in batches:
            start = 0
            for value, end in _runs(batch.column(key)):
                if open_file is None or open_file[0] != value:
                    if open_file is not None:
                        written[open_file[0]] = open_file[1].finish()
                        open_file = None
                    if value in written or value not in directories:
                        raise ValueError(f"{key}={value!r}: rows not sorted by {key} or outside the partitions given")
                    schema = batch.schema.remove(batch.schema.get_field_index(key))
                    open_file = (value, _StreamedFile(directories[value], schema))
                open_file[1].write(batch.slice(start, end - start).drop_columns([key]))
                start = end
        if open_file is not None:
            written[open_file[0]] = open_file[1].finish()
            open_file = None
    finally:
        if open_file is not None:
            open_file[1].abandon()
    return [written.get(value) or _remove_partition(directory) for value, directory in directories.items()]


def _runs(column: pa.Array) -> list[tuple[Any, int]]:
    """(value, end) of each run of equal values. Arrow's run-end encoding compares the bytes under null slots, which
    DuckDB leaves as they come, so a run of nulls (goods_history's open versions) came out as one run per row, one
    write per row: 15 s for 20k rows. Adjacent runs of the same value are joined here."""
    encoded = pc.run_end_encode(column)
    runs: list[tuple[Any, int]] = []
    for value, end in zip(encoded.values.to_pylist(), encoded.run_ends.to_pylist(), strict=True):
        if runs and runs[-1][0] == value:
            runs[-1] = (value, end)
        else:
            runs.append((value, end))
    return runs


class _StreamedFile:
    """One partition's file being written from batches: a temporary name until `finish` renames it into place."""

    def __init__(self, directory: Path, schema: pa.Schema) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._temporary = _temporary_name(directory)
        self._writer = pq.ParquetWriter(self._temporary, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def finish(self) -> LakeWrite:
        self._writer.close()
        try:
            return _commit_file(self._temporary, self._directory)
        finally:
            self._temporary.unlink(missing_ok=True)

    def abandon(self) -> None:
        self._writer.close()
        self._temporary.unlink(missing_ok=True)


def _replace_file(directory: Path, write: Callable[[Path], None]) -> LakeWrite:
    """`write` fills a temporary file in `directory`, which then replaces the partition's file in one rename."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(directory)
    try:
        write(temporary)
        return _commit_file(temporary, directory)
    finally:
        temporary.unlink(missing_ok=True)


def _commit_file(temporary: Path, directory: Path) -> LakeWrite:
    target = directory / FILE_NAME
    os.replace(temporary, target)
    return LakeWrite(path=target, bytes=target.stat().st_size)


def _temporary_name(directory: Path) -> Path:
    return directory / f".{FILE_NAME}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"


def base_folder(base: str) -> str:
    return f"{BASE_KEY}={base}"


def adopt_single_base_layout(lake_root: Path, base_dir: Path) -> list[str]:
    """Move the tables of a lake written before bases (`lake/documents/…`) under `base_dir` (`lake/base=main/…`),
    a folder rename each. Nothing is lost: a folder is renamed whole, or, when the base already has that table
    (a version without bases wrote to the lake again after the move), its files the base lacks are moved in and
    only the copies it has are dropped; the lake is a copy of the warehouse and the lake check rewrites any file that
    is stale. Returns the tables moved (empty: nothing to adopt). Call it under the base's writer lock."""
    moved = []
    for table in SINGLE_BASE_TABLES:
        legacy = lake_root / table
        if not legacy.is_dir():
            continue
        target = base_dir / table
        if not target.exists():
            base_dir.mkdir(parents=True, exist_ok=True)
            os.rename(legacy, target)
        else:
            for path in sorted(p for p in legacy.rglob(f"*{Path(FILE_NAME).suffix}") if p.is_file()):
                destination = target / path.relative_to(legacy)
                if not destination.exists():
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, destination)
            shutil.rmtree(legacy)
        moved.append(table)
    return moved


def remove_litter(lake: Path) -> list[Path]:
    """Remove the temporary files (`.<name>.<uuid>.tmp`) killed writers left anywhere in the lake. Call it only
    under the writer lock: a live writer's temporary file would go too."""
    if not lake.exists():
        return []
    litter = [path for path in lake.rglob(f".*{TEMPORARY_SUFFIX}") if path.is_file()]
    for path in litter:
        path.unlink(missing_ok=True)
    return litter


def _remove_partition(directory: Path) -> LakeWrite:
    (directory / FILE_NAME).unlink(missing_ok=True)
    _remove_empty(directory)
    return LakeWrite(path=None, bytes=0)


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        return
