"""The operators' view inside Airflow, in a real browser, on the real stack.

Headless Chromium (Debian's package, driven by Playwright) signs in to the Airflow UI, opens
**Browse > Sync Status** and **Browse > Webhook Log** (the plugin's pages, in the UI's iframe), finds
a failed document by its number, reads its reason, and after the repair in the sandbox presses
**Refresh** and watches it turn synced. Everything behind the page is real: the scheduler runs the
DAGs against the sandboxes, Refresh clears the task through Airflow's REST API as the signed-in user
(checked in Airflow's audit log), the failed task's note is the one-line summary.

Screenshots: test-artifacts/screenshots/ (two of them, copied, are the README's docs/images/).
Needs the running stack (``make up`` / ``make test``) and /usr/bin/chromium; skipped without them
unless the stack is required (CI, ``make test``).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from sandbox.demo_shop import NO_SKU_PRODUCT_INDEX, build_demo_shop
from tests.e2e.airflow_api import (
    AirflowAPI,
    accurate_sandbox_url,
    iseller_sandbox_url,
    skip_or_fail,
    stack_is_up,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SALES_DAG = "iseller_sales_to_accurate"
WEBHOOK_DAG = "accurate_webhooks_to_iseller"
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
RUN = uuid.uuid4().hex[:6].upper()
#: Long enough for a loaded two-core machine to schedule, run and finish a cleared task.
RUN_TIMEOUT_S = 300


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def airflow() -> Iterator[AirflowAPI]:
    reason = stack_is_up()
    if reason:
        skip_or_fail(reason)
    api = AirflowAPI()
    api.login()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def note_api_connection(airflow: AirflowAPI) -> Iterator[None]:
    """The ``airflow_api`` connection the failure callback sets task notes with (made here if absent)."""
    created = False
    if airflow.request("GET", "/api/v2/connections/airflow_api").status_code == 404 and not os.environ.get(
        "AIRFLOW_CONN_AIRFLOW_API"
    ):
        airflow.call(
            "POST",
            "/api/v2/connections",
            json={
                "connection_id": "airflow_api",
                "conn_type": "http",
                "host": airflow.base_url,
                "login": airflow.username,
                "password": airflow.password,
                "description": "Airflow's REST API for task notes (made by the browser tests)",
            },
        )
        created = True
    yield
    if created:
        airflow.request("DELETE", "/api/v2/connections/airflow_api")


def _page(browser: Any, color_scheme: str = "light") -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme)
    context.set_default_timeout(30_000)
    return context.new_page()


def _sign_in(page: Any, airflow: AirflowAPI) -> None:
    try:
        _sign_in_once(page, airflow)
    except Exception:  # noqa: BLE001 - seen on a loaded machine: the UI's first redirect aborted
        _sign_in_once(page, airflow)


def _sign_in_once(page: Any, airflow: AirflowAPI) -> None:
    page.goto(f"{airflow.base_url}/")
    page.wait_for_url("**/auth/login**")  # the UI sends anonymous users to Airflow's login
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{airflow.base_url}/")


def _open_from_browse_menu(page: Any, name: str) -> Any:
    """Browse > ``name``: the plugin page in the Airflow UI's iframe; returns that frame."""
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name=name).click()
    page.wait_for_url(f"**/plugin/{name.lower().replace(' ', '-')}**")
    frame = page.locator(f'iframe[title="{name}"]').element_handle().content_frame()
    frame.locator("h1", has_text=name).wait_for()
    return frame


def _search(frame: Any, text: str, status: str | None = None) -> None:
    """Type a number in Search; choosing a status (or Enter) applies the filters."""
    frame.fill("input[name=q]", text)
    if status is not None:
        frame.select_option("select[name=status]", status)
    else:
        frame.press("input[name=q]", "Enter")
    frame.wait_for_url(re.compile(r"[?&]q="))
    frame.locator("h1").wait_for()


