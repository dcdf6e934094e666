"""The Delta lake under concurrent writers, on local disk and on a real S3 server (SeaweedFS on 127.0.0.1):
disjoint partition replaces from several processes all land; a replace that loses to a writer of the same partitions
is retried or reported, never half-applied; readers (DuckDB over the pyarrow dataset, Polars' scan_delta) reading
while workers write only ever see whole versions of a partition."""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from onec.config import Settings
from onec.delta_lake import (
    DeltaLake,
    LakeConflict,
    Partitions,
    Vacuumed,
    replace_frame,
    replace_partitions,
    vacuum,
)
from tests.delta_workload import (
    DAY_KEY,
    DOC_TYPE,
    TABLE,
    data_files,
    partitions_seen_by_duckdb,
    partitions_seen_by_polars,
    read_files,
    three_versions_of_one_day,
    torn_partitions,
    version_frame,
    version_rows,
    write_versions,
)
from tests.s3_server import S3Server

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=offset) for offset in range(3)]
WRITERS = 4
VERSIONS = 2
READ_DURATION_LIMIT_S = 90.0


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> DeltaLake:
    """An empty Delta lake: a local directory, or a fresh prefix on the local S3 server."""
    if request.param == "local":
        return DeltaLake(str(tmp_path / "delta"))
    server: S3Server = request.getfixturevalue("s3_server")
    return server.lake(f"{re.sub('[^a-z0-9]+', '-', request.node.name)}-{time.monotonic_ns()}")


def whole_versions(lake: DeltaLake) -> dict[tuple[str, dt.date], int]:
    """(base, day) → the version each partition holds, after checking it holds exactly that version's rows."""
    seen = partitions_seen_by_duckdb(lake)
    assert torn_partitions(seen).is_empty(), torn_partitions(seen)
    return {(base, day): low for base, day, low in seen.select("base", DAY_KEY, "low").rows()}


def test_four_processes_replacing_disjoint_partitions_all_land(lake: DeltaLake) -> None:
    """4 workers (bases) × 3 days × 2 versions, at once, on a table none of them created: every commit lands,
    every partition holds its last version whole, and the table's log has one entry per commit. Retries come only
    from the race to create the table: delta-rs lets each writer that saw no table commit the table's metadata
    again, and each such commit fails every other writer's commit in flight once."""
    bases = [f"base{index}" for index in range(WRITERS)]
    results = write_at_once(lake, bases)
    commits = [commit for result in results for commit in result]
    assert len(commits) == WRITERS * len(DAYS) * VERSIONS
    assert whole_versions(lake) == {(base, day): VERSIONS for base in bases for day in DAYS}
    table = lake.table(TABLE)
    assert table is not None
    assert table.version() + 1 == len(commits), "a commit is missing from (or extra in) the log"
    creations = metadata_commits(table)
    retried = sum(attempts > 1 for attempts, _ in commits)
    attempts = {base: [tries for tries, _ in result] for base, result in zip(bases, results, strict=True)}
    assert retried <= (WRITERS - 1) * creations, f"{retried} retries, {creations} creation commits: {attempts}"
    assert max(tries for tries, _ in commits) <= creations + 1, attempts


def test_four_processes_replacing_disjoint_partitions_of_an_existing_table_never_retry(lake: DeltaLake) -> None:
    """Once the table exists, writers of other bases and days never cost each other a commit."""
    replace_frame(lake, TABLE, Partitions("seed", DOC_TYPE, DAY_KEY, (DAYS[0],)), version_frame("seed", DAYS[0], 1))
    bases = [f"base{index}" for index in range(WRITERS)]
    results = write_at_once(lake, bases)
    assert whole_versions(lake) == {("seed", DAYS[0]): 1} | {(base, day): VERSIONS for base in bases for day in DAYS}
    assert [[tries for tries, _ in result] for result in results] == [[1] * len(DAYS) * VERSIONS] * WRITERS


def write_at_once(lake: DeltaLake, bases: list[str]) -> list[list[tuple[int, float]]]:
    """Each base's `write_versions` in its own process, all at once: (attempts, seconds) of each commit."""
    with ProcessPoolExecutor(len(bases), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(write_versions, [lake] * len(bases), bases, [DAYS] * len(bases), [VERSIONS] * len(bases)))


def metadata_commits(table: DeltaTable) -> int:
    """How many commits set the table's metadata: its creation, and each creator that lost the race to it."""
    latest = table.version()
    identities = []
    for version in range(latest + 1):
        table.load_as_version(version)
        identities.append((table.metadata().id, table.metadata().created_time))
    table.load_as_version(latest)
    return 1 + sum(before != after for before, after in itertools.pairwise(identities))


