"""Exchange files built for tests of what a file replaces: shipments CSV, goods CSV, a cut CommerceML offers file,
and the goods_history agreement every goods landing must keep."""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from onec.warehouse import Warehouse

ZONE = "Europe/Moscow"
DOBROMYSLOV = Path("/work/shared/samples/commerceml/cml207_1c_export_dobromyslov")
SHIPMENT_HEADER = (
    "Id,Number,Date,Status,Posted,Counterparty,Warehouse,WarehouseTo,Line,SKU,Name,Quantity,UnitPrice,Total,"
    "BookQuantity,Notes,Deleted,ModifiedAt"
)


def shipment_row(number: str, day: str, modified: str = "", quantity: str = "2") -> str:
    """One CSV row: a shipment with one line of `quantity` at 1.50 (a quantity that is not a number is rejected)."""
    total = f"{Decimal(quantity) * Decimal('1.5'):.2f}" if quantity.isdigit() else "0"
    return (
        f"id-{number},{number},{day}T10:00:00,posted,true,ООО Покупатель,wh-main,,1,PROD-1,Товар,{quantity},1.50,"
        f"{total},,,false,{modified}"
    )


def shipment_record(number: str, day: str, modified: str | None = None, quantity: int = 2) -> dict[str, Any]:
    """The record 1C's JSON pages give for `shipment_row`."""
    item = {"line": 1, "sku": "PROD-1", "name": "Товар", "quantity": quantity, "unit_price": "1.50",
            "total": str(Decimal(quantity) * Decimal("1.5"))}  # fmt: skip
    return {"id": f"id-{number}", "number": number, "date": f"{day}T10:00:00", "status": "posted", "posted": True,
            "customer": "ООО Покупатель", "warehouse": "wh-main", "modified_at": modified, "items": [item]}  # fmt: skip


def shipments_csv(path: Path, rows: Sequence[tuple[str, ...]]) -> Path:
    """A shipments CSV export of `shipment_row(*row)` for each row."""
    path.write_text("\n".join([SHIPMENT_HEADER, *(shipment_row(*row) for row in rows)]) + "\n", encoding="utf-8")
    return path


def goods_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A goods CSV export of (sku, quantity) rows at wh-main."""
    lines = ["SKU,Name,Quantity,Warehouse", *(f"{sku},Товар {sku},{quantity},wh-main" for sku, quantity in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def offers_of_one(path: Path, *, quantity: str, changes_only: bool = False) -> Path:
    """offers0_1.xml holding its first offer only (PM-421-WP), with Москва's stock set to `quantity`."""
    text = (DOBROMYSLOV / "offers0_1.xml").read_text("utf-8-sig")
    head, rest = text.split("<Предложения>", 1)
    offers, tail = rest.split("</Предложения>", 1)
    first = offers[: offers.index("</Предложение>") + len("</Предложение>")]
    first = first.replace('КоличествоНаСкладе="376"', f'КоличествоНаСкладе="{quantity}"')
    if changes_only:
        head = head.replace('СодержитТолькоИзменения="false"', 'СодержитТолькоИзменения="true"')
    path.write_text(f"{head}<Предложения>{first}</Предложения>{tail}", encoding="utf-8")
    return path


def cli_warehouse() -> Warehouse:
    """The warehouse `onec-etl` commands of this test write to (ONEC_DATA_DIR)."""
    return Warehouse(Path(os.environ["ONEC_DATA_DIR"]), ZONE)


def goods_agree_with_history(store: Warehouse) -> list[tuple[Any, ...]]:
    """The newest snapshot's positions and attributes, after checking they are exactly goods_history's open
    versions."""
    attributes = "sku, warehouse, name, quantity, price, unit, code"
    newest = store.query(
        f"SELECT {attributes} FROM goods WHERE snapshot_date = (SELECT max(snapshot_date) FROM goods) ORDER BY ALL"  # noqa: S608
    ).rows()
    current = store.query(f"SELECT {attributes} FROM goods_history WHERE valid_to IS NULL ORDER BY ALL").rows()  # noqa: S608
    assert current == newest
    return newest
