"""The base a run works on, read from its partition: the `base` dimension of base × day, or the base-only partition.

Why from the partition and not from a resource's configuration: one code location serves every configured base, and
Dagster's run queue limits runs per base by the partition's tag (`BASE_TAG`, dagster.yaml), so the partition is the
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
BASE_TAG = f"dagster/partition/{BASE_DIMENSION}"
"""The tag Dagster gives a run of one base × day partition, which dagster.yaml limits to one run per base; the runs
of the base-only partition (incremental) are given it by their schedule and sensor."""
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


def tags_base(tags: Mapping[str, str], partitions: dg.PartitionsDefinition) -> str:
    """The base of a run from its tags (for asset checks, whose context has no partition): its base tag, else the
    start of its partition range."""
    if BASE_TAG in tags:
        return tags[BASE_TAG]
    for tag in (RANGE_START_TAG, "dagster/partition"):
        if tag in tags:
            return key_base(partitions, tags[tag])
    raise dg.Failure(f"this run names no base (no {BASE_TAG} tag nor partition): launch it for a base's partition")


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
