"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from onec.schema import DEFAULT_TIMEZONE
from onec.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives (`ONEC_DATA_DIR`) and the 1C zone its timestamps are read in."""

    data_dir: str = "data"
    timezone: str = DEFAULT_TIMEZONE

    def warehouse(self) -> Warehouse:
        warehouse = Warehouse(Path(self.data_dir), self.timezone)
        warehouse.initialize()
        return warehouse
