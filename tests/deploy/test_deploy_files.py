"""The deployment files (deploy/) as the tools that read them read them: Dagster's instance schema, dagster-celery's
worker configuration, and the keys of Dagster's Helm chart; plus the promise that every deployment limits 1C alike.

No service is started here (tests/e2e/test_runs_over_workers.py runs deploy/dagster.yaml and deploy/celery.yaml for
real); the Helm values are not run anywhere, so their keys are checked against the chart's values schema.
"""

from __future__ import annotations

import shutil
from importlib import import_module
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_celery.cli import get_validated_config
from dagster_postgres.utils import pg_config
from dagster_shared.yaml_utils import load_yaml_from_path

from onec.config import ConfigError, Settings, load_bases
from pipelines.definitions import build_definitions
from pipelines.executors import CELERY_EXECUTOR
from pipelines.instance import instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BROKER = "redis://:pa55@127.0.0.1:6399/0"


def _yaml(path: Path) -> dict[str, Any]:
    loaded = load_yaml_from_path(str(path))
    assert isinstance(loaded, dict), f"{path}: not a mapping"
    return loaded


def test_the_instance_file_is_valid_dagster_configuration(tmp_path: Path) -> None:
    """Dagster's own validation (the one that refused `max_concurrent_runs` under `run_coordinator` beside a
    `concurrency` block), and the Postgres storage block against dagster-postgres' schema."""
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    storage = validate_config(pg_config(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}


def test_the_run_queue_is_the_one_the_repositorys_instance_has() -> None:
    """The same coordinator and limits as the repository's dagster.yaml (`pipelines.instance`, the one-machine
    instance), so a deployment cannot drift from what the run queue tests check."""
    deployed = _yaml(DEPLOY / "dagster.yaml")
    assert {key: deployed[key] for key in ("run_coordinator", "concurrency")} == instance_config(Settings())
    coordinator = deployed["run_coordinator"]
    assert issubclass(getattr(import_module(coordinator["module"]), coordinator["class"]), QueuedRunCoordinator)


def test_the_workers_read_the_broker_the_code_location_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/celery.yaml resolves, as `dagster-celery worker start` resolves it, to ONEC_CELERY_BROKER for both the
    broker and the result backend: what the code location's executor sends its steps to."""
    monkeypatch.setenv("ONEC_CELERY_BROKER", BROKER)
    worker = get_validated_config(str(DEPLOY / "celery.yaml"))
    assert (worker["broker"], worker["backend"]) == (BROKER, BROKER)
    job = build_definitions(load_bases()).resolve_job_def("onec_sync")
    assert job.executor_def.name == CELERY_EXECUTOR
    assert BROKER not in repr(job.executor_def.config_schema), "the Redis password must stay in the environment"


def test_without_a_broker_runs_stay_in_process() -> None:
    """The single-base default needs no service."""
    job = build_definitions(load_bases()).resolve_job_def("onec_sync")
    assert job.executor_def is dg.in_process_executor


def test_a_broker_that_is_not_a_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="ONEC_CELERY_BROKER must be a URL") as raised:
        Settings.from_env({"ONEC_CELERY_BROKER": "localhost:6379"})
    assert "localhost" not in str(raised.value)


def test_a_broker_without_dagster_celery_installed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "dagster_celery", None)
    with pytest.raises(ConfigError, match=r"onec-etl\[deploy\]"):
        build_definitions(load_bases({"ONEC_CELERY_BROKER": BROKER}))


# The keys Dagster's Helm chart accepts where these values set any (its values schema forbids other keys there).
CHART_KEYS: dict[str, set[str]] = {
    "": {
        "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
        "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
        "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig",
    },
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "dagster-user-deployments.deployments[]": {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "port", "env",
        "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
        "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
        "volumes", "schedulerName",
    },
    "dagster-user-deployments.deployments[].image": {"repository", "tag", "pullPolicy"},
    "runLauncher": {"type", "config"},
    "runLauncher.config": {"celeryK8sRunLauncher", "k8sRunLauncher", "customRunLauncher"},
    "runLauncher.config.k8sRunLauncher": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
        "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
        "schedulerName", "securityContext", "runK8sConfig",
    },
    "runLauncher.config.k8sRunLauncher.runK8sConfig": {
        "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata",
    },
    "postgresql": {
        "postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
        "postgresqlDatabase", "postgresqlParams", "service",
    },
    "postgresql.service": {"port"},
    "dagsterDaemon.runCoordinator": {"enabled", "type", "config"},
    "dagsterDaemon.runCoordinator.config": {"queuedRunCoordinator", "customRunCoordinator"},
    "dagsterDaemon.runCoordinator.config.customRunCoordinator": {"module", "class", "config"},
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
        "dequeueUseThreads",
    },
    "concurrency": {"enabled", "pools", "runs"},
    "concurrency.pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "concurrency.runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
    "concurrency.runs.tagConcurrencyLimits[]": {"key", "value", "limit"},
}  # fmt: skip
CHART_CHOICES = {
    "runLauncher.type": {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"},
    "dagsterDaemon.runCoordinator.type": {"QueuedRunCoordinator", "CustomRunCoordinator"},
}


def _unknown_keys(value: object, path: str = "") -> list[str]:
    """Keys the chart's schema does not allow, at the paths CHART_KEYS covers."""
    if isinstance(value, list):
        return [found for item in value for found in _unknown_keys(item, f"{path}[]")]
    if not isinstance(value, dict):
        return []
    allowed = CHART_KEYS.get(path)
    found = [f"{path}.{key}" for key in value if allowed is not None and key not in allowed]
    for key, inner in value.items():
        found += _unknown_keys(inner, f"{path}.{key}" if path else key)
    return found


def _at(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def test_the_helm_values_use_only_the_charts_keys() -> None:
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    assert _unknown_keys(values) == []
    for path, choices in CHART_CHOICES.items():
        assert _at(values, path) in choices, path
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pipelines.definitions"]


def test_the_scanner_finds_a_misspelt_key() -> None:
    assert _unknown_keys({"runLauncher": {"type": "K8sRunLauncher", "confg": {}}}) == ["runLauncher.confg"]


def test_kubernetes_and_the_instance_file_limit_1c_alike() -> None:
    """The coordinator, the licence budget, one run per base and the pools are the same in both deployments."""
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    custom = values["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    coordinator = _yaml(DEPLOY / "dagster.yaml")["run_coordinator"]
    assert (custom["module"], custom["class"], custom["config"]) == (
        coordinator["module"],
        coordinator["class"],
        coordinator["config"],
    )
    helm = values["concurrency"]
    instance = _yaml(DEPLOY / "dagster.yaml")["concurrency"]
    assert helm["runs"]["maxConcurrentRuns"] == instance["runs"]["max_concurrent_runs"]
    assert helm["pools"]["defaultLimit"] == instance["pools"]["default_limit"]
    as_instance = [
        {"key": limit["key"], "limit": limit["limit"], "value": limit["value"]}
        for limit in helm["runs"]["tagConcurrencyLimits"]
    ]
    assert as_instance == instance["runs"]["tag_concurrency_limits"]
