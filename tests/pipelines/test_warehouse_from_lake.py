"""The Dagster step that builds the shared warehouse from the Delta lake: present only with ONEC_LAKE_FORMAT=delta,
in a pool of its own (one at a time), and materializing it loads what a worker mirrored to the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from assets.lake import WAREHOUSE_BUILD_POOL, WAREHOUSE_FROM_LAKE, warehouse_from_lake
from onec.config import Settings, load_bases
from onec.delta_lake import DeltaLake, DeltaTarget
from onec.warehouse import Warehouse
from pipelines.definitions import build_definitions
from resources import WarehouseResource
from tests.core.test_lake_load import assert_tables_equal
from tests.core.test_lake_mirror import GOODS, SPREAD_DOCUMENTS, merge_documents, merge_goods
from tests.core.test_warehouse import ZONE

BASES = ("north", "south")


def test_the_step_exists_only_for_the_delta_lake_and_runs_alone() -> None:
    default = build_definitions(load_bases()).resolve_asset_graph()
    assert WAREHOUSE_FROM_LAKE not in default.get_all_asset_keys()
    delta = build_definitions(load_bases({"ONEC_LAKE_FORMAT": "delta"})).resolve_asset_graph()
    assert WAREHOUSE_FROM_LAKE in delta.get_all_asset_keys()
    assert delta.get(WAREHOUSE_FROM_LAKE).pools == {WAREHOUSE_BUILD_POOL}


def test_materializing_it_loads_what_a_worker_mirrored_to_the_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ONEC_DATA_DIR", str(shared))
    monkeypatch.setenv("ONEC_TIMEZONE", ZONE)
    monkeypatch.setenv("ONEC_LAKE_FORMAT", "delta")
    landed = Warehouse(tmp_path / "worker", ZONE, delta=DeltaTarget(DeltaLake(str(shared / "delta"))))
    landed.initialize()
    merge_documents(landed, SPREAD_DOCUMENTS, "worker")
    merge_goods(landed, GOODS, dt.date(2026, 1, 31), "worker")

    resources = {"warehouse": WarehouseResource.from_settings(Settings.from_env())}
    result = dg.materialize([warehouse_from_lake], resources=resources)

    assert result.success
    (materialization,) = result.asset_materializations_for_node("warehouse_from_lake")
    assert materialization.metadata["partitions_reloaded"].value == 26
    assert_tables_equal(Warehouse(shared, ZONE), landed)


def test_with_several_bases_it_builds_a_warehouse_of_every_base_beside_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two bases, each landed by its own worker into the shared Delta lake: the step loads both into
    `<ONEC_DATA_DIR>/shared/`, apart by `base`, and leaves each base's own warehouse as it was."""
    data = tmp_path / "data"
    bases_file = tmp_path / "bases.toml"
    bases_file.write_text(
        "".join(f'[[base]]\nid = "{b}"\nsandbox_seed = {n}\n\n' for n, b in enumerate(BASES)), "utf-8"
    )
    for name, value in {"ONEC_DATA_DIR": str(data), "ONEC_TIMEZONE": ZONE, "ONEC_LAKE_FORMAT": "delta",
                        "ONEC_BASES_FILE": str(bases_file)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    lake = DeltaLake(str(data / "delta"))
    workers = {}
    for index, base in enumerate(BASES):
        workers[base] = Warehouse(tmp_path / f"worker-{base}", ZONE, base=base, delta=DeltaTarget(lake, base))
        workers[base].initialize()
        merge_documents(workers[base], SPREAD_DOCUMENTS[index:], base)
        merge_goods(workers[base], GOODS[index:], dt.date(2026, 1, 31), base)

    resources = {"warehouse": WarehouseResource.from_bases(load_bases())}
    assert dg.materialize([warehouse_from_lake], resources=resources).success

    shared = Warehouse(data / "shared", ZONE)
    for base, landed in workers.items():
        assert_tables_equal(shared, landed, base)
    assert not (data / "bases").exists(), "no base's own warehouse was opened"
