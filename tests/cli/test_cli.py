"""`onec-etl` as a user runs it: against a contract server that is not our sandbox, queries, and clear errors."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onec.cli import main
from onec.config import Settings
from onec.warehouse import Warehouse

USER, PASSWORD = "Администратор", "пароль №1"
BASE = "/erp/hs/exchange-v2"


def _document(number: int, day: str) -> dict[str, Any]:
    """Shaped as §1.3 allows: numbers as strings with a decimal comma, padded strings, unknown fields."""
    return {
        "id": f"00000000-0000-0000-0000-{number:012d}", "number": f"ЗК-{number:04d}  ", "date": f"{day}T12:00:00",
        "status": "posted", "posted": True, "supplier": 'ООО "Альфа"', "warehouse": "Основной склад",
        "notes": None, "deleted": False, "modified_at": "0001-01-01T00:00:00", "x_custom": {"a": 1},
        "items": [{"line": 1, "sku": "A-1", "name": "Болт М8", "quantity": "3", "unit_price": "10,50",
                   "total": "31,5"}],
    }  # fmt: skip


DOCUMENTS = [_document(n, day) for n, day in enumerate(["2025-12-31", *["2026-01-15"] * 9, "2026-02-01"], start=1)]
GOODS = [{"sku": f"A-{n}", "name": f"Болт {n}", "quantity": n, "warehouse": "Основной склад"} for n in range(1, 16)]


def _authorized(request: Request) -> bool:
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return request.headers.get("authorization") == f"Basic {expected}"


def _page(request: Request, rows: list[dict[str, Any]]) -> Response:
    if not _authorized(request):
        return JSONResponse({"error": True, "code": "UNAUTHORIZED", "message": "Нет доступа"}, status_code=401)
    limit = min(int(request.query_params.get("limit", "100")), 7)  # a server capping the page lower than asked
    offset = int(request.query_params.get("offset", "0"))
    body = {
        "data": rows[offset : offset + limit],
        "pagination": {"total": str(len(rows)), "limit": limit, "offset": offset},
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json; charset=utf-8")


async def _goods(request: Request) -> Response:
    return _page(request, GOODS)


async def _documents(request: Request) -> Response:
    if request.path_params["type"] != "goods-receipt":
        return _page(request, [])
    lo, hi = request.query_params["date_from"], request.query_params["date_to"]
    return _page(request, [d for d in DOCUMENTS if lo <= d["date"] < hi])


async def _version(request: Request) -> Response:
    return JSONResponse({"version": "2.0.0", "api_versions": ["v1"]})


APP = Starlette(
    routes=[
        Route(f"{BASE}/api/version", _version),
        Route(f"{BASE}/api/v1/goods", _goods),
        Route(f"{BASE}/api/v1/documents/{{type}}", _documents),
    ]
)


@pytest.fixture
def contract_server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(APP, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}{BASE}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_sync_a_month_from_any_contract_server_with_cyrillic_basic_auth(
    contract_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"ONEC_BASE_URL": contract_server, "ONEC_AUTH": "basic", "ONEC_USERNAME": USER,
                        "ONEC_PASSWORD": PASSWORD}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["sync", "--from", "2026-01-01", "--to", "2026-02-01"]) == 0
    warehouse = Warehouse(Settings.from_env().data_dir, "Europe/Moscow")
    documents = warehouse.query("SELECT number, doc_date, counterparty, modified_at FROM documents ORDER BY number")
    assert documents["number"].to_list() == [f"ЗК-{n:04d}" for n in range(2, 11)]
    assert set(documents["doc_date"].to_list()) == {date(2026, 1, 15)}
    assert documents["modified_at"].null_count() == 9
    line = warehouse.query("SELECT quantity, unit_price, total FROM document_lines LIMIT 1").row(0)
    assert [str(v.normalize()) for v in line] == ["3", "10.5", "31.5"]
    assert warehouse.table_counts()["goods"] == len(GOODS)
    assert PASSWORD not in capsys.readouterr().err


def test_query_formats(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--types", "shipment"]) == 0  # the embedded sandbox
    capsys.readouterr()
    assert main(["query", "SELECT doc_type, count(*) AS n FROM documents GROUP BY ALL", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["doc_type"] == "shipment" and rows[0]["n"] > 0
    assert main(["query", "SELECT 1 AS one, 'Ё' AS two", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "one,two\n1,Ё\n"


@pytest.mark.parametrize(
    ("env", "argv", "code", "message"),
    [
        ({"ONEC_AUTH": "kerberos"}, ["sync"], 2, "ONEC_AUTH='kerberos' is not one of"),
        ({"ONEC_AUTH": "basic"}, ["sync"], 2, "needs ONEC_USERNAME, ONEC_PASSWORD"),
        ({"ONEC_TIMEZONE": "Mars/Olympus"}, ["sync"], 2, "not a known IANA time zone"),
        ({"ONEC_BASE_URL": "ftp://x"}, ["sync"], 2, "must start with http"),
        ({}, ["sync", "--from", "2026-02-01", "--to", "2026-01-01"], 2, "must be after --from"),
        ({}, ["query", "SELECT 1"], 1, "no warehouse at"),
    ],
)
def test_bad_input_is_one_clear_line(
    env: dict[str, str], argv: list[str], code: int, message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("onec-etl: error:") and message in err[0], err


def test_unreachable_1c_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ONEC_BASE_URL", f"http://127.0.0.1:{port}/x")
    monkeypatch.setenv("ONEC_MAX_RETRIES", "1")
    assert main(["sync"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("onec-etl: error: 1C:") and "not answering" in last


def test_data_dir_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEC_DATA_DIR", str(tmp_path / "new" / "dir"))
    assert main(["sync", "--types", "inventory"]) == 0
    assert (tmp_path / "new" / "dir" / "warehouse.duckdb").is_file()


INVENTORY_CSV = (
    "Id,Number,Date,Status,Posted,Counterparty,Warehouse,WarehouseTo,Line,SKU,Name,Quantity,UnitPrice,Total,"
    "BookQuantity,Notes,Deleted,ModifiedAt\n"
    "i1,ИН-1,2026-01-15T10:00:00,posted,true,,wh-main,,1,A-1,Болт,0,10,0,-4,,false,\n"
    "i1,ИН-1,2026-01-15T10:00:00,posted,true,,wh-main,,2,,,0,,,0,,false,\n"
    "i2,ИН-2,2026-01-16T10:00:00,posted,true,,wh-main,,1,A-2,Гайка,3,,,3,,false,\n"
    "i3,ИН-3,0002-06-01T10:00:00,posted,true,,wh-main,,1,A-2,Гайка,3,,,3,,false,\n"
    "i4,ИН-4,9999-12-31T23:59:59,posted,true,,wh-main,,1,A-2,Гайка,3,,,3,,false,\n"
)


def test_load_lands_odd_but_real_1c_data_and_counts_the_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inventory-2026-01.csv"
    path.write_text(INVENTORY_CSV, encoding="utf-8")
    assert main(["load", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Noted (landed; odd but real 1C data, see docs/validation.md): " in out
    assert "empty_line 1, line_without_price 1, negative_book_quantity 1" in out
    warehouse = Warehouse(Settings.from_env().data_dir, "Europe/Moscow")
    assert warehouse.query("SELECT number FROM documents ORDER BY number")["number"].to_list() == ["ИН-1", "ИН-2"]
    reasons = warehouse.query("SELECT reason FROM rejected_rows ORDER BY record_key")["reason"].to_list()
    assert [reason.split("…")[0] for reason in reasons] == [
        f"date {day} is outside the plausible window 2000-01-01" for day in ("0002-06-01", "9999-12-31")
    ]


def test_a_base_that_forbids_negative_stock_says_so_in_a_rules_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[severity]\nnegative_book_quantity = "reject"\n', encoding="utf-8")
    monkeypatch.setenv("ONEC_VALIDATION_RULES", str(rules))
    path = tmp_path / "inventory-2026-01.csv"
    path.write_text(INVENTORY_CSV, encoding="utf-8")
    assert main(["load", str(path)]) == 0
    warehouse = Warehouse(Settings.from_env().data_dir, "Europe/Moscow")
    assert warehouse.query("SELECT number FROM documents")["number"].to_list() == ["ИН-2"]
    reasons = warehouse.query("SELECT reason FROM rejected_rows ORDER BY record_key")["reason"].to_list()
    assert reasons[0] == "line 1: book_quantity: below zero, got -4.000 (negative stock) (file lines 2-3)"
    rules.write_text('[severity]\nnegative_book_quantity = "sometimes"\n', encoding="utf-8")
    assert main(["load", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration: ONEC_VALIDATION_RULES:" in err and "severity.negative_book_quantity = 'sometimes'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sync", "--from", "2026-02-30"], "'2026-02-30' is not a date (day is out of range for month)"),
        (["sync", "--to", "31.01.2026"], "'31.01.2026' is not a date (expected YYYY-MM-DD)"),
        (["load", "x.csv", "--snapshot-date", "2026-13-01"], "'2026-13-01' is not a date"),
    ],
)
def test_a_bad_date_is_said_in_plain_words_as_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sandbox_help_shows_every_default_and_the_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 8765)", "(default: 3000)", "(default: обмен)", "(default: пароль)", "(default: sk-"):
        assert shown in text