def _shot(page: Any, name: str, height: int = 560) -> Path:
    """Screenshot of the Airflow UI (its top ``height`` pixels: the lists here are short)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1440, "height": height})
    return path


def _audit_clear(airflow: AirflowAPI, dag_id: str, run_id: str, since: float) -> dict[str, Any]:
    """The audit-log entry of a clear of ``run_id`` made through the REST API after ``since``."""
    deadline = time.monotonic() + 30
    while True:
        logs = airflow.call(
            "GET",
            "/api/v2/eventLogs",
            params={"dag_id": dag_id, "event": "post_clear_task_instances", "order_by": "-when", "limit": 20},
        )["event_logs"]
        for entry in logs:
            if entry.get("run_id") == run_id and entry["owner"] == airflow.username:
                return dict(entry)
        if time.monotonic() > deadline:
            raise AssertionError(f"no clear of {run_id} by {airflow.username} in the audit log: {logs}")
        time.sleep(1)


def _retried_hook_call(iseller: str, call_id: int, timeout: float = 240.0) -> dict[str, Any]:
    """The shift-close hook's call ``call_id`` once one of its retries succeeded (or the last try)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        calls = httpx.get(f"{iseller}/_sandbox/shift-close-hook", timeout=30).json()["calls"]
        mine = [call for call in calls if call.get("call_id") == call_id]
        if mine:
            last = mine[-1]
            if any(call.get("success") for call in mine):
                return next(call for call in mine if call.get("success"))
        time.sleep(2)
    return last


