"""The reverse pipeline against the in-process sandbox: limits, faults, conflicts, resumption, posting, goods."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onec.push import Limits, PushOptions, import_id_for, push_file
from onec.push.ledger import ledger_rows
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.sandbox.protocol import HttpError
from onec.warehouse import Warehouse
from tests.push.push_helpers import document_lines, fresh_data, numbers, sandbox_client, write_csv, write_json

TYPE = "goods-receipt"


def _engine(**config: object) -> SandboxEngine:
    return SandboxEngine(fresh_data(), SandboxConfig(**config))  # type: ignore[arg-type]


def _holds_each_once(engine: SandboxEngine, expected: set[str]) -> None:
    counts = engine.data.count_documents_by_number(TYPE)
    held = {number for number in counts if number in expected}
    assert held == expected
    assert max(counts[n] for n in expected) == 1


def test_import_lands_every_document_once_within_the_item_limit(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(600)
    path = write_csv(tmp_path / "receipts.csv", rows, separator=";")
    engine = _engine(max_batch_items=100)
    with sandbox_client(engine) as client:
        summary = push_file(path, TYPE, client, warehouse, run_id="r1", options=PushOptions(limits=Limits(100)))
    _holds_each_once(engine, numbers(rows))
    assert summary.complete and summary.counts["created"] == 600 and summary.verified == 600
    assert engine.stats.snapshot()["responses"].get(413, 0) == 0
    lines_per_request = len(rows) / summary.requests
    assert lines_per_request > 95, "batches should be packed close to the 100-item limit"


def test_a_rerun_sends_nothing_and_reports_the_same(tmp_path: Path, warehouse: Warehouse) -> None:
    path = write_json(tmp_path / "receipts.json", document_lines(50))
    engine = _engine()
    with sandbox_client(engine) as client:
        first = push_file(path, TYPE, client, warehouse, run_id="r1")
        writes = engine.stats.snapshot()["requests"]
        second = push_file(path, TYPE, client, warehouse, run_id="r2")
    assert first.complete and second.complete
    assert second.sent == 0 and second.counts["created"] == 50
    reads = engine.stats.snapshot()["requests"] - writes
    assert reads <= 2, "the re-run should only read back for verification"


def test_a_413_with_stated_limits_shrinks_the_batches_and_goes_on(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(300)
    path = write_csv(tmp_path / "receipts.csv", rows)
    engine = _engine(max_batch_items=60)
    with sandbox_client(engine) as client:
        summary = push_file(path, TYPE, client, warehouse, run_id="r1", options=PushOptions(limits=Limits(500)))
    _holds_each_once(engine, numbers(rows))
    assert summary.complete
    assert 0 < engine.stats.snapshot()["responses"][413] <= 8


@pytest.mark.parametrize("fault", ["apply_then_drop", "apply_then_timeout", "partial_batch"])
def test_write_faults_on_ten_percent_of_requests_never_duplicate(
    tmp_path: Path, warehouse: Warehouse, fault: str
) -> None:
    rows = document_lines(800)
    path = write_csv(tmp_path / "receipts.csv", rows)
    faults = FaultConfig(**{fault: 0.1, "write_timeout_delay_s": 2.0})  # type: ignore[arg-type]
    engine = _engine(max_batch_items=50, faults=faults, seed=7)
    with sandbox_client(engine) as client:
        summary = push_file(path, TYPE, client, warehouse, run_id="r1", options=PushOptions(limits=Limits(50)))
    assert engine.stats.snapshot()["faults"].get(fault, 0) > 0
    _holds_each_once(engine, numbers(rows))
    assert summary.complete, summary.reasons[:5]
    assert summary.counts["created"] == 800 and summary.counts["already_there"] == 0


def test_conflicts_invalid_and_oversize_are_reported_and_the_rest_lands(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(40, max_lines=3)
    rows[0]["Total"] = "999.99"  # invalid: total ≠ quantity × price
    rows += [{**rows[-1], "Number": "BIG-1", "Line": str(n)} for n in range(1, 13)]  # 12 lines: oversize
    engine = _engine(max_batch_items=10)
    first_rows = [r for r in rows if r["Number"] == "IMP-000005"]
    with sandbox_client(engine) as client:
        changed = [{**r, "Quantity": "100", "Total": str(100 * float(r["UnitPrice"]))} for r in first_rows]
        push_file(write_csv(tmp_path / "earlier.csv", changed), TYPE, client, warehouse, run_id="r0")
        summary = push_file(
            write_csv(tmp_path / "receipts.csv", rows), TYPE, client, warehouse, run_id="r1",
            options=PushOptions(limits=Limits(10)),
        )  # fmt: skip
    outcomes = {number: (outcome, reason) for number, outcome, reason in summary.reasons}
    assert outcomes["IMP-000000"][0] == "invalid" and "total 999.99" in outcomes["IMP-000000"][1]
    assert outcomes["BIG-1"][0] == "oversize" and "12 lines exceed" in outcomes["BIG-1"][1]
    assert outcomes["IMP-000005"][0] == "conflict" and "not overwritten" in outcomes["IMP-000005"][1]
    assert summary.counts["created"] == 38 and not summary.complete
    kept = engine.data.find_by_number(TYPE, "IMP-000005")
    assert kept is not None and kept.items[0].quantity == 100  # not overwritten
    assert engine.data.find_by_number(TYPE, "BIG-1") is None and engine.data.find_by_number(TYPE, "IMP-000000") is None


def test_exists_with_the_same_content_counts_as_already_there(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(20)
    engine = _engine()
    with sandbox_client(engine) as client:
        earlier = [row for row in rows if row["Number"] < "IMP-000008"]
        push_file(write_csv(tmp_path / "part.csv", earlier), TYPE, client, warehouse, run_id="r0")
        summary = push_file(write_json(tmp_path / "all.json", rows), TYPE, client, warehouse, run_id="r1")
    assert summary.complete
    assert summary.counts["already_there"] == 8 and summary.counts["created"] == 12


def test_a_run_stopped_while_sending_resolves_by_read_back_before_resending(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    """Simulate a kill after the request was applied but before the answer was recorded."""
    rows = document_lines(30)
    path = write_csv(tmp_path / "receipts.csv", rows)
    engine = _engine()
    with sandbox_client(engine) as client:
        push_file(path, TYPE, client, warehouse, run_id="r1")
        import_id = import_id_for(path, TYPE)
        with warehouse.writer() as con:
            con.execute("UPDATE import_ledger SET state = 'sending' WHERE import_id = ?", [import_id])
            con.execute("UPDATE import_ledger SET state = 'pending' WHERE number = 'IMP-000001'")
        before = engine.stats.snapshot()["requests"]
        summary = push_file(path, TYPE, client, warehouse, run_id="r2")
    assert summary.complete and summary.counts["created"] == 29
    assert summary.sent == 1, "only the pending document goes out; the rest are found in 1C"
    assert summary.counts["already_there"] == 1, "1C answers `exists` with our content for the pending one"
    # one page of the in-doubt documents' dates, 1 batch, one page for the `exists` answer, 1 verification read
    assert engine.stats.snapshot()["requests"] - before == 1 + 1 + 1 + 1
    _holds_each_once(engine, numbers(rows))


def test_post_posts_the_created_drafts(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(10)
    engine = _engine()
    with sandbox_client(engine) as client:
        summary = push_file(
            write_csv(tmp_path / "r.csv", rows), TYPE, client, warehouse, run_id="r1", options=PushOptions(post=True)
        )
    assert summary.complete and summary.posted == 10
    assert all(engine.data.find_by_number(TYPE, n).posted for n in numbers(rows))  # type: ignore[union-attr]
    ledger = ledger_rows(warehouse, summary.import_id)
    assert Counter(row["state"] for row in ledger) == {"created": 10} and all(row["posted"] for row in ledger)


def test_refused_documents_carry_1c_s_message(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(5)
    rows[0]["Warehouse"] = "нет-такого-склада"
    engine = _engine()
    with sandbox_client(engine) as client:
        summary = push_file(write_csv(tmp_path / "r.csv", rows), TYPE, client, warehouse, run_id="r1")
    assert summary.counts["refused"] == 1 and summary.counts["created"] == 4
    number, outcome, reason = summary.reasons[0]
    assert (number, outcome) == ("IMP-000000", "refused") and "не найден" in reason


def test_results_table_has_one_row_per_document(tmp_path: Path, warehouse: Warehouse) -> None:
    rows = document_lines(12)
    rows[3]["Quantity"] = "abc"
    engine = _engine()
    path = write_csv(tmp_path / "r.csv", rows)
    with sandbox_client(engine) as client:
        push_file(path, TYPE, client, warehouse, run_id="r1")
        push_file(path, TYPE, client, warehouse, run_id="r2")
    results = warehouse.query(
        "SELECT outcome, count(*) AS n FROM import_results WHERE import_id = ? GROUP BY ALL ORDER BY 1",
        [import_id_for(path, TYPE)],
    )
    assert results.rows() == [("created", 11), ("invalid", 1)]
    columns = warehouse.query(
        "SELECT outcome, run_id, verified, reason IS NULL AS no_reason, lines > 0 AS has_lines, total > 0 AS has_total"
        " FROM import_results WHERE import_id = ? GROUP BY ALL ORDER BY 1",
        [import_id_for(path, TYPE)],
    )
    assert columns.rows() == [("created", "r2", True, True, True, True), ("invalid", "r2", None, False, None, None)]


def test_goods_rows_are_upserted(tmp_path: Path, warehouse: Warehouse) -> None:
    path = tmp_path / "goods.csv"
    path.write_text(
        "Артикул;Наименование;Количество;Склад;Цена\nNEW-1;Новый товар;10;{0};15,50\nNEW-2;Другой;5,5;{0};\n"
        "NEW-3;;1;{0};\n".format(engine_warehouse := fresh_data().warehouses[0]),
        encoding="cp1251",
    )
    engine = _engine(max_batch_items=1)
    with sandbox_client(engine) as client:
        summary = push_file(path, "goods", client, warehouse, run_id="r1", options=PushOptions(limits=Limits(1)))
    assert summary.counts["created"] == 2 and summary.counts["invalid"] == 1
    held = {(g.sku, g.warehouse): g.quantity for g in engine.data.goods_holdings()}
    assert str(held[("NEW-2", engine_warehouse)]) == "5.500"


def test_cli_dry_run_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onec.cli import main

    rows = document_lines(4)
    good = write_csv(tmp_path / "good.csv", rows)
    rows[0]["Total"] = "0.01"
    bad = write_csv(tmp_path / "bad.csv", rows)
    assert main(["push", str(good), "--type", TYPE, "--dry-run"]) == 0
    assert main(["push", str(bad), "--type", TYPE, "--dry-run"]) == 1
    assert "IMP-000000" in capsys.readouterr().out
    assert main(["push", str(good), "--type", TYPE]) == 0  # the embedded sandbox
    assert "Everything landed: 4 of 4" in capsys.readouterr().out
    assert main(["push", str(bad), "--type", TYPE]) == 1
    assert main(["push", str(tmp_path / "missing.csv"), "--type", TYPE]) == 1


def test_post_posts_documents_1c_answers_exist_with_our_content(tmp_path: Path, warehouse: Warehouse) -> None:
    """1C already holds some of the file's documents as drafts with the file's content (an earlier import of the
    same documents, a run whose answer was lost): its batch answer says `exists`. `--post` must post them too, and
    the summary must say that every document is held and posted."""
    rows = document_lines(12)
    engine = _engine()
    with sandbox_client(engine) as client:
        earlier = [row for row in rows if row["Number"] < "IMP-000005"]
        push_file(write_csv(tmp_path / "earlier.csv", earlier), TYPE, client, warehouse, run_id="r0")
        assert not any(engine.data.find_by_number(TYPE, n).posted for n in numbers(earlier))  # type: ignore[union-attr]
        summary = push_file(
            write_json(tmp_path / "all.json", rows),
            TYPE,
            client,
            warehouse,
            run_id="r1",
            options=PushOptions(post=True),
        )
    assert summary.counts["already_there"] == 5 and summary.counts["created"] == 7
    unposted = sorted(n for n in numbers(rows) if not engine.data.find_by_number(TYPE, n).posted)  # type: ignore[union-attr]
    assert unposted == []
    assert summary.complete and summary.posted == 12 and summary.drafts == 0


def test_drafts_left_by_a_refused_posting_make_the_import_incomplete(tmp_path: Path, warehouse: Warehouse) -> None:
    """When 1C refuses to post, the summary says how many are held, how many posted and how many remain drafts,
    and the import is not complete (non-zero exit)."""
    rows = document_lines(6)
    engine = _engine()
    answer = engine.handle

    def refuse_posting(request: SandboxRequest) -> SandboxResponse:
        locked = engine.data.find_by_number(TYPE, "IMP-000002")
        if locked is not None and request.path.endswith(f"/{locked.id}/post"):
            return HttpError(409, "DOCUMENT_LOCKED", "Документ заблокирован").response(html_on_auth_failure=False)
        return answer(request)

    engine.handle = refuse_posting  # type: ignore[method-assign]
    with sandbox_client(engine) as client:
        summary = push_file(
            write_csv(tmp_path / "r.csv", rows), TYPE, client, warehouse, run_id="r1", options=PushOptions(post=True)
        )
    assert summary.landed == 6 and summary.posted == 5 and summary.drafts == 1 and not summary.complete
    assert summary.held() == (
        "Held in 1C: 6 of 6 documents; posted: 5; still drafts: 1 (posting did not finish: re-run the same command"
        " to post them)"
    )
    assert [(n, o) for n, o, _ in summary.reasons] == [("IMP-000002", "draft")]
    assert "posting refused" in summary.reasons[0][2]


def test_a_document_unposted_in_1c_after_the_import_is_reported_and_posted_by_the_next_run(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    """The summary says what 1C holds, not what the ledger remembers; the ledger then follows 1C."""
    path = write_csv(tmp_path / "r.csv", document_lines(4))
    engine = _engine()
    post = PushOptions(post=True)
    with sandbox_client(engine) as client:
        assert push_file(path, TYPE, client, warehouse, run_id="r1", options=post).complete
        unposted = engine.data.find_by_number(TYPE, "IMP-000001")
        assert unposted is not None
        engine.data.unpost_document(TYPE, unposted.id, datetime.now(UTC))  # a user cancels its posting in 1C
        second = push_file(path, TYPE, client, warehouse, run_id="r2", options=post)
        third = push_file(path, TYPE, client, warehouse, run_id="r3", options=post)
    assert (second.complete, second.posted, second.drafts) == (False, 3, 1)
    assert third.complete and third.posted == 4 and unposted.posted
