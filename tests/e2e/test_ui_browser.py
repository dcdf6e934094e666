"""What operators see, in a real browser: a backfill launched by clicking through the Dagster UI, and the run report.

The UI test clicks what a data engineer clicks: the asset graph filtered to three document assets, "Materialize
all…", in the partition dialog (one selector per dimension of the base × day partitions) the base `main` ticked and
three days typed, "Launch backfill"; then it follows the backfill's page until it says Succeeded and checks what the
backfill's runs materialized and the warehouse. Screenshots are kept under test-artifacts/. Every wait has a deadline.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page

from assets.bases import BASE_DIMENSION
from onec.config import DEFAULT_BASE, Settings
from onec.connect import sandbox_window
from onec.marts import build_stock_balance_daily, build_stock_movements
from onec.reconcile import reconcile
from onec.report import write_run_report
from onec.warehouse import Warehouse
from tests.dagster_bases import day_key
from tests.e2e.conftest import ARTIFACTS, graphql
from tests.marts.conftest import LandedMonth, landed_month  # noqa: F401 (the fixture)
from tests.marts.test_reconcile import _agreeing_second_snapshot, _inject_discrepancy

pytestmark = pytest.mark.e2e
BACKFILL_TIMEOUT_S = 300
GRAPH_TIMEOUT_S = 90
NODE_PARTITIONS = re.compile(r"^\d+ partitions$")
ASSETS = ("documents_goods_receipt", "documents_shipment", "documents_transfer")
BACKFILL_ID = re.compile(r"Created backfill (\w+)")
DAY_RANGE_HINT = re.compile(r"^ex: \d{4}-\d{2}-\d{2}")
"""The day dimension's input, whose example ("ex: 2025-01-01, 2025-01-02, [2025-01-03...2026-12-02]") follows the
calendar."""
STATUS = re.compile(r"\nStatus\n(\w[\w ]*)\n")


def test_backfill_of_three_days_launched_in_the_browser(dagster_dev: str, browser_page: Page) -> None:
    page = browser_page
    settings = Settings.from_env()
    first = sandbox_window(settings.timezone)[0] + timedelta(days=5)
    last = first + timedelta(days=2)
    selection = " or ".join(f"key:{asset}" for asset in ASSETS)

    welcome = graphql(dagster_dev, "{ shouldShowNux }", {})["data"]["shouldShowNux"]
    page.goto(f"{dagster_dev}/asset-groups~{quote(selection)}/", wait_until="networkidle")
    if welcome:  # a fresh instance greets its first visitor with a newsletter dialog over the page
        page.get_by_role("button", name="Skip").click()
    _wait_for_graph_nodes(page, len(ASSETS))
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize 3 assets")
    days = dialog.get_by_placeholder(DAY_RANGE_HINT)
    days.wait_for()  # for its first ~0.3 s the dialog draws the day dimension as a drop-down like the base's
    _pick_base(page, dialog, DEFAULT_BASE)
    days.fill(f"[{first.isoformat()}...{last.isoformat()}]")
    days.press("Enter")
    dialog.get_by_text("3 partitions", exact=True).wait_for()
    page.screenshot(path=_artifact("ui-backfill-dialog.png"))
    dialog.get_by_role("button", name="Launch backfill").click()
    created = page.get_by_text(BACKFILL_ID)
    created.wait_for()
    match = BACKFILL_ID.search(created.inner_text())
    assert match is not None

    status = _wait_for_backfill_page(page, f"{dagster_dev}/runs/b/{match.group(1)}")
    page.screenshot(path=_artifact("ui-backfill-succeeded.png"), full_page=True)
    assert status == "Succeeded", status
    expected = {(asset, str(day_key(first + timedelta(days=i)))) for asset in ASSETS for i in range(3)}
    assert _materialized_by_backfill(dagster_dev, match.group(1)) == sorted(expected)

    landed = Warehouse(settings.data_dir, settings.timezone).query(
        "SELECT doc_type, min(doc_date), max(doc_date), count(DISTINCT doc_date) FROM documents"
        " GROUP BY doc_type ORDER BY doc_type"
    )
    assert landed.rows() == [(slug, first, last, 3) for slug in ("goods-receipt", "shipment", "transfer")]


def test_the_run_report_renders_every_chart(landed_month: LandedMonth, browser_page: Page) -> None:  # noqa: F811
    _agreeing_second_snapshot(landed_month)
    _inject_discrepancy(landed_month)
    warehouse = landed_month.warehouse
    build_stock_movements(warehouse)
    build_stock_balance_daily(warehouse)
    reconcile(warehouse)
    report = write_run_report(warehouse, "run-feb-3")
    requested: list[str] = []
    browser_page.on("request", lambda request: requested.append(request.url))

    for label, width in (("desktop", 1920), ("laptop", 1366)):
        browser_page.set_viewport_size({"width": width, "height": 900})
        browser_page.goto(report.as_uri())
        charts = browser_page.locator("figure.chart")
        assert charts.count() == 6
        for index in range(charts.count()):
            chart = charts.nth(index)
            title = chart.locator("figcaption").inner_text()
            assert chart.locator("svg").count() == 1, f"{title}: no chart drawn"
            boxes = [m.bounding_box() for m in chart.locator(".mark").all()]
            assert any(b and b["width"] > 0 and b["height"] > 0 for b in boxes), f"{title}: chart is empty"
            svg = chart.locator("svg").bounding_box()
            assert svg is not None and svg["x"] + svg["width"] <= width, f"{title}: wider than a {label} window"
        browser_page.screenshot(path=_artifact(f"run-report-{label}.png"), full_page=True)
    assert set(requested) == {report.as_uri()}, "the report must be self-contained"

    requests_chart = browser_page.locator("figure.chart", has_text="Requests, retries and 429s")
    landings = warehouse.query("SELECT count(*) FROM load_log WHERE run_id = 'run-feb-3'").item()
    labels = requests_chart.locator("svg > text[text-anchor]").all_text_contents()
    numbers = [t for t in labels if _NUMBER.fullmatch(t)]
    assert len(labels) - len(numbers) == landings, f"every bar is labelled: {labels}"
    ticks = [float(t.replace(",", "")) for t in numbers]
    assert ticks and all(t % _tick_step(ticks) == 0 for t in ticks), f"round axis ticks, got {ticks}"
    generated = browser_page.locator(".meta").inner_text()
    assert f"({warehouse.timezone})" in generated, "the report's own time is in the 1C zone, named"


_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?")


def _tick_step(ticks: list[float]) -> float:
    step = sorted(ticks)[1] - sorted(ticks)[0] if len(ticks) > 1 else 1.0
    mantissa = step / 10 ** len(str(int(step))) * 10
    assert mantissa in (1, 2, 5), f"tick step {step} is not 1, 2 or 5 x 10^n"
    return step


def _wait_for_graph_nodes(page: Page, count: int) -> None:
    """The graph draws once the UI has loaded the code location's assets; a node shows its partition count."""
    nodes = page.get_by_text(NODE_PARTITIONS)
    deadline = time.monotonic() + GRAPH_TIMEOUT_S
    while nodes.count() < count:
        assert time.monotonic() < deadline, f"the asset graph did not show {count} assets in {GRAPH_TIMEOUT_S} s"
        time.sleep(1)
        if page.get_by_text("Empty graph").count():
            page.reload(wait_until="networkidle")