# -- Sync Status: a sales invoice Accurate refused ---------------------------------------------------
def _sales_run_with_a_failed_invoice(airflow: AirflowAPI, sku: str) -> tuple[str, str]:
    """Two orders, one selling ``sku`` (unknown to Accurate); the shift closed; its run failed."""
    iseller = iseller_sandbox_url()
    register = SHOP.registers[5]
    orders = []
    for skus in (["BRG-0010"], [sku, "BRG-0011"]):
        body = {
            "outlet_id": register.outlet_id,
            "register_id": register.register_id,
            "lines": [{"sku": line_sku, "quantity": 1} for line_sku in skus],
        }
        answer = httpx.post(f"{iseller}/_sandbox/orders", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        orders.append(answer.json())
    # Close the shift in a later second than the orders: the sales extract reads a shift's orders with
    # an exclusive upper bound, so an order stamped in the very second of the close would be missed.
    time.sleep(1.2)
    shift = httpx.post(f"{iseller}/_sandbox/registers/{register.register_id}/close-shift", timeout=60)
    assert shift.status_code == 200, shift.text
    hook = shift.json().get("hook")
    if hook:  # the POS called Airflow's REST API itself
        if not hook["success"]:  # e.g. the API server still starting: the hook retries like a POS
            hook = _retried_hook_call(iseller, hook["call_id"])
        assert hook["success"], hook
        run_id = hook["body"]["dag_run_id"]
    else:
        conf = {k: shift.json()[k] for k in ("outlet_id", "register_id", "register_shift_id")}
        run_id = airflow.trigger_dag(SALES_DAG, conf=conf)["dag_run_id"]
    assert airflow.wait_for_run(SALES_DAG, run_id, timeout=RUN_TIMEOUT_S) == "failed"
    return run_id, orders[1]["order_reference"]


@pytest.fixture
def product_unknown_to_accurate() -> Iterator[Any]:
    """A demo product whose iSeller SKU is, for this test, one Accurate has no item for.

    (The demo shop's own such product, MISSING_IN_ACCURATE_INDEX, is repaired by the first test that
    uses it; a SKU unique to this run keeps the test repeatable on the same stack.) Restored after.
    """
    product = SHOP.products[30]
    sku = f"UI-{RUN}"
    url = f"{iseller_sandbox_url()}/_sandbox/products/{product.product_id}"
    answer = httpx.patch(url, json={"sku": sku}, timeout=30)
    assert answer.status_code == 200, answer.text
    try:
        yield SimpleNamespace(sku=sku, name=product.name, unit=product.unit, price=product.price)
    finally:
        httpx.patch(url, json={"sku": product.sku}, timeout=30)


def test_sync_status_failed_invoice_repair_and_refresh(
    airflow, browser, note_api_connection, product_unknown_to_accurate
) -> None:
    airflow.wait_for_dag(SALES_DAG, timeout=180)
    airflow.unpause(SALES_DAG)
    missing = product_unknown_to_accurate
    run_id, order_reference = _sales_run_with_a_failed_invoice(airflow, missing.sku)
    invoice_number = f"SI/{order_reference.lstrip('#')}"
    load = next(ti for ti in airflow.task_instances(SALES_DAG, run_id) if ti["task_id"] == "load")
    assert load["state"] == "failed"
    # inside Airflow: the failed task's note is the one-line summary
    assert re.match(r"\d+ of \d+ failed: ", load["note"] or ""), load
    assert f"failed: sales invoice {invoice_number}: " in load["note"] and missing.sku in load["note"], load

    page = _page(browser)
    _sign_in(page, airflow)
    frame = _open_from_browse_menu(page, "Sync Status")
    # "Needs attention" for the order: its invoice failed, its receipt is blocked behind it
    _search(frame, order_reference.lstrip("#"), status="attention")
    row = frame.locator("tbody tr").filter(has=frame.get_by_text(invoice_number, exact=True))
    row.wait_for()
    receipt = frame.locator("tbody tr").filter(
        has=frame.get_by_text(invoice_number.replace("SI/", "SR/"), exact=True)
    )
    assert receipt.locator('[data-field="status"]').inner_text() == "Blocked"
    assert invoice_number in receipt.locator('[data-field="reason"]').inner_text()
    assert row.locator('[data-field="status"]').inner_text() == "Failed"
    reason = row.locator('[data-field="reason"]').inner_text()
    assert missing.sku in reason, reason
    assert (
        row.locator('[data-field="task"]')
        .get_attribute("href")
        .endswith(f"/runs/{run_id.replace(':', '%3A').replace('+', '%2B')}/tasks/load")
    )
    row.scroll_into_view_if_needed()
    _shot(page, "sync-status-failed")

    # repair in the Accurate sandbox: the item now exists
    answer = httpx.post(
        f"{accurate_sandbox_url()}/_sandbox/items",
        timeout=30,
        json={
            "no": missing.sku,
            "name": missing.name,
            "itemType": "INVENTORY",
            "unit1Name": missing.unit,
            "unitPrice": str(missing.price),
            "stock": {o.warehouse_name: 100 for o in SHOP.outlets},
        },
    )
    assert answer.status_code == 200, answer.text

    started = time.time()
    row.locator("button.refresh").click()
    frame.locator("#messages .banner.success", has_text="Cleared load").wait_for()
    status = row.locator('[data-field="status"]')
    status.filter(has_text="Synced").wait_for(timeout=RUN_TIMEOUT_S * 1000)
    assert row.locator('[data-field="target_number"]').inner_text() == invoice_number
    # the receipt was released by the same run, and the page shows it without a reload
    receipt.locator('[data-field="status"]').filter(has_text="Synced").wait_for(timeout=60_000)
    frame.locator('[data-count-status="failed"].zero').wait_for()
    _shot(page, "sync-status-synced")

    entry = _audit_clear(airflow, SALES_DAG, run_id, started)
    assert '"only_failed": true' in (entry.get("extra") or "")
    assert airflow.wait_for_run(SALES_DAG, run_id, timeout=RUN_TIMEOUT_S) == "success"
    note = next(ti for ti in airflow.task_instances(SALES_DAG, run_id) if ti["task_id"] == "load")["note"]
    assert note.startswith("All ") and "synced" in note, note

    # the same page in dark mode (the UI's colour mode is followed inside the iframe)
    dark = _page(browser, color_scheme="dark")
    _sign_in(dark, airflow)
    dark_frame = _open_from_browse_menu(dark, "Sync Status")
    _search(dark_frame, order_reference.lstrip("#"))
    dark_frame.locator("tbody tr", has_text=invoice_number).wait_for()
    assert "dark" in dark_frame.locator("html").get_attribute("class")
    _shot(dark, "sync-status-dark")


# -- Webhook Log: a goods receipt naming a product iSeller has no SKU for -----------------------------
def _receive_item(number: str, lines: list[tuple[str, int]], outlet: Any) -> None:
    from include.iseller_accurate.clients import AccurateHook

    result = AccurateHook().save(
        "receive-item",
        {
            "number": number,
            "receiveNumber": f"SJ-{number}",
            "vendorNo": "V.0001",
            "branchName": outlet.branch_name,
            "warehouseName": outlet.warehouse_name,
            "detailItem": [{"itemNo": sku, "quantity": quantity} for sku, quantity in lines],
        },
    )
    assert result.ok, result.reason


def _wait_event(airflow: AirflowAPI, number: str, statuses: set[str]) -> dict[str, Any]:
    """The event of ``number`` once in one of ``statuses``, read through the Webhook Log's JSON API."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        rows = airflow.call("GET", "/integrations/operator/api/webhook-events", params={"q": number})["rows"]
        if rows and rows[0]["status"] in statuses:
            return dict(rows[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"event {number} not {statuses} after {RUN_TIMEOUT_S}s: {rows}")
        time.sleep(1)


def test_webhook_log_failed_event_repair_and_refresh(airflow, browser, note_api_connection) -> None:
    airflow.wait_for_dag(WEBHOOK_DAG, timeout=180)
    airflow.unpause(WEBHOOK_DAG)
    accurate, iseller = accurate_sandbox_url(), iseller_sandbox_url()
    token = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
    target = {"url": f"{airflow.base_url}/integrations/accurate/webhook?token={token}"}
    assert httpx.post(f"{accurate}/_sandbox/webhook-target", json=target, timeout=30).status_code == 200
    product = SHOP.products[NO_SKU_PRODUCT_INDEX]
    sku = f"BRG-{NO_SKU_PRODUCT_INDEX + 1:04d}"
    item = {"no": sku, "name": product.name, "itemType": "INVENTORY", "unit1Name": product.unit}
    assert httpx.post(f"{accurate}/_sandbox/items", json=item, timeout=30).status_code == 200
    number = f"RI.UI.{RUN}"
    outlet = [o for o in SHOP.outlets if not o.is_warehouse][1]
    _receive_item(number, [(sku, 2)], outlet)
    event = _wait_event(airflow, number, {"failed", "done"})
    assert event["status"] == "failed", event
    run_id = event["run_id"]
    assert airflow.wait_for_run(WEBHOOK_DAG, run_id, timeout=RUN_TIMEOUT_S) == "failed"

    try:
        page = _page(browser)
        _sign_in(page, airflow)
        frame = _open_from_browse_menu(page, "Webhook Log")
        _search(frame, number, status="failed")
        row = frame.locator("tbody tr", has_text=number)
        row.wait_for()
        assert row.locator('[data-field="status"]').inner_text() == "Failed"
        reason = row.locator('[data-field="reason"]').inner_text()
        assert "has no product with that SKU in iSeller" in reason and sku in reason, reason
        _shot(page, "webhook-log-failed")

        # repair in the iSeller sandbox: the product gets its SKU
        patched = httpx.patch(
            f"{iseller}/_sandbox/products/{product.product_id}", json={"sku": sku}, timeout=30
        )
        assert patched.status_code == 200, patched.text
        started = time.time()
        row.locator("button.refresh").click()
        frame.locator("#messages .banner.success", has_text="Cleared process_events").wait_for()
        row.locator('[data-field="status"]').filter(has_text="Done").wait_for(timeout=RUN_TIMEOUT_S * 1000)
        frame.locator('[data-count-status="failed"] .chip-count', has_text="0").wait_for()
        assert row.locator('[data-field="iseller_reference"]').inner_text().startswith(f"ACC-RI-{number}")
        _shot(page, "webhook-log-done")
        _audit_clear(airflow, WEBHOOK_DAG, run_id, started)
    finally:  # give the demo shop its SKU-less product back
        httpx.patch(f"{iseller}/_sandbox/products/{product.product_id}", json={"sku": ""}, timeout=30)
