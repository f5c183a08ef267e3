"""Stock opname end to end on the real stack: Airflow, both sandboxes, PostgreSQL.

A stock take at an outlet waits (blocked, with the sale it waits for) until the outlet's earlier
sales are in Accurate; the sales sync then posts them and releases the stock opname by itself; the
adjustment quantities are checked against the Accurate sandbox's stock (``item/get-stock.do``).
"""

from __future__ import annotations

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
from sandbox.demo_shop import HISTORY_START, build_demo_shop

OPNAME_DAG = "iseller_stock_opname_to_accurate"
SALES_DAG = "iseller_sales_to_accurate"
SETTINGS_KEY = "iseller_accurate_settings"
SHOP = build_demo_shop(42)
SURABAYA = next(o for o in SHOP.outlets if o.outlet_code == "SBY01")
REGISTER = next(r for r in SHOP.registers if r.outlet_id == SURABAYA.outlet_id)
# Items no other end-to-end test moves at this outlet.
COUNTED = {"BRG-0021": Decimal(5), "BRG-0022": Decimal(70)}


def _far_time() -> str:
    """A time of day twelve hours away: scheduled runs will not interfere with the triggered ones."""
    local = datetime.now(ZoneInfo("Asia/Jakarta")) + timedelta(hours=12)
    return f"{local.hour:02d}:{local.minute // 10 * 10:02d}"


def _wait_for(check, what: str, timeout: float = 180.0, poll: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)


