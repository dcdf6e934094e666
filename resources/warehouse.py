"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from onec.config import SHARED_DIR
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

    def shared_warehouse(self) -> Warehouse:
        """The warehouse the Delta lake is loaded into (`warehouse_from_lake`): with one base its own, which the lake
        mirrors (loading it changes nothing); with several, one of their own under `<ONEC_DATA_DIR>/shared/` that
        no base lands into (nor mirrors to the lake), holding every base's rows apart by a `base` column."""
        bases = self.bases()
        if len(bases.ids) == 1:
            return self.warehouse()
        return Warehouse(bases.settings.data_dir / SHARED_DIR, bases.settings.timezone)