def test_a_replace_that_loses_its_partitions_to_another_writer_is_retried_whole(lake: DeltaLake) -> None:
    """While this write streams its rows, another writer commits the same partition: this commit fails, its rows
    are read again and written in a second commit. The partition holds this write's rows, and nothing else."""
    day = DAYS[0]
    partitions = Partitions("main", DOC_TYPE, DAY_KEY, (day,))
    replace_frame(lake, TABLE, partitions, version_frame("main", day, 1))
    reads = interfering_rows(lake, partitions, ours=3, theirs=2)
    commit = replace_partitions(lake, TABLE, partitions, reads.next, attempts=2)
    assert (commit.attempts, reads.calls) == (2, 2)
    assert whole_versions(lake) == {("main", day): 3}
    assert commit.rows == version_rows("main", day, 3)


def test_a_replace_that_keeps_losing_raises_lake_conflict_and_commits_nothing(lake: DeltaLake) -> None:
    day = DAYS[0]
    partitions = Partitions("main", DOC_TYPE, DAY_KEY, (day,))
    replace_frame(lake, TABLE, partitions, version_frame("main", day, 1))
    reads = interfering_rows(lake, partitions, ours=3, theirs=2)
    with pytest.raises(LakeConflict, match=r"document_lines \(base=main, doc_type=shipment, doc_date=2025-03-01"):
        replace_partitions(lake, TABLE, partitions, reads.next, attempts=1)
    assert whole_versions(lake) == {("main", day): 2}, "the other writer's version stays, whole"


def test_rows_outside_the_partitions_named_fail_the_write_and_change_nothing(lake: DeltaLake) -> None:
    first, second = DAYS[:2]
    for day in (first, second):
        replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (day,)), version_frame("main", day, 1))
    both_days = pa.concat_tables([version_frame("main", first, 2), version_frame("main", second, 2)])
    with pytest.raises(Exception, match="failed validation"):
        replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (first,)), both_days)
    assert whole_versions(lake) == {("main", first): 1, ("main", second): 1}


def test_no_rows_empties_exactly_the_partitions_named(lake: DeltaLake) -> None:
    for base in ("main", "north"):
        for day in DAYS[:2]:
            replace_frame(lake, TABLE, Partitions(base, DOC_TYPE, DAY_KEY, (day,)), version_frame(base, day, 1))
    empty = version_frame("main", DAYS[0], 1).slice(0, 0)
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (DAYS[0],)), empty)
    assert whole_versions(lake) == {("main", DAYS[1]): 1, ("north", DAYS[0]): 1, ("north", DAYS[1]): 1}


def test_a_column_a_newer_writer_adds_joins_the_table_and_older_writers_keep_committing(lake: DeltaLake) -> None:
    """The warehouse grows columns (schema growth); a worker on the new version and one not yet upgraded share the
    table: the column is added, rows written without it read as null."""
    first, second = DAYS[:2]
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (first,)), version_frame("main", first, 1))
    grown = version_frame("main", second, 1).append_column(
        "comment", pa.array(["new"] * version_rows("main", second, 1))
    )
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (second,)), grown)
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (first,)), version_frame("main", first, 2))
    comments = lake.scan(TABLE).group_by(DAY_KEY).agg(pl.col("comment").drop_nulls().len()).sort(DAY_KEY).collect()
    assert comments.rows() == [(first, 0), (second, version_rows("main", second, 1))]
    assert whole_versions(lake) == {("main", first): 2, ("main", second): 1}


def test_readers_during_concurrent_writes_see_only_whole_versions(lake: DeltaLake) -> None:
    """Two workers rewrite their base's 3 days again and again; meanwhile DuckDB (pyarrow dataset) and Polars
    (scan_delta) read the table in a loop. No read ever sees a partition that is not one whole version."""
    bases = ["north", "south"]
    for base in bases:
        write_versions(lake, base, DAYS, 1)
    versions = 8
    reads = 0
    seen_versions: set[int] = set()
    with ProcessPoolExecutor(len(bases), mp_context=multiprocessing.get_context("spawn")) as pool:
        writers = [pool.submit(write_versions, lake, base, DAYS, versions) for base in bases]
        deadline = time.monotonic() + READ_DURATION_LIMIT_S
        while not all(writer.done() for writer in writers) and time.monotonic() < deadline:
            for read in (partitions_seen_by_duckdb, partitions_seen_by_polars):
                seen = read(lake)
                torn = torn_partitions(seen)
                assert torn.is_empty(), f"{read.__name__} saw half-committed partitions: {torn}"
                assert seen.height == len(bases) * len(DAYS), "a partition vanished during a replace"
                seen_versions |= set(seen["low"].to_list())
                reads += 1
        for writer in writers:
            writer.result()
    assert reads >= 4, f"only {reads} reads happened during the writes"
    assert len(seen_versions) >= 2, "the reads never overlapped a change"
    assert whole_versions(lake) == {(base, day): versions for base in bases for day in DAYS}


