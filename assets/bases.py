"""The base a run works on, read from its partition: the `base` dimension of base × day, or the base-only partition.

Why from the partition and not from a resource's configuration: one code location serves every configured base, and
Dagster's run queue limits runs per base by a tag derived from the partition (`RUN_BASE_TAG`), so the partition is the
one place that says, for Dagster and for the code alike, which 1C a run may talk to.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

BASE_DIMENSION = "base"
DAY_DIMENSION = "day"
BASES_NAME = "onec_bases"
BASES = dg.DynamicPartitionsDefinition(name=BASES_NAME)
"""The configured bases, added to the instance by the `onec_bases` sensor and the schedules (`register_bases`)."""
RUN_BASE_TAG = "onec/base"
"""The base of a run, given to every run by the run coordinator (`pipelines.instance.PerBaseRunCoordinator`) and
limited to one run per value by the run queue (dagster.yaml). Dagster's own `dagster/partition/base` is not enough:
it is set on a run of one base × day partition launched alone, but a backfill's runs (one partition each) carry only
the partition range tags (dagster 1.13.28), and a run whose tags name `dagster/partition/base` beside a range fails:
Dagster reads that tag back as the run's partition."""
_PARTITION_TAG = "dagster/partition"
_BASE_PARTITION_TAG = f"{_PARTITION_TAG}/{BASE_DIMENSION}"
_KEY_DELIMITER = "|"
"""Between the dimensions of a base × day key, which Dagster orders by dimension name: `base` comes first."""
ONE_RUN_PER_PARTITION = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
"""Backfills of the base × day assets: one run per partition, so that the run queue can hold each base to one run at
a time, and because single-run backfills over multi-partitions split unpredictably (dagster #18852, #23996)."""
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def context_base(context: dg.AssetExecutionContext) -> str:
    """The base of an asset's run: its partition's (or partition range's, which must stay within one base)."""
    partitions = context.assets_def.partitions_def
    key_range = context.partition_key_range
    found = {key_base(partitions, key_range.start), key_base(partitions, key_range.end)}
    if len(found) != 1:
        raise dg.Failure(f"a run works on one base; this one spans {', '.join(sorted(found))}: launch one per base")
    return found.pop()


def key_base(partitions: dg.PartitionsDefinition | None, key: str) -> str:
    """The base of a partition key: the base dimension of base × day, or the key itself (the base-only partitions)."""
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return partitions.get_partition_key_from_str(key).keys_by_dimension[BASE_DIMENSION]
    return key


def run_base(tags: Mapping[str, str]) -> str | None:
    """The base a run works on, from its tags: the coordinator's (or the inbox sensors', which set it on each import
    and exchange-file run), else its partition's or its partition range's (the base-only key, or the first part of a
    base × day key); None for a run that names no base (an import or a file load launched by hand)."""
    for tag in (RUN_BASE_TAG, _BASE_PARTITION_TAG, _PARTITION_TAG, RANGE_START_TAG):
        if tag in tags:
            return tags[tag].split(_KEY_DELIMITER, 1)[0]
    return None


def tags_base(tags: Mapping[str, str]) -> str:
    """The base of a run an asset check runs in (its context has no partition)."""
    base = run_base(tags)
    if base is None:
        raise dg.Failure("this run names no base (no partition): launch it for a base's partition")
    return base


def register_bases(instance: dg.DagsterInstance, base_ids: list[str]) -> list[str]:
    """Add the configured bases the instance does not know yet to the base dimension; returns those added. A base
    dropped from the configuration keeps its partition (and its history in the UI); nothing is removed."""
    missing = unregistered_bases(instance, base_ids)
    if missing:
        instance.add_dynamic_partitions(BASES_NAME, missing)
    return missing


def unregistered_bases(instance: dg.DagsterInstance, base_ids: list[str]) -> list[str]:
    """The configured bases that are not (yet) partitions of the base dimension."""
    known = set(instance.get_dynamic_partitions(BASES_NAME))
    return [base for base in base_ids if base not in known]
