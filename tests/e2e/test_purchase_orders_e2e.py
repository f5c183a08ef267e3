"""Purchase orders end to end on the real stack (issue 11): Airflow API server + scheduler, both
sandboxes, PostgreSQL. Documents are saved in the Accurate sandbox through its signed API, which
delivers PURCHASE_ORDER / RECEIVE_ITEM webhooks to the receiver; the asset event schedules the
ingestion DAG; iSeller is read back through its sandbox's API.

A purchase order saved in Accurate appears in iSeller as pending; its partial receipt completes what
arrived (stock moves once) and leaves the rest pending; closing the order cancels the rest. Each step
exactly once, with Accurate re-sending every delivery.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from include.iseller_accurate.clients import AccurateHook, IsellerHook
from include.iseller_accurate.ledger import dsn_from_connection
from sandbox.demo_shop import build_demo_shop

INGEST = "accurate_webhooks_to_iseller"
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
KEMANG = next(o for o in SHOP.outlets if o.outlet_code == "JKT01")
TOKEN = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
RUN = uuid.uuid4().hex[:6].upper()


@pytest.fixture(scope="module")
def stack(airflow, accurate_sandbox_url, iseller_sandbox_url) -> Iterator[dict[str, str]]:
    airflow.wait_for_dag(INGEST, timeout=180)
    airflow.unpause(INGEST)
    target = f"{airflow.base_url}/integrations/accurate/webhook?token={TOKEN}"
    _post(accurate_sandbox_url, "webhook-target", {"url": target})
    config = httpx.get(f"{accurate_sandbox_url}/_sandbox/config", timeout=30).json()
    types = sorted({*config["webhook_types"], "PURCHASE_ORDER", "RECEIVE_ITEM"})
    _post(accurate_sandbox_url, "config", {"webhook_types": types})
    _post(iseller_sandbox_url, "pending-transfers", {"enabled": True})
    # Accurate re-sends every delivery: each step must still happen once.
    _post(accurate_sandbox_url, "faults", {"duplicate_webhook_rate": 1.0})
    yield {"accurate": accurate_sandbox_url, "iseller": iseller_sandbox_url}
    _post(accurate_sandbox_url, "faults", {"duplicate_webhook_rate": 0})


def _post(base: str, route: str, body: dict[str, Any]) -> Any:
    answer = httpx.post(f"{base}/_sandbox/{route}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _ledger(sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn_from_connection(), row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def _save(module: str, record: dict[str, Any]) -> dict[str, Any]:
    result = AccurateHook().save(module, record)
    assert result.ok, result.reason
    return result.record or {}


def _transfers(prefix: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for transfer in IsellerHook().get_transfers(transfer_type="in", outlet_id=KEMANG.outlet_id):
        reference = transfer.get("reference_code") or ""
        if reference.startswith(prefix):
            assert reference not in found, f"{reference} was created twice"
            found[reference] = transfer
    return found


def _stock(sku: str) -> Decimal:
    for product in IsellerHook().get_products():
        if product.get("sku") == sku:
            for inventory in product.get("inventories") or []:
                if inventory.get("outlet_id") == KEMANG.outlet_id:
                    return Decimal(str(inventory.get("unit_in_stock")))
            return Decimal(0)
    raise AssertionError(f"no product {sku}")


def _quantities(transfer: dict[str, Any], key: str = "quantity") -> dict[str, Decimal]:
    return {p["sku"]: Decimal(str(p[key])) for p in transfer["products"] if p.get(key) not in (None, 0)}


def _wait(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen after {timeout}s")
        time.sleep(0.5)


def _events_done(number: str, count: int) -> list[dict[str, Any]] | None:
    rows = _ledger(
        "SELECT status, reason, iseller_reference FROM sync.webhook_events WHERE accurate_number = %s"
        " ORDER BY id",
        number,
    )
    if len(rows) >= count and all(r["status"] in ("done", "ignored", "failed") for r in rows):
        return rows
    return None


@pytest.mark.timeout(600)
def test_purchase_order_pending_partial_receipt_close_each_step_once(stack):
    po_number = f"PO.E2E.{RUN}"
    ri_number = f"RI.E2E.PO.{RUN}"
    prefix = f"ACC-PO-{po_number}"
    before = {sku: _stock(sku) for sku in ("BRG-0001", "BRG-0002")}

    # 1. The order is saved in Accurate: pending in iSeller, no stock.
    order = _save(
        "purchase-order",
        {
            "number": po_number,
            "vendorNo": "V.0001",
            "branchName": KEMANG.branch_name,
            "warehouseName": KEMANG.warehouse_name,
            "detailItem": [
                {"itemNo": "BRG-0001", "quantity": 10, "unitPrice": 1000},
                {"itemNo": "BRG-0002", "quantity": 4, "unitPrice": 1000},
            ],
        },
    )
    made = _wait("the pending transfer", lambda: _transfers(prefix))
    assert list(made) == [prefix]
    assert made[prefix]["status"] == "pending" and made[prefix]["supplier_name"]
    assert _quantities(made[prefix]) == {"BRG-0001": Decimal(10), "BRG-0002": Decimal(4)}
    _wait("the order's events", lambda: _events_done(po_number, 1))
    assert {sku: _stock(sku) for sku in before} == before

    # 2. A partial receipt: 6 of 10 BRG-0001, all 4 BRG-0002.
    _save(
        "receive-item",
        {
            "number": ri_number,
            "receiveNumber": f"SJ-{ri_number}",
            "vendorNo": "V.0001",
            "branchName": KEMANG.branch_name,
            "warehouseName": KEMANG.warehouse_name,
            "purchaseOrderNumber": po_number,
            "detailItem": [{"itemNo": "BRG-0001", "quantity": 6}, {"itemNo": "BRG-0002", "quantity": 4}],
        },
    )
    made = _wait("the remainder", lambda: (found := _transfers(prefix)) and len(found) == 2 and found)
    assert made[prefix]["status"] == "completed"
    assert _quantities(made[prefix], "received_quantity") == {"BRG-0001": Decimal(6), "BRG-0002": Decimal(4)}
    rest = made[f"{prefix}-2"]
    assert rest["status"] == "pending" and _quantities(rest) == {"BRG-0001": Decimal(4)}
    rows = _wait("the receipt's events", lambda: _events_done(ri_number, 1))
    assert rows[0]["status"] == "done" and "still open: BRG-0001 x 4" in rows[0]["reason"]
    assert list(IsellerHook().get_transfers(reference_code=f"ACC-RI-{ri_number}")) == []
    assert _stock("BRG-0001") == before["BRG-0001"] + 6
    assert _stock("BRG-0002") == before["BRG-0002"] + 4

    # 3. The order is closed in Accurate: the rest is cancelled, nothing moves.
    closed = _save("purchase-order", {"id": order["id"], "manualClosed": True})
    assert closed["status"] == "CLOSED"
    _wait(
        "the cancellation",
        lambda: _transfers(prefix).get(f"{prefix}-2", {}).get("status") == "cancelled",
    )
    rows = _wait("the close events", lambda: _events_done(po_number, 2))
    assert any("cancelled in iSeller" in (r["reason"] or "") for r in rows)
    assert all(r["status"] == "done" for r in rows)

    # Each step once: two transfers, one completion, one cancellation, stock moved once.
    time.sleep(3)  # let any late duplicate be processed
    made = _transfers(prefix)
    assert sorted(made) == [prefix, f"{prefix}-2"]
    assert [made[prefix]["status"], made[f"{prefix}-2"]["status"]] == ["completed", "cancelled"]
    assert _stock("BRG-0001") == before["BRG-0001"] + 6
    assert _stock("BRG-0002") == before["BRG-0002"] + 4
    ledger_rows = _ledger(
        "SELECT reference_code, iseller_status, receipt_number FROM sync.webhook_transfers"
        " WHERE accurate_number = %s ORDER BY id",
        po_number,
    )
    assert [(r["reference_code"], r["iseller_status"], r["receipt_number"]) for r in ledger_rows] == [
        (prefix, "completed", ri_number),
        (f"{prefix}-2", "cancelled", None),
    ]
