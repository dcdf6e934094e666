"""Dagster resources: thin typed wrappers over the Dagster-free core in `onec`."""

from resources.failures import failing_cleanly
from resources.onec import OneCResource
from resources.warehouse import WarehouseResource

__all__ = ["OneCResource", "WarehouseResource", "failing_cleanly"]
