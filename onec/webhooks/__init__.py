"""Webhooks from 1C (§1.8): a receiver that verifies, screens and durably queues change events, and the
registration call. The Dagster sensor in `pipelines.sensors` turns queued events into incremental runs."""
