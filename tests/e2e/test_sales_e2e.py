"""Sales sync end to end on the real stack: Airflow scheduler + API server, both sandboxes, PostgreSQL.

- a register shift closes in iSeller; the POS (the sandbox's shift-close hook) calls Airflow's REST
  API; the invoices and receipts appear in Accurate, seen through the Accurate sandbox's own API;
- invalid conf is refused by the API itself;
- an order that Accurate refuses fails alone with its reason; after the repair, clearing the failed
  task through the REST API posts exactly what was missing, and nothing twice;
- real-time mode: an iSeller order webhook leads to the invoice without any manual trigger;
- scheduled mode: the DAG's next run is at the configured local times.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from include.iseller_accurate.clients import AccurateHook
from include.iseller_accurate.ledger import dsn_from_connection
from sandbox.demo_shop import MISSING_IN_ACCURATE_INDEX, build_demo_shop

DAG_ID = "iseller_sales_to_accurate"
SETTINGS_KEY = "iseller_accurate_settings"
SHOP = build_demo_shop(42)


@pytest.fixture(scope="module")
def sales_dag(airflow):
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    yield DAG_ID


@pytest.fixture(scope="module")
def accurate() -> AccurateHook:
    return AccurateHook()


def _register(index: int) -> Any:
    return SHOP.registers[index]


def _order(
    iseller_sandbox_url: str, register: Any, skus: list[str], customer_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "outlet_id": register.outlet_id,
        "register_id": register.register_id,
        "lines": [{"sku": sku, "quantity": 2} for sku in skus],
    }
    if customer_id:
        body["customer_id"] = customer_id
    answer = httpx.post(f"{iseller_sandbox_url}/_sandbox/orders", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _close_shift(iseller_sandbox_url: str, register: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{iseller_sandbox_url}/_sandbox/registers/{register.register_id}/close-shift", timeout=60
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _run_for_shift(airflow, shift: dict[str, Any]) -> str:
    """The run the POS started through the REST API (or start it, when no hook is configured)."""
    hook = shift.get("hook")
    if hook:
        assert hook["success"], f"shift-close hook failed: {hook}"
        return hook["body"]["dag_run_id"]
    conf = {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")}
    return airflow.trigger_dag(DAG_ID, conf=conf)["dag_run_id"]


def _saves_of(accurate_sandbox_url: str, number: str) -> int:
    """How many successful writes of ``number`` the Accurate sandbox logged."""
    log = httpx.get(
        f"{accurate_sandbox_url}/_sandbox/requests", params={"module": "sales-invoice"}, timeout=30
    )
    return sum(
        1 for e in log.json()["requests"] for saved in e.get("saved") or [] if saved.get("number") == number
    )


def _ledger_rows(source_number: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
        cur = conn.execute(
            "SELECT data_type, status, reason, target_number FROM sync.documents WHERE source_number = %s"
            " ORDER BY data_type",
            (source_number,),
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_shift_close_trigger_posts_invoices_and_receipts(airflow, sales_dag, accurate, iseller_sandbox_url):
    register = _register(0)
    customer = next(c for c in SHOP.customers if c.customer_number and not c.in_accurate)
    orders = [
        _order(iseller_sandbox_url, register, ["BRG-0001", "BRG-0002"]),
        _order(iseller_sandbox_url, register, ["BRG-0003"], customer_id=customer.customer_id),
    ]
    run_id = _run_for_shift(airflow, _close_shift(iseller_sandbox_url, register))
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240) == "success"

    numbers = [f"SI/{o['order_reference'].lstrip('#')}" for o in orders]
    invoices = accurate.find_by_numbers("sales-invoice", numbers)
    assert set(invoices) == set(numbers)
    detail = accurate.detail("sales-invoice", number=numbers[1])
    assert detail["customerNo"] == customer.customer_number  # customer ID mapping on in the demo settings
    assert Decimal(str(detail["detailItem"][0]["quantity"])) == Decimal(2)
    receipts = accurate.find_by_numbers("sales-receipt", [n.replace("SI/", "SR/") for n in numbers])
    assert len(receipts) == 2


def test_invalid_conf_is_refused_by_the_api(airflow, sales_dag):
    answer = airflow.post_dag_run(DAG_ID, {"logical_date": None, "conf": {"register_shift_id": 42}})
    assert answer.status_code == 400, answer.text
    answer = airflow.post_dag_run(DAG_ID, {"logical_date": None, "conf": {"outlet_id": ""}})
    assert answer.status_code == 400, answer.text


def test_failed_order_then_repair_and_clear_posts_exactly_what_is_missing(
    airflow, sales_dag, accurate, accurate_sandbox_url, iseller_sandbox_url
):
    register = _register(2)
    missing = SHOP.products[MISSING_IN_ACCURATE_INDEX]
    good = _order(iseller_sandbox_url, register, ["BRG-0005"])
    bad = _order(iseller_sandbox_url, register, [missing.sku, "BRG-0006"])
    run_id = _run_for_shift(airflow, _close_shift(iseller_sandbox_url, register))
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=300) == "failed"
    assert airflow.task_states(DAG_ID, run_id)["load"] == "failed"

    good_number = f"SI/{good['order_reference'].lstrip('#')}"
    bad_number = f"SI/{bad['order_reference'].lstrip('#')}"
    assert set(accurate.find_by_numbers("sales-invoice", [good_number, bad_number])) == {good_number}
    rows = {r["data_type"]: r for r in _ledger_rows(bad["order_reference"])}
    assert rows["sales_invoice"]["status"] == "failed" and missing.sku in rows["sales_invoice"]["reason"]
    assert rows["sales_receipt"]["status"] == "blocked" and bad_number in rows["sales_receipt"]["reason"]

    # Repair in Accurate: create the missing item; then the sync refresh = clear the failed task.
    answer = httpx.post(
        f"{accurate_sandbox_url}/_sandbox/items",
        timeout=30,
        json={
            "no": missing.sku,
            "name": missing.name,
            "itemType": "INVENTORY",
            "unit1Name": missing.unit,
            "unitPrice": str(missing.price),
            "stock": {w.warehouse_name: 100 for w in SHOP.outlets},
        },
    )
    assert answer.status_code == 200, answer.text
    airflow.clear_task_instances(DAG_ID, run_id, task_ids=["load"], only_failed=True)
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=300) == "success"

    assert set(accurate.find_by_numbers("sales-invoice", [good_number, bad_number])) == {
        good_number,
        bad_number,
    }
    assert _saves_of(accurate_sandbox_url, good_number) == 1  # the good one was not sent again
    assert _saves_of(accurate_sandbox_url, bad_number) == 1
    assert {r["status"] for r in _ledger_rows(bad["order_reference"])} == {"synced"}


@pytest.fixture
def settings_variable(airflow):
    """Change the settings Variable for one test; restore it (and the DAG's schedule) afterwards."""
    original = airflow.get_variable(SETTINGS_KEY, deserialize_json=True)

    def apply(**changes: Any) -> None:
        airflow.set_variable(SETTINGS_KEY, {**(original or {}), **changes})

    yield apply
    airflow.set_variable(SETTINGS_KEY, original or {})
    # shift_close mode (the demo's): the hourly shift sweep, no asset schedule
    _wait_for_schedule(
        airflow,
        lambda d: str(d.get("timetable_summary")).startswith("0 * * * *") and not d.get("asset_expression"),
        timeout=120,
    )


def _wait_for_schedule(airflow, check, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    details: dict[str, Any] = {}
    while time.monotonic() < deadline:
        details = airflow.call("GET", f"/api/v2/dags/{DAG_ID}/details")
        if check(details):
            return details
        time.sleep(2)
    raise AssertionError(
        f"the DAG was not re-parsed with the new schedule in time: {json.dumps(details)[:500]}"
    )


def test_scheduled_mode_runs_at_the_configured_local_times(airflow, sales_dag, settings_variable):
    settings_variable(sales_sync_mode="scheduled", sales_sync_times=["09:30", "21:00"])
    details = _wait_for_schedule(airflow, lambda d: "30 9" in str(d.get("timetable_summary")))
    run_after = datetime.fromisoformat(details["next_dagrun_run_after"].replace("Z", "+00:00"))
    local = run_after.astimezone(ZoneInfo("Asia/Jakarta"))
    assert (local.hour, local.minute) in {(9, 30), (21, 0)}
    # Airflow's rule for a cron timetable with catchup off: the next run is the latest configured time
    # already past (unless an automated run already came after it), else the next one to come.
    now = datetime.now(UTC)
    jakarta = ZoneInfo("Asia/Jakarta")
    slots = sorted(
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=jakarta).astimezone(UTC)
        for day in ((now + timedelta(days=offset)).astimezone(jakarta).date() for offset in range(-1, 3))
        for hour, minute in ((9, 30), (21, 0))
    )
    latest_past = max(slot for slot in slots if slot <= now)
    next_to_come = min(slot for slot in slots if slot > now)
    assert run_after in {latest_past, next_to_come}, (run_after, latest_past, next_to_come)


def test_realtime_mode_from_webhook_to_invoice(
    airflow, sales_dag, accurate, settings_variable, iseller_sandbox_url
):
    settings_variable(sales_sync_mode="realtime")
    _wait_for_schedule(
        airflow, lambda d: "iseller_order_notifications" in json.dumps(d.get("asset_expression") or {})
    )
    order = _order(iseller_sandbox_url, _register(4), ["BRG-0007"])
    number = f"SI/{order['order_reference'].lstrip('#')}"
    started = time.monotonic()
    while time.monotonic() - started < 180:
        if accurate.find_by_numbers("sales-invoice", [number]):
            break
        time.sleep(2)
    else:
        raise AssertionError(f"{number} did not reach Accurate within 180 s of the order webhook")
    print(f"\nreal-time: order webhook to invoice in Accurate in {time.monotonic() - started:.1f} s")
    deliveries = httpx.get(f"{iseller_sandbox_url}/_sandbox/webhook-deliveries", timeout=30).json()
    assert any(order["order_id"] in json.dumps(d) for d in deliveries.get("deliveries", deliveries))


def test_a_run_of_several_extract_chunks_is_posted_during_its_extract_exactly_once(
    airflow, sales_dag, accurate_sandbox_url, iseller_sandbox_url
):
    """A backfill of 2,100 orders (two extract chunks of 2,000): the extract task posts each stored
    chunk while it maps the next, through Airflow's own task process and connections; the load task
    finds the rest; every invoice and receipt is in Accurate exactly once."""
    start = datetime(2025, 3, 3, 1, tzinfo=UTC)  # long before the demo shop's history: only these orders
    end = start + timedelta(hours=3)
    answer = httpx.post(
        f"{iseller_sandbox_url}/_sandbox/orders/bulk",
        json={"count": 2100, "start_date": start.isoformat(), "end_date": end.isoformat(), "seed": 11},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    conf = {"window_start": start.isoformat(), "window_end": (end + timedelta(minutes=1)).isoformat()}
    run_id = airflow.trigger_dag(DAG_ID, conf=conf)["dag_run_id"]
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=600) == "success", airflow.task_states(DAG_ID, run_id)

    counts = airflow.call(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/extract/xcomEntries/return_value"
    )["value"]
    if isinstance(counts, str):
        counts = json.loads(counts)
    assert counts["records"] == 2100, counts
    assert counts["posted_early"] + counts["confirmed_early"] > counts["documents"] // 2, counts
    with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.data_type, d.status, d.task_id, d.target_number FROM sync.documents d"
            " JOIN sync.run_documents r ON r.document_id = d.id WHERE r.dag_id = %s AND r.run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    assert len(rows) == counts["documents"] and {row[1] for row in rows} == {"synced"}
    assert sum(row[2] == "extract" for row in rows) == counts["posted_early"] + counts["confirmed_early"]
    for data_type, module in (("sales_invoice", "sales-invoice"), ("sales_receipt", "sales-receipt")):
        ours = {row[3] for row in rows if row[0] == data_type}
        assert len(ours) == 2100, data_type
        stored = httpx.get(f"{accurate_sandbox_url}/_sandbox/records/{module}", timeout=60).json()["d"]
        numbers = [str(r["number"]) for r in stored if str(r["number"]) in ours]
        assert sorted(numbers) == sorted(ours), module  # each exactly once
