"""How one extraction becomes Dagster metadata and asset check results.

Shared by the goods and documents assets so that every materialization reports the same figures and every asset
carries the same two checks: nothing rejected (a warning: the rows are kept in `rejected_rows` with reasons), and
the warehouse holds exactly what was validated (an error: a landing bug, never expected).
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from onec.sync import ExtractResult
from onec.warehouse import Warehouse

NO_REJECTED_ROWS = "no_rejected_rows"
LANDED_AS_VALIDATED = "landed_as_validated"


def validation_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            NO_REJECTED_ROWS,
            asset=asset_key,
            description="Every record 1C sent passed validation (rejected ones are in rejected_rows with the reason).",
        ),
        dg.AssetCheckSpec(
            LANDED_AS_VALIDATED,
            asset=asset_key,
            description="The warehouse partition holds exactly the rows that passed validation, each key once.",
        ),
    ]


def materialize_result(
    asset_key: dg.AssetKey, result: ExtractResult, warehouse: Warehouse, landed_rows: int, lake_path: str
) -> dg.MaterializeResult[None]:
    """Metadata a data engineer reads first (row counts, rejects, requests, retries, bytes) plus the two checks."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": result.rows,
        **result.as_metadata(),
        "lake": dg.MetadataValue.path(lake_path),
        "warehouse": dg.MetadataValue.path(str(warehouse.database)),
    }
    return dg.MaterializeResult(
        asset_key=asset_key,
        metadata=metadata,
        check_results=[
            _rejected_check(asset_key, result, warehouse),
            _landed_check(asset_key, result, landed_rows),
        ],
    )


def _rejected_check(asset_key: dg.AssetKey, result: ExtractResult, warehouse: Warehouse) -> dg.AssetCheckResult:
    reasons = warehouse.query(
        "SELECT reason, count(*) AS n FROM rejected_rows WHERE run_id = ? AND entity = ? "
        "AND coalesce(doc_type, '') = ? GROUP BY reason ORDER BY n DESC LIMIT 10",
        [result.run_id, result.entity, result.doc_type or ""],
    )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=NO_REJECTED_ROWS,
        passed=result.rejected == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected": result.rejected,
            "duplicates": result.duplicates,
            "top_reasons": dg.MetadataValue.md(_reasons_markdown(reasons.rows())),
        },
    )


def _landed_check(asset_key: dg.AssetKey, result: ExtractResult, landed_rows: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=LANDED_AS_VALIDATED,
        passed=landed_rows == result.rows,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"validated_rows": result.rows, "rows_in_warehouse": landed_rows},
    )


def _reasons_markdown(rows: Sequence[tuple[object, ...]]) -> str:
    if not rows:
        return "none"
    return "\n".join(f"- {count} × {reason}" for reason, count in rows)