def ledger_rows(sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _details(airflow, dag_id: str) -> dict[str, Any]:
    return airflow.call("GET", f"/api/v2/dags/{dag_id}/details")


@pytest.fixture(scope="module")
def opname_dag(airflow):
    """Stock opname runs are triggered (transfer sync scheduled far away); sales only run when the test
    says so: shift-close mode, DAG paused, no run in flight. Settings and paused states are restored."""
    original = airflow.get_variable(SETTINGS_KEY, deserialize_json=True) or {}
    far = _far_time()
    airflow.set_variable(
        SETTINGS_KEY,
        {
            **original,
            "transfer_sync_scheduled": True,
            "transfer_sync_times": [far],
            "sales_sync_mode": "shift_close",
        },
    )
    hour, minute = (int(x) for x in far.split(":"))
    _wait_for(
        lambda: f"{minute} {hour} * * *" in str(_details(airflow, OPNAME_DAG).get("timetable_summary")),
        "the stock opname DAG re-parsed with the scheduled times",
    )
    _wait_for(
        lambda: (
            str(_details(airflow, SALES_DAG).get("timetable_summary")).startswith("0 * * * *")
            and not _details(airflow, SALES_DAG).get("asset_expression")
        ),
        "the sales DAG re-parsed in shift-close mode (the hourly shift sweep only)",
    )
    paused = {dag: airflow.dag(dag)["is_paused"] for dag in (OPNAME_DAG, SALES_DAG)}
    airflow.unpause(OPNAME_DAG)
    airflow.pause(SALES_DAG)
    _wait_for(
        lambda: (
            not airflow.dag_runs(SALES_DAG, state="running")  # queued ones wait for the unpause
        ),
        "no sales run in flight",
        timeout=300,
    )
    yield OPNAME_DAG
    for dag, was_paused in paused.items():
        airflow.set_paused(dag, was_paused)
    airflow.set_variable(SETTINGS_KEY, original)


def test_stock_take_waits_for_the_outlets_earlier_sales_then_adjusts_accurate_to_the_count(
    airflow, opname_dag, iseller_sandbox_url
):
    accurate = AccurateHook()
    # A sale at the outlet, then a stock take there: the take counted the stock after that sale.
    answer = httpx.post(
        f"{iseller_sandbox_url}/_sandbox/orders",
        timeout=30,
        json={
            "outlet_id": SURABAYA.outlet_id,
            "register_id": REGISTER.register_id,
            "lines": [{"sku": "BRG-0021", "quantity": 2}, {"sku": "BRG-0022", "quantity": 1}],
        },
    )
    assert answer.status_code == 200, answer.text
    order = answer.json()
    invoice_number = f"SI/{order['order_reference'].lstrip('#')}"
    answer = httpx.post(
        f"{iseller_sandbox_url}/_sandbox/stock-takes",
        timeout=30,
        json={
            "outlet_id": SURABAYA.outlet_id,
            "lines": [{"sku": sku, "counted_quantity": str(count)} for sku, count in COUNTED.items()],
        },
    )
    assert answer.status_code == 200, answer.text
    take = answer.json()
    number = f"SO/{take['stock_take_number']}"
    system = {line["sku"]: Decimal(str(line["system_quantity"])) for line in take["lines"]}

    # The stock opname runs first: the sale is not synced, so it waits, saying for what.
    run_id = airflow.trigger_dag(OPNAME_DAG)["dag_run_id"]
    assert airflow.wait_for_run(OPNAME_DAG, run_id, timeout=300) == "failed"
    (row,) = ledger_rows(
        "SELECT status, reason FROM sync.documents WHERE data_type = 'stock_opname' AND source_id = %s",
        take["stock_take_id"],
    )
    assert row["status"] == "blocked", row
    assert row["reason"].startswith("waits for sales invoice SI/SBY01-"), row["reason"]
    assert "has not read from iSeller yet" in row["reason"] or "which failed" in row["reason"], row["reason"]
    awaited = ledger_rows(
        "SELECT a.source_id FROM sync.awaited_prerequisites a JOIN sync.documents d ON d.id = a.document_id"
        " WHERE d.source_id = %s",
        take["stock_take_id"],
    )
    assert order["order_id"] in {a["source_id"] for a in awaited}
    assert not accurate.find_by_numbers("item-adjustment", [number])

    # The sales sync reads the outlet's sales from the start of the demo history (so Accurate holds
    # every movement iSeller counted against); its load posts the waiting stock opname as well.
    now = datetime.now(UTC)
    airflow.unpause(SALES_DAG)
    sales_run = airflow.trigger_dag(
        SALES_DAG,
        conf={
            "window_start": datetime.combine(HISTORY_START, datetime.min.time(), UTC).isoformat(),
            "window_end": (now + timedelta(minutes=1)).isoformat(),
        },
    )["dag_run_id"]
    airflow.wait_for_run(SALES_DAG, sales_run, timeout=600)  # other tests' orders may fail it: not ours
    synced = _wait_for(
        lambda: ledger_rows(
            "SELECT d.data_type, d.status, d.synced_at FROM sync.documents d"
            " WHERE d.target_number IN (%s, %s)",
            invoice_number,
            number,
        ),
        "the invoice and the stock opname in the ledger",
        timeout=60,
    )
    by_type = {r["data_type"]: r for r in synced}
    assert by_type["sales_invoice"]["status"] == "synced"
    assert by_type["stock_opname"]["status"] == "synced", by_type
    assert by_type["stock_opname"]["synced_at"] >= by_type["sales_invoice"]["synced_at"]

    # Accurate: the adjustment holds counted - system per item, and the stock now equals the count.
    adjustment = accurate.detail("item-adjustment", number=number)
    lines = {line["itemNo"]: line for line in adjustment["detailItem"]}
    for sku, count in COUNTED.items():
        difference = count - system[sku]
        assert lines[sku]["itemAdjustmentType"] == ("ADJUSTMENT_IN" if difference > 0 else "ADJUSTMENT_OUT")
        assert Decimal(str(lines[sku]["quantity"])) == abs(difference)
        assert Decimal(str(lines[sku]["unitCost"])) > 0
        assert accurate.get_stock(sku, SURABAYA.warehouse_name) == count, sku

    # The stock opname run stays red until refreshed; its refresh has nothing left to do.
    airflow.clear_task_instances(OPNAME_DAG, run_id, task_ids=["load"], only_failed=True)
    assert airflow.wait_for_run(OPNAME_DAG, run_id, timeout=300) == "success"
    assert len(accurate.find_by_numbers("item-adjustment", [number])) == 1
