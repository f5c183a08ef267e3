"""Reconciliation against both sandboxes (real sockets, real hooks) and a real ledger in PostgreSQL.

The sync posts a local day of one outlet; the reconciliation finds it green. Then, in Accurate, one
invoice is deleted, another's amount edited, one added by hand; in iSeller an order is added outside
every synced window. The next reconciliation shows exactly those four, each with its class; the
re-post of the deleted one goes through the normal loader, exactly once. The stock check finds a
difference made on purpose in one warehouse, explains one caused by a sale not synced yet, and finds
nothing elsewhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from include.iseller_accurate.clients import AccurateHook, IsellerHook
from include.iseller_accurate.ledger import Ledger, RunRef
from include.iseller_accurate.pipeline import ExtractContext, Loader, extract_documents
from include.iseller_accurate.reconciliation import run as recon
from include.iseller_accurate.reconciliation import store
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from sandbox.demo_shop import build_demo_shop

SHOP = build_demo_shop(42)
SETTINGS = parse_settings(SHOP.settings())
KEMANG = SHOP.outlets[0]  # JKT01, Cabang Jakarta / Gudang Kemang
REGISTER = next(r for r in SHOP.registers if r.outlet_id == KEMANG.outlet_id)
DAY = date(2026, 11, 25)  # no seeded history that day
SYNC_START = datetime(2026, 11, 25, 2, tzinfo=UTC)  # 09:00 in Jakarta
SYNC_END = datetime(2026, 11, 25, 4, tzinfo=UTC)


def _order(iseller_url: str, sku: str, when: datetime, *, paid: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "outlet_id": KEMANG.outlet_id,
        "register_id": REGISTER.register_id,
        "lines": [{"sku": sku, "quantity": 2}],
        "order_date": when.isoformat(),
    }
    if not paid:
        body["payments"] = []
    answer = httpx.post(f"{iseller_url}/_sandbox/orders", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sync(
    ledger: Ledger, iseller: IsellerHook, accurate: AccurateHook, start: datetime, end: datetime, run_id: str
) -> Any:
    run = RunRef("iseller_sales_to_accurate", run_id, "extract")
    ctx = ExtractContext(SETTINGS, {}, start, end, iseller=iseller, ledger=ledger)
    extract_documents(SalesStream(), ctx, ledger, run, advance_cursor=False)
    return Loader(ledger, accurate, RunRef("iseller_sales_to_accurate", run_id, "load")).load_run()


def _reconcile(ledger: Ledger, iseller: IsellerHook, accurate: AccurateHook) -> recon.SalesOutcome:
    run = RunRef("iseller_accurate_reconciliation", "manual__test", "reconcile")
    return recon.reconcile_sales(SETTINGS, ledger, iseller, accurate, [DAY], [KEMANG.outlet_id], run)


def _ref(order: dict[str, Any]) -> str:
    return str(order["order_reference"]).lstrip("#")


@pytest.mark.parametrize("created_date", [True, False], ids=["createdDate", "no-createdDate"])
def test_four_differences_classified_and_repost_is_exactly_once(sandbox_urls, hooks, ledger, created_date):
    accurate_url, iseller_url = sandbox_urls
    # Real list records may have no createdDate (a public integrator's report): nothing here reads it.
    httpx.post(
        f"{accurate_url}/_sandbox/config", json={"created_date": created_date}, timeout=10
    ).raise_for_status()
    iseller, accurate = hooks
    kept = _order(iseller_url, "BRG-0001", SYNC_START + timedelta(minutes=10))
    unpaid = _order(iseller_url, "BRG-0002", SYNC_START + timedelta(minutes=20), paid=False)
    edited = _order(iseller_url, "BRG-0003", SYNC_START + timedelta(minutes=30))
    report = _sync(ledger, iseller, accurate, SYNC_START, SYNC_END, "manual__sync1")
    assert not report.failed and not report.blocked, report.table()
    assert report.posted == 5  # 3 invoices, 2 receipts

    clean = _reconcile(ledger, iseller, accurate)
    day = clean.days[0]
    assert (day.status, day.differences) == ("green", [])
    assert day.iseller["orders"] == 3 and day.accurate["invoices"] == 3
    assert day.accurate["invoice_amount"] == day.iseller["net_sales"]

    # Accurate: delete one invoice, edit another's amount, add one by hand.
    deleted_no = f"SI/{_ref(unpaid)}"
    assert accurate.call("sales-invoice", "delete", method="DELETE", params={"number": deleted_no})["s"]
    edited_no = f"SI/{_ref(edited)}"
    invoice = accurate.detail("sales-invoice", number=edited_no)
    assert invoice is not None
    line = invoice["detailItem"][0]
    changed = accurate.save(
        "sales-invoice",
        {
            "id": invoice["id"],
            "detailItem": [{"id": line["id"], "unitPrice": Decimal(line["unitPrice"]) + 1000}],
        },
    )
    assert changed.ok, changed.reason
    by_hand = accurate.save(
        "sales-invoice",
        {
            "transDate": DAY.strftime("%d/%m/%Y"),
            "customerNo": "UMUM",
            "branchName": KEMANG.branch_name,
            "detailItem": [
                {
                    "itemNo": "BRG-0004",
                    "quantity": 1,
                    "unitPrice": 12500,
                    "warehouseName": KEMANG.warehouse_name,
                }
            ],
        },
        idempotent=False,
    )
    assert by_hand.ok, by_hand.reason
    # iSeller: an order before the synced window (never read).
    unread = _order(iseller_url, "BRG-0005", SYNC_START - timedelta(minutes=30), paid=False)

    outcome = _reconcile(ledger, iseller, accurate)
    day = outcome.days[0]
    assert day.status == "red"
    found = {(d.cls, d.number) for d in day.differences}
    assert found == {
        ("missing_in_accurate", deleted_no),
        ("changed_in_accurate", edited_no),
        ("only_in_accurate", by_hand.number),
        ("only_in_iseller", f"SI/{_ref(unread)}"),
    }
    changed_diff = next(d for d in day.differences if d.cls == "changed_in_accurate")
    assert changed_diff.accurate_amount - changed_diff.expected_amount == Decimal(2000)  # 2 units x 1000
    assert day.difference_amount > 0
    assert kept  # the untouched order's documents are not listed
    assert not any(_ref(kept) in (d.number or "") for d in day.differences)

    # Stored for the page, with the fix for each class.
    row, diffs = store.day_detail(ledger.conn, KEMANG.outlet_id, DAY)
    assert row is not None and row["status"] == "red" and row["differences"] == 4
    missing = next(d for d in diffs if d["class"] == "missing_in_accurate")
    assert "Re-post" in missing["fix"]

    # A re-post of anything but a missing document is refused.
    other = next(d for d in diffs if d["class"] == "changed_in_accurate")
    refused = store.repost(
        ledger, accurate, [other["id"]], RunRef("iseller_accurate_reconciliation", "r0", "repost")
    )
    assert refused["reopened"] == [] and refused["refused"]

    # Re-post the deleted one: checked gone by number, reopened, then posted by the normal loader.
    run = RunRef("iseller_accurate_reconciliation", "manual__repost", "repost")
    result = store.repost(ledger, accurate, [missing["id"]], run)
    assert result["reopened"] == [missing["document_id"]]
    loaded = Loader(ledger, accurate, run).load_run()
    assert (loaded.posted, loaded.failed, loaded.blocked) == (1, [], [])
    # A second re-post of the same difference finds the number in Accurate: nothing is posted twice.
    again = store.repost(ledger, accurate, [missing["id"]], run)
    assert again["reopened"] == []
    records = httpx.get(f"{accurate_url}/_sandbox/records/sales-invoice", timeout=10).json()["d"]
    assert sum(1 for r in records if r["number"] == deleted_no) == 1

    after = _reconcile(ledger, iseller, accurate).days[0]
    assert {d.cls for d in after.differences} == {
        "changed_in_accurate",
        "only_in_accurate",
        "only_in_iseller",
    }

    # Repair the other three the way the page says: undo the edit, delete the duplicate, backfill.
    assert accurate.save(
        "sales-invoice",
        {"id": invoice["id"], "detailItem": [{"id": line["id"], "unitPrice": line["unitPrice"]}]},
    ).ok
    assert accurate.call("sales-invoice", "delete", method="DELETE", params={"number": by_hand.number})["s"]
    backfill = _sync(
        ledger, iseller, accurate, SYNC_START - timedelta(hours=1), SYNC_START, "manual__backfill"
    )
    assert backfill.posted == 1 and not backfill.failed
    green = _reconcile(ledger, iseller, accurate).days[0]
    assert (green.status, green.differences) == ("green", [])
    row, _ = store.day_detail(ledger.conn, KEMANG.outlet_id, DAY)
    assert row is not None and row["status"] == "green" and row["differences"] == 0


def test_not_synced_documents_are_classified_with_their_reason(sandbox_urls, hooks, ledger):
    _, iseller_url = sandbox_urls
    iseller, accurate = hooks
    _order(iseller_url, "BRG-0001", SYNC_START + timedelta(minutes=5))
    run = RunRef("iseller_sales_to_accurate", "manual__extract_only", "extract")
    ctx = ExtractContext(SETTINGS, {}, SYNC_START, SYNC_END, iseller=iseller, ledger=ledger)
    extract_documents(SalesStream(), ctx, ledger, run, advance_cursor=False)  # stored, never loaded
    day = _reconcile(ledger, iseller, accurate).days[0]
    assert {d.cls for d in day.differences} == {"not_synced"}
    assert len(day.differences) == 2  # the invoice and its receipt
    assert all("pending in the sync ledger" in d.detail for d in day.differences)


def _align_accurate_stock(accurate_url: str, iseller: IsellerHook) -> None:
    """Make Accurate's stock equal iSeller's (the demo's Accurate starts from the opening stock)."""
    warehouse_of = {o.outlet_id: o.warehouse_name for o in SHOP.outlets}
    in_accurate = {p.sku for p in SHOP.products if p.sku and p.in_accurate}
    items = []
    for product in iseller.get_products(track_inventory=True):
        if product.get("sku") not in in_accurate:
            continue
        stock = {
            warehouse_of[inv["outlet_id"]]: str(inv["unit_in_stock"])
            for inv in product.get("inventories") or []
            if inv["outlet_id"] in warehouse_of
        }
        items.append({"no": product["sku"], "name": product["name"], "stock": stock})
    for item in items:
        httpx.post(f"{accurate_url}/_sandbox/items", json=item, timeout=10).raise_for_status()


def test_stock_difference_in_one_warehouse_and_explained_one(sandbox_urls, hooks, ledger):
    accurate_url, iseller_url = sandbox_urls
    iseller, accurate = hooks
    in_accurate = {p.sku for p in SHOP.products if p.sku and p.in_accurate}
    _align_accurate_stock(accurate_url, iseller)
    dago = SHOP.outlets[1]
    httpx.post(
        f"{accurate_url}/_sandbox/items",
        json={"no": "BRG-0001", "stock": {dago.warehouse_name: "999"}},
        timeout=10,
    ).raise_for_status()
    # A sale at Kemang read by the sync but not posted: Accurate is 2 units higher there, explained.
    _order(iseller_url, "BRG-0002", SYNC_START + timedelta(minutes=5))
    run = RunRef("iseller_sales_to_accurate", "manual__extract_only", "extract")
    ctx = ExtractContext(SETTINGS, {}, SYNC_START, SYNC_END, iseller=iseller, ledger=ledger)
    extract_documents(SalesStream(), ctx, ledger, run, advance_cursor=False)

    outlets = sorted(SETTINGS.outlets)
    results = {
        r.outlet_id: r for r in recon.check_outlet_stock(SETTINGS, ledger, iseller, accurate, outlets, DAY)
    }
    assert set(results) == set(outlets)
    unexplained = {(o, d.item_no) for o, r in results.items() for d in r.differences if d.unexplained}
    assert unexplained == {(dago.outlet_id, "BRG-0001")}
    kemang = results[KEMANG.outlet_id]
    assert [(d.item_no, d.difference, d.explained_qty) for d in kemang.differences] == [
        ("BRG-0002", Decimal(2), Decimal(2))
    ]
    assert "sales invoice" in kemang.differences[0].explanation
    assert all(r.items_checked > 0 for r in results.values())
    assert all(r.items_checked <= len(in_accurate) for r in results.values())
    assert all(r.not_in_accurate >= 1 for r in results.values())  # the demo's product missing in Accurate
    checks, diffs = store.latest_stock(ledger.conn)
    assert {c["outlet_id"]: c["unexplained"] for c in checks}[dago.outlet_id] == 1
    assert len(diffs[dago.outlet_id]) == 1


class _RefusingAccurate:
    """Accurate answering every list with a refusal (e.g. a revoked token)."""

    def list(self, *args, **kwargs):
        raise RuntimeError("Accurate refused the credentials")


def test_a_side_that_cannot_be_read_marks_the_days_with_the_reason(sandbox_urls, hooks, ledger):
    iseller, _ = hooks
    with pytest.raises(RuntimeError, match="refused"):
        _reconcile(ledger, iseller, _RefusingAccurate())
    row, diffs = store.day_detail(ledger.conn, KEMANG.outlet_id, DAY)
    assert row is not None and row["status"] == "error" and diffs == []
    assert "could not be checked" in row["reason"] and "refused the credentials" in row["reason"]


def test_malformed_iseller_dates_do_not_stop_the_days_totals():
    records = [
        {
            "order_id": "a",
            "outlet_id": "o",
            "status": "completed",
            "closed_date": "not a date",
            "order_date": None,
        },
        {
            "order_id": "b",
            "outlet_id": "o",
            "status": "completed",
            "closed_date": "2026-11-25T03:00:00",
            "total_amount": "10",
            "_refunds": [{"refund_date": "31/31/2026", "refund_amount": "1"}, "junk"],
        },
    ]
    totals = recon._iseller_by_day(records, ["o"], {DAY}, SETTINGS)
    assert totals[("o", DAY)]["orders"] == 1 and totals[("o", DAY)]["net_sales"] == Decimal(10)
    assert totals[("o", DAY)]["refunds"] == 0


def test_a_repost_the_loader_could_not_finish_is_posted_by_the_retry(sandbox_urls, hooks, ledger):
    """Accurate fails while the re-post is sent: the row stays failed on the run; the task's retry
    (or Refresh) posts it, still once."""
    accurate_url, iseller_url = sandbox_urls
    iseller, accurate = hooks
    order = _order(iseller_url, "BRG-0002", SYNC_START + timedelta(minutes=20), paid=False)
    assert not _sync(ledger, iseller, accurate, SYNC_START, SYNC_END, "manual__sync").failed
    number = f"SI/{_ref(order)}"
    assert accurate.call("sales-invoice", "delete", method="DELETE", params={"number": number})["s"]
    _reconcile(ledger, iseller, accurate)
    [missing] = [d for d in store.day_detail(ledger.conn, KEMANG.outlet_id, DAY)[1]]
    assert missing["class"] == "missing_in_accurate"
    run = RunRef("iseller_accurate_reconciliation", "manual__repost", "repost")
    faults = {
        "fail_next": 20,
        "fail_next_kind": "error",
        "modules": ["sales-invoice"],
        "actions": ["bulk-save"],
    }
    httpx.post(f"{accurate_url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()
    try:
        outcome, report = recon.repost_and_load(ledger, accurate, [missing["id"]], run)
    finally:
        httpx.delete(f"{accurate_url}/_sandbox/faults", timeout=10).raise_for_status()
    assert outcome["reopened"] == [missing["document_id"]] and [r.id for r in report.failed] == [
        missing["document_id"]
    ]
    outcome, report = recon.repost_and_load(ledger, accurate, [missing["id"]], run)  # the retry
    assert outcome["reopened"] == [] and report.posted == 1 and not report.failed
    records = httpx.get(f"{accurate_url}/_sandbox/records/sales-invoice", timeout=10).json()["d"]
    assert sum(1 for r in records if r["number"] == number) == 1
