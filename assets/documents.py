"""One base × day partitioned asset per document type; a backfill runs one run per partition.

Partitions are by base and by document date in that base's time zone. A backfill launches one run per base × day
(`BackfillPolicy.multi_run(1)`: single-run backfills over multi-partitions split unpredictably, dagster issues #18852
and #23996), so the run queue can hold each base to one run at a time (dagster.yaml). The nightly schedule still
asks 1C for its few days in one run per base: a range of days within one base.
"""

from datetime import date

import dagster as dg

from assets.bases import ONE_RUN_PER_PARTITION, context_base
from assets.materialization import materialize_result, validation_check_specs
from onec.schema import DOCUMENT_TYPES, DocumentType
from onec.sync import extract_documents
from onec.warehouse import Warehouse
from resources import OneCResource, WarehouseResource, failing_cleanly


def document_asset_key(doc_type: DocumentType) -> dg.AssetKey:
    return dg.AssetKey(f"documents_{doc_type.slug.replace('-', '_')}")


def build_document_asset(doc_type: DocumentType, partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    key = document_asset_key(doc_type)

    @dg.asset(
        key=key,
        group_name="onec_documents",
        kinds={"duckdb", "parquet"},
        pool="onec_api",
        partitions_def=partitions,
        backfill_policy=ONE_RUN_PER_PARTITION,
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
        base = context_base(context)
        store = warehouse.warehouse(base)
        window = context.partition_time_window
        date_from, date_to = window.start.date(), window.end.date()
        with onec.source(base) as source:
            result = extract_documents(
                source,
                store,
                doc_type=doc_type.slug,
                date_from=date_from,
                date_to=date_to,
                run_id=context.run.run_id,
                timezone=store.timezone,
                rules=warehouse.rules(),
            )
        landed = _landed_documents(store, doc_type.slug, date_from, date_to)
        context.log.info(
            f"{base}: {doc_type.slug} {date_from}..{date_to}: {result.rows} documents, {result.lines} lines, "
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


def build_document_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_document_asset(doc_type, partitions) for doc_type in DOCUMENT_TYPES]
