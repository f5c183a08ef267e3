"""iSeller's order total against the invoice, through both sandboxes (real sockets, real hooks) and a
real ledger in PostgreSQL.

One order among several reports a ``total_order_amount`` its lines do not add up to (set with the
iSeller sandbox's ``/_sandbox/orders/{id}/total-order-amount``). Extract and load: that order's
invoice ends failed in the ledger with a reason naming the order and both totals, nothing of it
reaches Accurate, and every other order is posted exactly once, also when the load runs again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from include.iseller_accurate.ledger import RunRef
from include.iseller_accurate.pipeline import ExtractContext, Loader, extract_documents
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from sandbox.demo_shop import build_demo_shop

SHOP = build_demo_shop(42)
SETTINGS = parse_settings(SHOP.settings())
KEMANG = SHOP.outlets[0]
REGISTER = next(r for r in SHOP.registers if r.outlet_id == KEMANG.outlet_id)
SYNC_START = datetime(2026, 11, 25, 2, tzinfo=UTC)  # no seeded history that day
SYNC_END = datetime(2026, 11, 25, 4, tzinfo=UTC)
DAG = "iseller_sales_to_accurate"


def _order(iseller_url: str, sku: str, when: datetime) -> dict[str, Any]:
    body = {
        "outlet_id": KEMANG.outlet_id,
        "register_id": REGISTER.register_id,
        "lines": [{"sku": sku, "quantity": 2}],
        "order_date": when.isoformat(),
    }
    answer = httpx.post(f"{iseller_url}/_sandbox/orders", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json(parse_float=Decimal)


def _records(accurate_url: str, module: str) -> list[str]:
    records = httpx.get(f"{accurate_url}/_sandbox/records/{module}", timeout=10).json()["d"]
    return [str(r["number"]) for r in records]


def test_order_whose_total_disagrees_fails_alone_and_the_others_post_once(sandbox_urls, hooks, ledger):
    accurate_url, iseller_url = sandbox_urls
    iseller, accurate = hooks
    orders = [
        _order(iseller_url, sku, SYNC_START + timedelta(minutes=10 * n))
        for n, sku in enumerate(("BRG-0001", "BRG-0002", "BRG-0003", "BRG-0004"), start=1)
    ]
    bad = orders[1]
    reported = Decimal(str(bad["total_amount"])) + Decimal("5000.00")
    answer = httpx.post(
        f"{iseller_url}/_sandbox/orders/{bad['order_id']}/total-order-amount",
        json={"total_order_amount": str(reported)},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    invoice_total = Decimal(str(bad["total_amount"])) - max(Decimal(str(bad["rounding_amount"])), Decimal(0))

    extract_documents(
        SalesStream(),
        ExtractContext(SETTINGS, {}, SYNC_START, SYNC_END, iseller=iseller, ledger=ledger),
        ledger,
        RunRef(DAG, "manual__total", "extract"),
        advance_cursor=False,
    )
    report = Loader(ledger, accurate, RunRef(DAG, "manual__total", "load")).load_run()

    assert [r.source_id for r in report.failed] == [bad["order_id"]], report.table()
    rows = ledger.conn.execute(
        "SELECT source_id, status, reason FROM sync.documents WHERE data_type = 'sales_invoice'"
    ).fetchall()
    by_order = {r["source_id"]: r for r in rows}
    assert set(by_order) == {o["order_id"] for o in orders}
    failed = by_order[bad["order_id"]]
    assert failed["status"] == "failed"
    reason = failed["reason"]
    assert reason.startswith(f"order {bad['order_reference']}: "), reason
    assert f"the invoice would total {invoice_total:.2f}" in reason, reason
    assert f"iSeller's total_order_amount is {reported:.2f}" in reason, reason
    assert all(by_order[o["order_id"]]["status"] == "synced" for o in orders if o is not bad)

    # Accurate holds each good order's invoice and receipt exactly once, nothing of the bad one.
    good = sorted(f"SI/{str(o['order_reference']).lstrip('#')}" for o in orders if o is not bad)
    bad_no = f"SI/{str(bad['order_reference']).lstrip('#')}"
    invoices = [n for n in _records(accurate_url, "sales-invoice") if n in good or n == bad_no]
    assert sorted(invoices) == good
    receipts = _records(accurate_url, "sales-receipt")
    for o in orders:
        expected = 0 if o is bad else 1
        assert receipts.count(f"SR/{str(o['order_reference']).lstrip('#')}") == expected

    # The load runs again (a retry): the bad order fails again with its reason, nothing is re-posted.
    again = Loader(ledger, accurate, RunRef(DAG, "manual__total", "load", try_number=2)).load_run()
    assert again.posted == 0
    assert [r.source_id for r in again.failed] == [bad["order_id"]]
    assert sorted(n for n in _records(accurate_url, "sales-invoice") if n in good or n == bad_no) == good
