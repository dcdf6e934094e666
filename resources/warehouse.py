"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DEFAULT_TIMEZONE
from onec.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives (`ONEC_DATA_DIR`), the 1C zone its timestamps are read in, and the validation
    rules every landing checks against (`ONEC_VALIDATION_RULES`, docs/validation.md; empty: the defaults)."""

    data_dir: str = "data"
    timezone: str = DEFAULT_TIMEZONE
    validation_rules: str | None = None

    def rules(self) -> ValidationRules:
        return ValidationRules.from_file(Path(self.validation_rules)) if self.validation_rules else DEFAULT_RULES

    def warehouse(self) -> Warehouse:
        warehouse = Warehouse(Path(self.data_dir), self.timezone)
        warehouse.initialize()
        return warehouse
