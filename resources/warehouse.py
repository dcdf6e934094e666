"""The warehouse (DuckDB file + Parquet lake) as a Dagster resource; assets write through it, no IO manager."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from onec.rules import DEFAULT_RULES, ValidationRules
from onec.schema import DEFAULT_TIMEZONE
from onec.warehouse import ShrinkGuard, Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives (`ONEC_DATA_DIR`), the 1C zone its timestamps are read in, the validation rules
    every landing checks against (`ONEC_VALIDATION_RULES`, docs/validation.md; empty: the defaults), and its shrink
    guard (`ONEC_SHRINK_GUARD_*`; `force_replace`, `ONEC_FORCE_REPLACE`, lands a 1C that really shrank)."""

    data_dir: str = "data"
    timezone: str = DEFAULT_TIMEZONE
    validation_rules: str | None = None
    shrink_guard_share: float = ShrinkGuard.max_removed_share
    shrink_guard_min_rows: int = ShrinkGuard.min_rows
    force_replace: bool = False

    def rules(self) -> ValidationRules:
        return ValidationRules.from_file(Path(self.validation_rules)) if self.validation_rules else DEFAULT_RULES

    def warehouse(self) -> Warehouse:
        guard = ShrinkGuard(self.shrink_guard_share, self.shrink_guard_min_rows, force=self.force_replace)
        warehouse = Warehouse(Path(self.data_dir), self.timezone, shrink_guard=guard)
        warehouse.initialize()
        return warehouse
