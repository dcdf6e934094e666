"""`data/lake/views.sql`: views over the Parquet lake, for analysts who have DuckDB and nothing of this project.

Why generated: the lake's layout (which tables exist, how deep their hive partitions go) is this project's business;
an analyst should only have to run `cd data/lake && duckdb -init views.sql` and query `documents`, `stock_balance_daily`
and the rest by name. Paths are relative to the lake folder so the folder can be copied elsewhere. A view is
written only for a table that has files (DuckDB refuses a view over a glob that matches nothing).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

VIEWS_FILE = "views.sql"

LAKE_TABLES: dict[str, str] = {
    "goods": "base=*/goods/*/*.parquet",
    "documents": "base=*/documents/*/*/*.parquet",
    "document_lines": "base=*/document_lines/*/*/*.parquet",
    "goods_history": "base=*/goods_history/*/*.parquet",
    "stock_movements": "base=*/marts/stock_movements/*/*.parquet",
    "stock_balance_daily": "base=*/marts/stock_balance_daily/*/*.parquet",
    "reconciliation_diffs": "base=*/marts/reconciliation_diffs/*/*.parquet",
}
"""View name → glob under the lake folder; the folders between are hive partitions (`key=value`), the first one the
1C base, so every view has a `base` column and holds every base."""


def views_sql(lake_dir: Path) -> str:
    """The SQL text: one `CREATE OR REPLACE VIEW` per lake table that has at least one file."""
    lines = [
        "-- Views over the onec-etl Parquet lake (generated; regenerated after every mart build).",
        "-- Use: cd <data>/lake && duckdb -init views.sql   (paths are relative to this folder)",
    ]
    for view, pattern in LAKE_TABLES.items():
        if next(lake_dir.glob(pattern), None) is not None:
            options = "hive_partitioning = true, union_by_name = true"
            # the view names and globs are this module's constants
            lines.append(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{pattern}', {options});")  # noqa: S608
    return "\n".join(lines) + "\n"


def write_views(lake_dir: Path) -> Path:
    """Write `views.sql` atomically (a temporary name, then rename) and return its path."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    target = lake_dir / VIEWS_FILE
    temporary = lake_dir / f".{VIEWS_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        temporary.write_text(views_sql(lake_dir), encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
