"""CSV and UDE XML exports: every variation decodes back to exactly the holdings with a plain csv/lxml read;
bodies stream; faults cut them; files are written chunk by chunk."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from onec.sandbox.data import Document, Good, SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest
from onec.sandbox.exports import ExportVariant, write_export_files
from onec.schema import DOCUMENT_SLUGS
from tests.sandbox.sandbox_helpers import MOSCOW, document_truth, good_truth

MakeClient = Callable[..., httpx.Client]
VARIANTS = ExportVariant.variations()
ALIASES = {"Артикул": "SKU", "Наименование": "Name", "Количество": "Quantity", "Склад": "Warehouse",
           "ЕдиницаИзмерения": "Unit", "Цена": "Price"}  # fmt: skip
BOOLEANS = {"true": True, "Да": True, "1": True, "false": False, "Нет": False, "0": False}


# --- reading back as a careful client would, with nothing but csv and lxml


def decode_csv(content: bytes, content_type: str) -> list[dict[str, str | None]]:
    """BOM first, then the declared charset, then UTF-8 if it decodes, else windows-1251; `;` or `,` from the
    header line; Russian headers mapped back; empty cells are None."""
    if content.startswith(b"\xef\xbb\xbf"):
        text = content[3:].decode("utf-8")
    elif "charset=" in content_type:
        text = content.decode(content_type.split("charset=")[1])
    else:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode("windows-1251")
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if first.count(";") > first.count(",") else ",")
    header = [ALIASES.get(name, name) for name in next(reader)]
    return [{name: cell or None for name, cell in zip(header, row, strict=True)} for row in reader]


def number(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value.replace(",", "."))


def stamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=MOSCOW)


def good_from_csv(row: dict[str, str | None]) -> dict[str, Any]:
    return {
        "id": row["Id"], "code": row["Code"], "sku": row["SKU"], "name": row["Name"], "unit": row["Unit"],
        "price": number(row["Price"]), "quantity": number(row["Quantity"]), "warehouse": row["Warehouse"],
        "deleted": BOOLEANS[row["Deleted"] or ""], "modified_at": stamp(row["ModifiedAt"]),
    }  # fmt: skip


def documents_from_csv(rows: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for row in rows:
        doc = docs.setdefault(str(row["Id"]), {
            "id": row["Id"], "number": row["Number"], "date": stamp(row["Date"]), "status": row["Status"],
            "posted": BOOLEANS[row["Posted"] or ""], "counterparty": row["Counterparty"],
            "warehouse": row["Warehouse"], "warehouse_to": row["WarehouseTo"], "notes": row["Notes"],
            "deleted": BOOLEANS[row["Deleted"] or ""], "modified_at": stamp(row["ModifiedAt"]), "items": [],
        })  # fmt: skip
        doc["items"].append({
            "line": int(row["Line"] or 0), "sku": row["SKU"], "name": row["Name"],
            "quantity": number(row["Quantity"]), "unit_price": number(row["UnitPrice"]),
            "total": number(row["Total"]), "book_quantity": number(row["BookQuantity"]),
        })  # fmt: skip
    return list(docs.values())


def child(element: Any, name: str) -> str | None:
    found = element.find(name)
    return None if found is None else str(found.text)


def goods_from_xml(root: Any) -> list[dict[str, Any]]:
    goods = root.findall("Goods/Good")
    assert [g.get("Number") for g in goods] == [f"{n:05d}" for n in range(1, len(goods) + 1)]
    return [
        {
            "id": g.get("Id"), "code": child(g, "Code"), "sku": g.get("SKU"), "name": child(g, "Name"),
            "unit": child(g, "Unit"), "price": number(child(g, "Price")), "quantity": number(child(g, "Quantity")),
            "warehouse": child(g, "Warehouse"), "deleted": child(g, "Deleted") == "true",
            "modified_at": stamp(child(g, "ModifiedAt")),
        }
        for g in goods
    ]  # fmt: skip


def documents_from_xml(root: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": d.get("Id"), "number": d.get("Number"), "date": stamp(d.get("Date")), "status": d.get("Status"),
            "posted": d.get("Posted") == "true", "counterparty": child(d, "Counterparty"),
            "warehouse": child(d, "Warehouse"), "warehouse_to": child(d, "WarehouseTo"), "notes": child(d, "Notes"),
            "deleted": child(d, "Deleted") == "true", "modified_at": stamp(child(d, "ModifiedAt")),
            "items": [
                {
                    "line": int(i.get("Line")), "sku": i.get("SKU"), "name": child(i, "Name"),
                    "quantity": number(i.get("Quantity")), "unit_price": number(i.get("UnitPrice")),
                    "total": number(i.get("Total")), "book_quantity": number(i.get("BookQuantity")),
                }
                for i in d.findall("Items/Item")
            ],
        }
        for d in root.findall("Documents/Document")
    ]  # fmt: skip


def goods_truth(goods: list[Good]) -> list[dict[str, Any]]:
    return [good_truth(g) for g in goods]


def documents_truth(docs: list[Document]) -> list[dict[str, Any]]:
    return [document_truth(d) for d in docs]


# --- every variation round-trips


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variation_decodes_back_to_the_holdings(
    small_data: SandboxData, make_client: MakeClient, name: str
) -> None:
    variant = VARIANTS[name]
    client = make_client(SandboxEngine(small_data, SandboxConfig(export=variant)))
    goods = client.get("/api/v1/goods/export", params={"format": "csv"})
    assert goods.status_code == 200 and "content-length" not in goods.headers
    assert goods.headers["content-type"] == variant.csv_content_type()
    assert [good_from_csv(r) for r in decode_csv(goods.content, goods.headers["content-type"])] == goods_truth(
        small_data.goods_holdings()
    )
    xml = client.get("/api/v1/goods/export", params={"format": "xml"})
    assert goods_from_xml(etree.fromstring(xml.content)) == goods_truth(small_data.goods_holdings())
    for slug in DOCUMENT_SLUGS:
        truth = documents_truth(small_data.documents_holdings(slug))
        lines = client.get(f"/api/v1/documents/{slug}/export", params={"format": "csv"})
        rows = decode_csv(lines.content, lines.headers["content-type"])
        assert len(rows) == sum(len(d["items"]) for d in truth)
        assert documents_from_csv(rows) == truth
        xml = client.get(f"/api/v1/documents/{slug}/export", params={"format": "xml"})
        assert documents_from_xml(etree.fromstring(xml.content)) == truth


def test_the_variations_really_are_awkward(small_data: SandboxData) -> None:
    def body(variant: ExportVariant, path: str, fmt: str = "csv") -> bytes:
        engine = SandboxEngine(small_data, SandboxConfig(export=variant))
        response = engine.handle(SandboxRequest("GET", f"/trade/hs/exchange/api/v1/{path}", {"format": fmt}))
        return b"".join(response.chunks or [])

    everything = VARIANTS["everything"]
    csv_bytes = body(everything, "documents/shipment/export")
    with pytest.raises(UnicodeDecodeError):
        csv_bytes.decode("utf-8")
    text = csv_bytes.decode("windows-1251")
    assert text.startswith('"Id";"Number"') and '"Артикул"' in text and '"Количество"' in text
    assert "\r\n" in text and '"Да"' in text and "," in text.split("\r\n")[1]
    assert '""' in text, "quotes inside names are doubled (RFC 4180)"
    assert body(VARIANTS["utf8_bom"], "goods/export").startswith(b"\xef\xbb\xbfSKU,Name")
    xml = body(VARIANTS["xml_cp1251"], "goods/export", "xml")
    assert xml.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    shuffled = body(VARIANTS["xml_bom_shuffled"], "goods/export", "xml")
    assert shuffled.startswith(b"\xef\xbb\xbf<?xml")
    first_children = [etree.fromstring(shuffled).find("Goods")[i][0].tag for i in range(20)]
    assert len(set(first_children)) > 1, "elements come in varying order"


def test_config_preset_turns_everything_on() -> None:
    config = SandboxConfig.awkward_exports(seed=2, auth="basic")
    assert config.export == ExportVariant.everything(2) and config.auth == "basic"
    with pytest.raises(ValueError):
        ExportVariant(csv_encoding="koi8-r")
    with pytest.raises(ValueError):
        ExportVariant(xml_encoding="windows-1251", xml_bom=True)


def test_document_export_date_window_and_bad_format(small_data: SandboxData, make_client: MakeClient) -> None:
    client = make_client(SandboxEngine(small_data))
    params = {"format": "csv", "date_from": "2026-01-10", "date_to": "2026-01-12"}
    rows = decode_csv(client.get("/api/v1/documents/shipment/export", params=params).content, "charset=utf-8")
    window = small_data.documents_holdings("shipment", datetime(2026, 1, 10), datetime(2026, 1, 12))
    assert {r["Id"] for r in rows} == {d.id for d in window} and window
    bad = client.get("/api/v1/goods/export", params={"format": "json"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PARAMETER"


def test_bad_records_are_exported_as_bad(make_client: MakeClient) -> None:
    data = SandboxData.generate(documents=60, bad_records=7)
    client = make_client(SandboxEngine(data))
    rows = [
        row
        for slug in DOCUMENT_SLUGS
        for row in decode_csv(client.get(f"/api/v1/documents/{slug}/export").content, "charset=utf-8")
    ]
    assert any(r["Quantity"] == "abc" for r in rows) and any(r["SKU"] is None for r in rows)
    assert any(r["Number"] is None for r in rows)
    root = etree.fromstring(client.get("/api/v1/documents/inventory/export", params={"format": "xml"}).content)
    assert root.tag == "DataExchange" and root.find("Goods") is None


# --- streaming and faults


def test_exports_stream_in_chunks_without_building_the_body() -> None:
    data = SandboxData.generate(documents=3000, seed=5)
    variant = ExportVariant(chunk_size=16 * 1024)
    engine = SandboxEngine(data, SandboxConfig(export=variant))
    request = SandboxRequest("GET", "/trade/hs/exchange/api/v1/documents/shipment/export", {"format": ["xml"]})
    tracemalloc.start()
    try:
        response = engine.handle(request)
        assert response.body == b"" and response.chunks is not None
        sizes = [len(chunk) for chunk in response.chunks]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = sum(sizes)
    assert total > 1_000_000 and len(sizes) > 30 and max(sizes) < 64 * 1024
    assert peak < total / 4, f"peak {peak} bytes for a {total}-byte export"


def test_export_faults_drop_and_truncate(small_data: SandboxData, make_client: MakeClient) -> None:
    drop = make_client(SandboxEngine(small_data, SandboxConfig(faults=FaultConfig(drop=1.0))))
    with pytest.raises(httpx.RemoteProtocolError):
        drop.get("/api/v1/documents/shipment/export", params={"format": "xml"})
    truncate = make_client(SandboxEngine(small_data, SandboxConfig(faults=FaultConfig(truncate=1.0))))
    response = truncate.get("/api/v1/documents/shipment/export", params={"format": "xml"})
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_write_export_files(small_data: SandboxData, tmp_path: Path) -> None:
    paths = write_export_files(small_data, tmp_path, VARIANTS["everything"], combined=True)
    names = {p.name for p in paths}
    assert {"goods.csv", "goods.xml", "exchange.xml"} <= names and "documents-transfer.csv" in names
    goods = decode_csv((tmp_path / "goods.csv").read_bytes(), "")
    assert [good_from_csv(r) for r in goods] == goods_truth(small_data.goods_holdings())
    root = etree.parse(str(tmp_path / "exchange.xml")).getroot()
    assert goods_from_xml(root) == goods_truth(small_data.goods_holdings())
    assert len(root.findall("Documents/Document")) == sum(
        len(small_data.documents_holdings(slug)) for slug in DOCUMENT_SLUGS
    )
    receipts = etree.parse(str(tmp_path / "documents-goods-receipt.xml")).getroot()
    assert documents_from_xml(receipts) == documents_truth(small_data.documents_holdings("goods-receipt"))
