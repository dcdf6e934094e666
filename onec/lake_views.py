"""`data/lake/views.sql`: views over the Parquet lake, for analysts who have DuckDB and nothing of this project.

Why generated: the lake's layout (which tables exist, how deep their hive partitions go) is this project's business;
an analyst should only have to run `cd data/lake && duckdb -init views.sql` and query `documents`, `stock_balance_daily`
and the rest by name. Paths are relative to the lake folder so the folder can be copied elsewhere. A view is
written only for a table that has files (DuckDB refuses a view over a glob that matches nothing).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
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
LEGACY_FILES: dict[str, str] = {"goods_history": "goods_history/data.parquet"}
"""View name → the file, under a base's folder, of a table in its older layout (goods_history as one file, before
closed months), which the layout's glob does not match. Each base moves at its own next writer (which writes the
months, then the views, then removes the old file); until every base has, the view reads each base apart: the old
file of a base that has one, the months of one that has moved. So no base is missing from the view, and none is
read twice while it is moving."""
OPTIONS = "hive_partitioning = true, union_by_name = true"


def views_sql(lake_dir: Path, moved: Collection[str] = ()) -> str:
    """The SQL text: one `CREATE OR REPLACE VIEW` per lake table that has at least one file. `moved`: base folders
    whose old-layout file is to be ignored (their new layout is complete; the file is about to go)."""
    lines = [
        "-- Views over the onec-etl Parquet lake (generated; regenerated after every mart build).",
        "-- Use: cd <data>/lake && duckdb -init views.sql   (paths are relative to this folder)",
    ]
    for view, pattern in LAKE_TABLES.items():
        sources = _sources(lake_dir, pattern, LEGACY_FILES.get(view), moved)
        if sources:
            # the view names and globs are this module's constants; the folders' names are quoted
            read = [f"SELECT * FROM read_parquet([{', '.join(map(sql_literal, s))}], {OPTIONS})" for s in sources]  # noqa: S608
            lines.append(f"CREATE OR REPLACE VIEW {view} AS {' UNION ALL BY NAME '.join(read)};")
    return "\n".join(lines) + "\n"


def _sources(lake_dir: Path, pattern: str, legacy: str | None, moved: Collection[str]) -> list[list[str]]:
    """A view's files as lists of globs, each read by one read_parquet: one glob for every base, unless some base
    not in `moved` still has its old-layout file; then the months of each base that has them, and those old files."""
    found = sorted(path.relative_to(lake_dir).parts[0] for path in lake_dir.glob(f"base=*/{legacy}")) if legacy else []
    unmoved = [folder for folder in found if folder not in moved]
    if not unmoved:
        return [[pattern]] if next(lake_dir.glob(pattern), None) is not None else []
    per_base = pattern.split("/", 1)[1]
    new = [
        f"{folder.name}/{per_base}"
        for folder in sorted(lake_dir.glob("base=*"))
        if folder.name not in unmoved and next(folder.glob(per_base), None) is not None
    ]
    return [group for group in (new, [f"{folder}/{legacy}" for folder in unmoved]) if group]


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal (quotes doubled): for the SQL that cannot bind parameters, a view's text or a
    delta-rs predicate."""
    return "'" + text.replace("'", "''") + "'"


def write_views(lake_dir: Path, moved: Collection[str] = ()) -> Path:
    """Write `views.sql` atomically (a temporary name, then rename) and return its path (`moved`: see views_sql)."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    target = lake_dir / VIEWS_FILE
    temporary = lake_dir / f".{VIEWS_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        temporary.write_text(views_sql(lake_dir, moved), encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