def test_settings_name_the_lake_and_keep_its_credentials_out_of_sight(s3_server: S3Server) -> None:
    settings = Settings.from_env(s3_server.environment("from-settings"))
    lake = DeltaLake.from_settings(settings)
    assert lake.root == "s3://lake/from-settings"
    assert "onec-test-secret" not in repr(lake) and "onec-test-secret" not in repr(settings)
    replace_frame(lake, TABLE, Partitions("main", DOC_TYPE, DAY_KEY, (DAYS[0],)), version_frame("main", DAYS[0], 1))
    assert lake.scan(TABLE).select(pl.len()).collect().item() == version_rows("main", DAYS[0], 1)


def test_the_default_delta_lake_is_a_directory_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"ONEC_DATA_DIR": str(tmp_path), "ONEC_LAKE_FORMAT": "delta"})
    assert DeltaLake.from_settings(settings) == DeltaLake(str(tmp_path / "delta"))


class interfering_rows:
    """`rows` for replace_partitions whose first stream, once its first batch is taken, waits for another writer to
    commit version `theirs` of the same partitions; every stream carries version `ours`."""

    def __init__(self, lake: DeltaLake, partitions: Partitions, *, ours: int, theirs: int) -> None:
        self.lake, self.partitions, self.ours, self.theirs = lake, partitions, ours, theirs
        self.calls = 0

    def next(self) -> pa.RecordBatchReader:
        self.calls += 1
        (day,) = self.partitions.days
        assert day is not None
        ours = version_frame(self.partitions.base, day, self.ours)
        interfere = self.calls == 1

        def batches() -> Iterator[pa.RecordBatch]:
            if interfere:
                other = threading.Thread(target=self._commit_theirs)
                other.start()
                other.join(timeout=60)
                assert not other.is_alive(), "the interfering commit did not finish"
            yield from ours.to_batches()

        return pa.RecordBatchReader.from_batches(ours.schema, batches())

    def _commit_theirs(self) -> None:
        (day,) = self.partitions.days
        assert day is not None
        replace_frame(self.lake, TABLE, self.partitions, version_frame(self.partitions.base, day, self.theirs))


def test_vacuum_deletes_only_the_replaced_files_older_than_the_retention(tmp_path: Path) -> None:
    """Three versions of one partition leave two replaced files beside the current one: a vacuum at the default
    retention keeps them (a reader of the versions before may still need them), one at 0 hours deletes exactly
    them, and not a file a concurrent writer has written but not yet committed; the current version reads whole,
    and a second vacuum deletes nothing more (delta-rs lists the same expired files until their tombstones leave
    the log)."""
    lake = DeltaLake(str(tmp_path / "delta"))
    three_versions_of_one_day(lake, *DAYS[:2])
    replaced = data_files(lake) - read_files(lake)
    assert len(replaced) == 2 and len(read_files(lake)) == 2

    assert vacuum(lake, [TABLE, "goods"], retention_hours=168) == [Vacuumed(TABLE, (), 2)], "goods: no such table"
    assert len(data_files(lake)) == 4

    in_flight = next(iter(replaced)).with_name("part-of-a-write-not-yet-committed.parquet")
    in_flight.write_bytes(b"PAR1")  # a concurrent writer's new file: in no log entry yet, so no tombstone either
    (done,) = vacuum(lake, [TABLE], retention_hours=0)
    assert {Path(lake.root, TABLE, name) for name in done.files_expired} == replaced
    assert in_flight.exists(), "vacuum deleted a file a writer was about to commit"
    in_flight.unlink()
    assert data_files(lake) == read_files(lake)
    assert whole_versions(lake) == {("main", DAYS[0]): 3, ("main", DAYS[1]): 1}
    assert vacuum(lake, [TABLE], retention_hours=0) == [done]
    assert data_files(lake) == read_files(lake)


def test_vacuum_on_object_storage_reports_paths_within_the_table(s3_server: S3Server) -> None:
    lake = s3_server.lake(f"vacuum-{time.monotonic_ns()}")
    three_versions_of_one_day(lake, *DAYS[:2])
    (done,) = vacuum(lake, [TABLE], retention_hours=0)
    assert len(done.files_expired) == 2 and done.files_current == 2
    assert all(name.startswith(f"base=main/doc_type={DOC_TYPE}/{DAY_KEY}=") for name in done.files_expired)
    assert whole_versions(lake) == {("main", DAYS[0]): 3, ("main", DAYS[1]): 1}
