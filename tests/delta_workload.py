"""Writers and readers of a Delta lake for the concurrency tests, with versions of a partition that check themselves.

Every version `v` of a partition (base, day) has `version_rows(base, day, v)` rows, and every row carries `version`
and `rows_in_version`. A reader that sees, in one partition, rows of two versions or a row count other than the
version's own has seen a half-committed partition; `torn_partitions` finds that in one query.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from onec.delta_lake import DeltaLake, Partitions, replace_frame

TABLE = "document_lines"
DAY_KEY = "doc_date"
DOC_TYPE = "shipment"


def version_rows(base: str, day: dt.date, version: int) -> int:
    """A row count that differs between consecutive versions of a partition (3..41)."""
    return 3 + zlib.crc32(f"{base}/{day}/{version}".encode()) % 39


def version_frame(base: str, day: dt.date, version: int) -> pa.Table:
    count = version_rows(base, day, version)
    return pa.table(
        {
            "base": pa.array([base] * count, pa.string()),
            "doc_type": pa.array([DOC_TYPE] * count, pa.string()),
            DAY_KEY: pa.array([day] * count, pa.date32()),
            "number": pa.array([f"{base}/{day}/{version}/{k}" for k in range(count)], pa.string()),
            "version": pa.array([version] * count, pa.int64()),
            "rows_in_version": pa.array([count] * count, pa.int64()),
        }
    )


def write_versions(
    lake: DeltaLake, base: str, days: Sequence[dt.date], versions: int, attempts: int = 4
) -> list[tuple[int, float]]:
    """Replace each day of `base` with versions 1..`versions` in turn: (attempts, seconds) of each commit."""
    commits = []
    for version in range(1, versions + 1):
        for day in days:
            partitions = Partitions(base, DOC_TYPE, DAY_KEY, (day,))
            commit = replace_frame(lake, TABLE, partitions, version_frame(base, day, version), attempts=attempts)
            commits.append((commit.attempts, commit.seconds))
    return commits


PARTITION_CHECK = """
    SELECT base, doc_date, count(*) AS rows, min(version) AS low, max(version) AS high,
           min(rows_in_version) AS declared, max(rows_in_version) AS declared_high
    FROM lines GROUP BY base, doc_date
"""


def partitions_seen_by_duckdb(lake: DeltaLake) -> pl.DataFrame:
    """Each partition of one committed version, read by DuckDB from the pyarrow dataset (no extension)."""
    with duckdb.connect() as con:
        con.register("lines", lake.dataset(TABLE))
        partitions: pl.DataFrame = con.sql(PARTITION_CHECK).pl()
        return partitions


def partitions_seen_by_polars(lake: DeltaLake) -> pl.DataFrame:
    lines = lake.scan(TABLE)
    return (
        lines.group_by("base", DAY_KEY)
        .agg(
            pl.len().alias("rows"),
            pl.col("version").min().alias("low"),
            pl.col("version").max().alias("high"),
            pl.col("rows_in_version").min().alias("declared"),
            pl.col("rows_in_version").max().alias("declared_high"),
        )
        .collect()
    )


def torn_partitions(seen: pl.DataFrame) -> pl.DataFrame:
    """The partitions whose rows are not exactly one whole version."""
    return seen.filter(
        (pl.col("low") != pl.col("high"))
        | (pl.col("declared") != pl.col("declared_high"))
        | (pl.col("rows") != pl.col("declared"))
    )


def data_files(lake: DeltaLake) -> set[Path]:
    return set(Path(lake.root, TABLE).rglob("*.parquet"))


def read_files(lake: DeltaLake) -> set[Path]:
    """The data files the table's current version reads."""
    table = lake.table(TABLE)
    assert table is not None
    return {Path(uri.removeprefix("file://")) for uri in table.file_uris()}


def three_versions_of_one_day(lake: DeltaLake, first: dt.date, second: dt.date) -> None:
    """Versions 1, 2 and 3 of `first` (two replaced files) and version 1 of `second`."""
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (second,)), version_frame("main", second, 1))
    for version in (1, 2, 3):
        partitions = Partitions("main", DOC_TYPE, DAY_KEY, (first,))
        replace_frame(lake, TABLE, partitions, version_frame("main", first, version))
