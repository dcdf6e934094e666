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
LEGACY_FILES: dict[str, str] = {"goods_history": "base=*/goods_history/data.parquet"}
"""View name → glob of the files of bases whose lake still has that table in its older layout (goods_history as one
file, before closed months), which the layout's glob does not match. Each base moves at its next writer, which then
rewrites the views; until then the view adds those bases' files, listed by name, so no base goes missing from it."""


def views_sql(lake_dir: Path) -> str:
    """The SQL text: one `CREATE OR REPLACE VIEW` per lake table that has at least one file."""
    lines = [
        "-- Views over the onec-etl Parquet lake (generated; regenerated after every mart build).",
        "-- Use: cd <data>/lake && duckdb -init views.sql   (paths are relative to this folder)",
    ]
    for view, pattern in LAKE_TABLES.items():
        sources = [f"'{pattern}'"] if next(lake_dir.glob(pattern), None) is not None else []
        legacy = _legacy_files(lake_dir, view)
        if legacy:
            sources.append("[" + ", ".join(_quoted(path) for path in legacy) + "]")
        if sources:
            options = "hive_partitioning = true, union_by_name = true"
            # the view names and globs are this module's constants; the files' names are quoted
            read = [f"SELECT * FROM read_parquet({source}, {options})" for source in sources]  # noqa: S608
            selects = " UNION ALL BY NAME ".join(read)
            lines.append(f"CREATE OR REPLACE VIEW {view} AS {selects};")
    return "\n".join(lines) + "\n"


def _legacy_files(lake_dir: Path, view: str) -> list[str]:
    pattern = LEGACY_FILES.get(view)
    return sorted(path.relative_to(lake_dir).as_posix() for path in lake_dir.glob(pattern)) if pattern else []


def _quoted(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


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