def _pick_base(page: Page, dialog: Locator, base: str) -> None:
    """Tick `base` in the base dimension's drop-down (a menu of checkboxes that stays open for more ticks), then close
    the menu with Escape from its filter box, as a keyboard user does. (Clicking away is not reliable: in CI the open
    menu covered the dimension's heading the script clicked.) Escape closes the menu only, not the dialog."""
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem").filter(has=page.get_by_text(base, exact=True)).click()
    menu_filter = page.get_by_placeholder("Filter partitions")
    menu_filter.press("Escape")
    menu_filter.wait_for(state="hidden")
    dialog.get_by_text(BASE_DIMENSION, exact=True).wait_for()


BACKFILL_MATERIALIZATIONS = """
query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    __typename
    ... on Runs { results { assetMaterializations { assetKey { path } partition } } }
    ... on PythonError { message }
  }
}
"""


def _materialized_by_backfill(url: str, backfill_id: str) -> list[tuple[str, str]]:
    """Every (asset, partition key) the backfill's runs materialized, sorted, duplicates kept."""
    runs = graphql(url, BACKFILL_MATERIALIZATIONS, {"id": backfill_id})["data"]["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return sorted(
        ("/".join(m["assetKey"]["path"]), m["partition"])
        for run in runs["results"]
        for m in run["assetMaterializations"]
    )


def _wait_for_backfill_page(page: Page, url: str) -> str:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    status = "unknown"
    while time.monotonic() < deadline:
        page.goto(url, wait_until="networkidle")
        found = STATUS.search(page.inner_text("body"))
        status = found.group(1) if found else "loading"
        if status not in ("loading", "Requested", "In progress"):
            return status
        time.sleep(3)
    raise AssertionError(f"backfill still {status} after {BACKFILL_TIMEOUT_S} s")


def _artifact(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)
