"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from onec.rules import ValidationRules
from onec.warehouse import Warehouse
from resources.settings import SettingsResource


class WarehouseResource(SettingsResource):
    """Where the warehouse lives (`ONEC_DATA_DIR`), the 1C zone its timestamps are read in (`ONEC_TIMEZONE`), and
    the validation rules every landing checks against (`ONEC_VALIDATION_RULES`, docs/validation.md)."""

    def rules(self) -> ValidationRules:
        return self.settings().rules

    def warehouse(self) -> Warehouse:
        settings = self.settings()
        warehouse = Warehouse(settings.data_dir, settings.timezone)
        warehouse.initialize()
        return warehouse
