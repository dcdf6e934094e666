"""Where a run's steps execute: in the run's own process by default, on Celery workers when a broker is configured.

Why in-process by default: one process holds one 1C session, so one rate limiter governs the whole run, and a single
machine needs no service. Why Celery beside it: a network of bases outgrows one machine, and Celery spreads steps over
hosts with Redis as the only extra service (deploy/README.md). Steps on workers each open their own 1C session; what
keeps 1C's load bounded there is the instance's `onec_api` pool and the run queue's per-base limits, which Dagster
applies to Celery steps as to in-process ones.
"""

from __future__ import annotations

import dagster as dg

from onec.config import ConfigError, Settings, WorkerSettings, variable_name

CELERY_EXECUTOR = "onec_celery"


def run_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor every job of the code location uses, chosen by `ONEC_CELERY_BROKER`."""
    if not settings.workers.celery_broker:
        return dg.in_process_executor
    return celery_executor()


def celery_executor() -> dg.ExecutorDefinition:
    """`dagster_celery.celery_executor` reading the broker URL from the environment of the process that runs it.

    The URL stays an `env` reference in the run's configuration, so the Redis password is never stored with the run;
    deploy/celery.yaml gives the workers the same two settings."""
    try:
        from dagster_celery import celery_executor as celery
    except ImportError:
        raise ConfigError(
            f"{variable_name(WorkerSettings, 'celery_broker')} is set but dagster-celery is not installed: "
            "pip install 'onec-etl[deploy]'"
        ) from None
    url = {"env": variable_name(WorkerSettings, "celery_broker")}
    return celery.configured({"broker": url, "backend": url}, name=CELERY_EXECUTOR)
