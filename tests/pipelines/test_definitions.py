"""The Dagster layer: the graph as users see it, materializations on the embedded sandbox, the nightly schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.bases import BASES, RANGE_END_TAG, RANGE_START_TAG, RUN_BASE_TAG
from assets.lake import build_lake_check
from onec.config import Settings, load_bases
from onec.connect import embedded_sandbox_data, sandbox_window
from onec.schema import DOCUMENT_TYPES
from onec.warehouse import Warehouse
from pipelines.definitions import build_definitions
from resources import OneCResource, WarehouseResource
from tests.core.test_config import every_variable
from tests.core.test_warehouse import doc, land_documents
from tests.dagster_bases import day_key, instance_with_bases, schedule_requests
from tests.lake_equality import assert_lake_equals_warehouse

MART_ASSETS = ["reconciliation", "run_report", "stock_balance_daily", "stock_movements"]
DOCUMENT_ASSETS = [
    "documents_adjustment_down",
    "documents_adjustment_up",
    "documents_goods_receipt",
    "documents_inventory",
    "documents_shipment",
    "documents_transfer",
]


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(load_bases())


def test_graph_snapshot(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    assert sorted(key.to_user_string() for key in graph.get_all_asset_keys()) == sorted(
        ["goods", *DOCUMENT_ASSETS, "incremental_sync", *MART_ASSETS]
    )
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    assert checks == sorted(
        [
            *(
                f"{asset}:{name}"
                for asset in ["goods", *DOCUMENT_ASSETS]
                for name in ("landed_as_validated", "no_rejected_rows")
            ),
            "reconciliation:stock_agrees_with_1c",
            "incremental_sync:lake_equals_warehouse",
            "run_report:lake_equals_warehouse",
        ]
    )
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    assert jobs == ["load_exchange_files", "onec_import", "onec_incremental", "onec_sync"]
    assert [schedule.name for schedule in defs.schedules or []] == ["onec_nightly", "onec_incremental"]
    assert [sensor.name for sensor in defs.sensors or []] == [
        "onec_bases",
        "onec_webhooks",
        "exchange_inbox",
        "import_inbox",
    ]


def test_nightly_schedule_requests_the_last_three_days(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("onec_nightly")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Moscow"
    at = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # 02:00 on 11 March in Moscow
    requests = schedule_requests(defs, "onec_nightly", at)
    assert [request.partition_key for request in requests] == ["main|2026-03-08", "main|2026-03-09", "main|2026-03-10"]
    documents_only, whole_sync = requests[:-1], requests[-1]
    assert all(sorted(r.asset_selection or []) == sorted(map(dg.AssetKey, DOCUMENT_ASSETS)) for r in documents_only)
    assert whole_sync.asset_selection is None  # goods, marts, reconciliation and report after the last day


def test_sync_job_lands_what_the_sandbox_holds_and_reruns_replace(defs: dg.Definitions, settings: Settings) -> None:
    first, end = sandbox_window(settings.timezone)
    last = end - timedelta(days=1)
    tags = {RANGE_START_TAG: day_key(first), RANGE_END_TAG: day_key(last)}  # a range of one base, launched by hand
    job = defs.resolve_job_def("onec_sync")
    instance = instance_with_bases()

    result = job.execute_in_process(tags=tags, instance=instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations if e.check_name == "landed_as_validated")
    assert [e.passed for e in evaluations if e.check_name == "lake_equals_warehouse"] == [True]

    warehouse = Warehouse(settings.data_dir, settings.timezone)
    data = embedded_sandbox_data(settings)
    expected_documents = sum(len(data.documents_holdings(t.slug)) for t in DOCUMENT_TYPES)
    counts = warehouse.table_counts()
    assert counts["documents"] == expected_documents
    assert counts["goods"] == len(data.goods_holdings())
    assert counts["rejected_rows"] == 0

    assert job.execute_in_process(tags=tags, instance=instance).success
    again = warehouse.table_counts()
    assert again.pop("load_log") == 2 * counts.pop("load_log")  # one entry per landing, kept as history
    assert again == counts

    materialization = next(
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("goods")
    )
    assert materialization.metadata["dagster/row_count"].value == counts["goods"]
    requests = materialization.metadata["http_requests"].value
    assert isinstance(requests, int) and requests > 0
    assert Path(str(materialization.metadata["lake"].value)).is_dir()


def test_single_partition_materializes(defs: dg.Definitions, settings: Settings) -> None:
    day = sandbox_window(settings.timezone)[0] + timedelta(days=3)
    assets = [defs.resolve_assets_def("documents_shipment")]
    result = dg.materialize(assets, partition_key=day_key(day), instance=instance_with_bases())
    assert result.success
    warehouse = Warehouse(settings.data_dir, settings.timezone)
    landed = warehouse.query("SELECT DISTINCT doc_date FROM documents").to_series().to_list()
    assert landed in ([day], [])


def test_secrets_never_reach_dagster_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEC_AUTH", "basic")
    monkeypatch.setenv("ONEC_USERNAME", "обмен")
    monkeypatch.setenv("ONEC_PASSWORD", "s3cr3t-пароль")
    defs = build_definitions(load_bases())
    instance = instance_with_bases()
    result = dg.materialize([defs.resolve_assets_def("goods")], instance=instance, partition_key=day_key("2026-01-15"))
    assert result.success
    records = instance.get_records_for_run(result.run_id).records
    logged = "\n".join(dg.serialize_value(record.event_log_entry) for record in records)
    assert len(records) > 5 and "goods" in logged
    assert "s3cr3t" not in logged


def test_the_resources_carry_every_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Dagster run must talk to 1C and land exactly as `onec-etl` does with the same environment: every declared
    variable at a non-default value (tests/core/test_config.py's sample, which must cover the declaration) reaches
    both resources, and the schedule and partitions read theirs from the same settings."""
    for name, value in every_variable(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ONEC_BASE_SHOP_PASSWORD", "пароль-shop")
    settings = Settings.from_env()
    bases = load_bases()
    defs = build_definitions(bases)
    for resource in (defs.resources or {}).values():
        assert isinstance(resource, OneCResource | WarehouseResource)
        assert resource.settings() == settings
        assert resource.base_settings("shop") == bases.base("shop")
        assert set(resource.secrets) == {
            "ONEC_PASSWORD",
            "ONEC_API_KEY",
            "ONEC_WEBHOOK_SECRET",
            "ONEC_BASE_SHOP_PASSWORD",
            "ONEC_LAKE_S3_ACCESS_KEY_ID",
            "ONEC_LAKE_S3_SECRET_ACCESS_KEY",
            "ONEC_CELERY_BROKER",
        }
        assert "s3cr3t" not in repr(resource.variables) and "пароль" not in repr(resource.variables)
    assert sorted(defs.resources or {}) == ["onec", "warehouse"]
    partitions = defs.resolve_assets_def("documents_shipment").partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    days = partitions.get_partitions_def_for_dimension("day")
    assert isinstance(days, dg.DailyPartitionsDefinition)
    assert days.start.date().isoformat() == "2024-02-29" and days.timezone == "Asia/Novosibirsk"
    assert partitions.get_partitions_def_for_dimension("base") == BASES
    requests = schedule_requests(defs, "onec_nightly", datetime(2026, 3, 10, 19, 0, tzinfo=UTC))
    assert [request.partition_key for request in requests] == [f"shop|2026-03-{day:02d}" for day in range(6, 11)]


def test_the_nightly_run_succeeds_with_no_onec_variable_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As `./dev ui` and the schedule run it: no ONEC_* at all, so the data dir is the relative default `data/`."""
    monkeypatch.delenv("ONEC_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    defs = build_definitions(load_bases())
    request = schedule_requests(defs, "onec_nightly", datetime.now(UTC))[-1]
    result = defs.resolve_job_def("onec_sync").execute_in_process(
        partition_key=request.partition_key, instance=instance_with_bases()
    )
    assert result.success
    report = next(
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("run_report")
    )
    path = Path(str(report.metadata["report"].value))
    assert path.is_absolute() and path.is_relative_to(tmp_path / "data") and path.stat().st_size > 0
    assert str(report.metadata["report_url"].value) == path.as_uri()


def test_the_lake_check_repairs_a_deleted_lake_file_and_warns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "data", "Europe/Moscow")
    warehouse.initialize()
    land_documents(warehouse, [doc("1"), doc("2", date="2026-01-20T10:00:00")])
    lake_check = build_lake_check(dg.AssetKey("incremental_sync"))
    resource = WarehouseResource.from_settings(Settings(data_dir=warehouse.data_dir, timezone="Europe/Moscow"))
    assert _checked(lake_check, resource).passed

    deleted = warehouse.lake_dir / "document_lines/doc_type=goods-receipt/doc_date=2026-01-20/data.parquet"
    deleted.unlink()
    repaired = _checked(lake_check, resource)
    assert not repaired.passed and repaired.severity == dg.AssetCheckSeverity.WARN
    assert repaired.metadata["differing"].value == 1 and repaired.metadata["still_differing"].value == 0
    assert "document_lines/doc_type=goods-receipt/doc_date=2026-01-20" in str(repaired.metadata["differences"].value)
    assert_lake_equals_warehouse(warehouse)
    assert _checked(lake_check, resource).passed


def _checked(check: dg.AssetChecksDefinition, resource: WarehouseResource) -> dg.AssetCheckResult:
    """The check in a run of base main, as it runs after the incremental sync."""
    result = dg.materialize(
        [check], instance=instance_with_bases(), resources={"warehouse": resource}, tags={RUN_BASE_TAG: "main"},
        selection=dg.AssetSelection.checks(check), raise_on_error=False,
    )  # fmt: skip
    [evaluation] = result.get_asset_check_evaluations()
    return dg.AssetCheckResult(
        passed=evaluation.passed, severity=evaluation.severity, metadata=dict(evaluation.metadata)
    )
