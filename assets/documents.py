"""One daily-partitioned asset per document type; a backfill of any date range runs as one single run.

Partitions are by document date in the 1C time zone. A single-run backfill asks 1C for the whole range at once
(one paginated query per type), which is far fewer requests than one query per day.
"""

from datetime import date

import dagster as dg

from assets.materialization import materialize_result, validation_check_specs
from onec.schema import DOCUMENT_TYPES, DocumentType
from onec.sync import extract_documents
from onec.warehouse import Warehouse
from resources import OneCResource, WarehouseResource, failing_cleanly


def document_asset_key(doc_type: DocumentType) -> dg.AssetKey:
    return dg.AssetKey(f"documents_{doc_type.slug.replace('-', '_')}")


def build_document_asset(doc_type: DocumentType, partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    key = document_asset_key(doc_type)

    @dg.asset(
        key=key,
        group_name="onec_documents",
        kinds={"duckdb", "parquet"},
        pool="onec_api",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=validation_check_specs(key),
        description=(
            f"{doc_type.seed_name} documents ({doc_type.slug}) and their lines, by document date. "
            "Materializing a partition range replaces those days in `documents`, `document_lines` and the lake."
        ),
    )
    @failing_cleanly
    def _documents(
        context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]  # with check specs, dagster loads the asset only if this is the bare class
        store = warehouse.warehouse()
        window = context.partition_time_window
        date_from, date_to = window.start.date(), window.end.date()
        with onec.source() as source:
            result = extract_documents(
                source,
                store,
                doc_type=doc_type.slug,
                date_from=date_from,
                date_to=date_to,
                run_id=context.run.run_id,
                timezone=onec.settings().timezone,
                rules=warehouse.rules(),
            )
        landed = _landed_documents(store, doc_type.slug, date_from, date_to)
        context.log.info(
            f"{doc_type.slug} {date_from}..{date_to}: {result.rows} documents, {result.lines} lines, "
            f"{result.rejected} rejected"
        )
        lake = store.lake_dir / "documents" / f"doc_type={doc_type.slug}"
        return materialize_result(key, result, store, landed, str(lake))

    return _documents


def _landed_documents(store: Warehouse, doc_type: str, date_from: date, date_to: date) -> int:
    frame = store.query(
        "SELECT count(*) FROM documents WHERE doc_type = ? AND doc_date >= ? AND doc_date < ?",
        [doc_type, date_from, date_to],
    )
    return int(frame.item())


def build_document_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_document_asset(doc_type, partitions) for doc_type in DOCUMENT_TYPES]
