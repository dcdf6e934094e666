"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from onec.connect import open_warehouse
from onec.rules import ValidationRules
from onec.warehouse import Warehouse
from resources.settings import SettingsResource


class WarehouseResource(SettingsResource):
    """Where the warehouses live (`ONEC_DATA_DIR`; one per base, see docs/warehouse.md), the 1C zone each base's
    timestamps are read in, the validation rules every landing checks against (`ONEC_VALIDATION_RULES`,
    docs/validation.md), and the shrink guard (`ONEC_SHRINK_GUARD_*`; `ONEC_FORCE_REPLACE` lands a 1C that really
    shrank)."""

    def rules(self) -> ValidationRules:
        return self.settings().rules

    def warehouse(self, base: str | None = None) -> Warehouse:
        """The warehouse of base `base` (None: the first configured), initialized."""
        return open_warehouse(self.base_settings(base))
