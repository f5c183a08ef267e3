"""Purchase orders reach iSeller as pending transfers (issue 11), against both real sandboxes.

A purchase order becomes a pending transfer ``in`` (no stock); the receive item that references it
completes that transfer with what arrived (stock moves once) and leaves the rest pending; closing or
deleting the order cancels what is still pending. Every step exactly once: re-deliveries, events out
of order and a crash between UpdateTransfer and its confirmation send nothing twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from include.iseller_accurate.clients import AccurateHook, IsellerHook
from include.iseller_accurate.pipeline import SyncFailed
from include.iseller_accurate.purchases import orders as purchase_orders
from include.iseller_accurate.purchases.processor import WebhookProcessor, process_run
from include.iseller_accurate.settings import parse_settings
from tests.integration.test_webhook_ingestion import (  # noqa: F401 - fixtures
    OUTLET,
    SHOP,
    event_for,
    ledger,
    processor,
    receive_item,
    run,
    sandboxes,
    save,
    status_of,
    store,
)

KEMANG = OUTLET["JKT01"].outlet_id


def purchase_order(number: str, lines: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    return save(
        "purchase-order",
        {
            "number": number,
            "vendorNo": "V.0001",
            "branchName": "Cabang Jakarta",
            "warehouseName": "Gudang Kemang",
            "detailItem": [{"itemNo": sku, "quantity": qty, "unitPrice": 1000} for sku, qty in lines],
            **extra,
        },
    )


def po_event(record: dict[str, Any], action: str = "WRITE") -> dict[str, Any]:
    return event_for("PURCHASE_ORDER", "purchaseOrder", record, action)


def ri_event(record: dict[str, Any], action: str = "WRITE") -> dict[str, Any]:
    return event_for("RECEIVE_ITEM", "receiveItem", record, action)


def iseller_transfers(prefix: str) -> dict[str, dict[str, Any]]:
    """Every supplier transfer whose reference starts with ``prefix``; fails on a duplicate reference."""
    found: dict[str, dict[str, Any]] = {}
    for transfer in IsellerHook().get_transfers(transfer_type="in"):
        reference = transfer.get("reference_code") or ""
        if reference.startswith(prefix):
            assert reference not in found, f"{reference} was created twice"
            found[reference] = transfer
    return found


def stock(sku: str, outlet_id: str = KEMANG) -> Decimal:
    for product in IsellerHook().get_products():
        if product.get("sku") == sku:
            for inventory in product.get("inventories") or []:
                if inventory.get("outlet_id") == outlet_id:
                    return Decimal(str(inventory.get("unit_in_stock")))
            return Decimal(0)
    raise AssertionError(f"no product {sku}")


def quantities(transfer: dict[str, Any], key: str = "quantity") -> dict[str, Decimal]:
    return {p["sku"]: Decimal(str(p[key])) for p in transfer["products"] if p.get(key) not in (None, 0, "0")}


def process(events: Any, name: str) -> dict[str, Any]:
    ref = run(name)
    return process_run(events, processor(events, ref), ref)


def test_order_pending_then_partial_receipt_then_close_each_step_once(sandboxes, ledger):  # noqa: F811 - fixtures
    before = {sku: stock(sku) for sku in ("BRG-0001", "BRG-0002")}
    order = purchase_order("PO.IT.0001", [("BRG-0001", 10), ("BRG-0002", 4)])
    first, again = po_event(order), po_event(order)
    store(ledger, first, again)
    process(ledger, "po-1")

    made = iseller_transfers("ACC-PO-PO.IT.0001")
    assert list(made) == ["ACC-PO-PO.IT.0001"]
    pending = made["ACC-PO-PO.IT.0001"]
    assert pending["status"] == "pending" and pending["type"] == "in"
    assert pending["to_outlet_id"] == KEMANG and pending["supplier_name"] == "PT Sumber Kopi Nusantara"
    assert quantities(pending) == {"BRG-0001": Decimal(10), "BRG-0002": Decimal(4)}
    assert {sku: stock(sku) for sku in before} == before  # expected goods are not stock yet
    status, reason = status_of(ledger, first)
    assert status == "done" and "pending in iSeller as ACC-PO-PO.IT.0001" in (reason or "")
    assert status_of(ledger, again)[0] == "done"
    assert "already pending" in (status_of(ledger, again)[1] or "")

    # A partial receipt: 6 of 10 BRG-0001 and all 4 BRG-0002 arrive.
    receipt = receive_item(
        "RI.PO.0001",
        [("BRG-0001", 6), ("BRG-0002", 4)],
        purchaseOrderNumber=order["number"],
    )
    got, got_again = ri_event(receipt), ri_event(receipt)
    store(ledger, got, got_again)
    process(ledger, "ri-1")

    made = iseller_transfers("ACC-PO-PO.IT.0001")
    assert sorted(made) == ["ACC-PO-PO.IT.0001", "ACC-PO-PO.IT.0001-2"]
    completed, rest = made["ACC-PO-PO.IT.0001"], made["ACC-PO-PO.IT.0001-2"]
    assert completed["status"] == "completed"
    assert quantities(completed, "received_quantity") == {"BRG-0001": Decimal(6), "BRG-0002": Decimal(4)}
    assert rest["status"] == "pending" and quantities(rest) == {"BRG-0001": Decimal(4)}
    assert iseller_transfers("ACC-RI-RI.PO.0001") == {}  # the order's transfer brought the goods
    assert stock("BRG-0001") == before["BRG-0001"] + 6
    assert stock("BRG-0002") == before["BRG-0002"] + 4
    status, reason = status_of(ledger, got)
    assert status == "done"
    assert "completed ACC-PO-PO.IT.0001" in (reason or "") and "BRG-0001 x 4" in (reason or "")
    assert status_of(ledger, got_again)[0] == "done"

    # The order's event delivered late changes nothing.
    late = po_event(order)
    store(ledger, late)
    process(ledger, "po-late")
    assert "already pending in iSeller as ACC-PO-PO.IT.0001-2" in (status_of(ledger, late)[1] or "")
    assert sorted(iseller_transfers("ACC-PO-PO.IT.0001")) == ["ACC-PO-PO.IT.0001", "ACC-PO-PO.IT.0001-2"]

    # Closing the order cancels what is still pending; nothing moves.
    closed = save("purchase-order", {"id": order["id"], "manualClosed": True})
    assert closed["status"] == "CLOSED"
    close, close_again = po_event(closed), po_event(closed)
    store(ledger, close, close_again)
    process(ledger, "po-close")
    made = iseller_transfers("ACC-PO-PO.IT.0001")
    assert sorted(made) == ["ACC-PO-PO.IT.0001", "ACC-PO-PO.IT.0001-2"]
    assert made["ACC-PO-PO.IT.0001-2"]["status"] == "cancelled"
    assert made["ACC-PO-PO.IT.0001"]["status"] == "completed"
    assert stock("BRG-0001") == before["BRG-0001"] + 6
    status, reason = status_of(ledger, close)
    assert status == "done" and "closed in Accurate: cancelled in iSeller ACC-PO-PO.IT.0001-2" in reason
    assert "nothing is pending" in (status_of(ledger, close_again)[1] or "")


@pytest.mark.parametrize("created_date", [True, False], ids=["createdDate", "no-createdDate"])
def test_receipt_before_its_order_event_and_deleted_order(sandboxes, ledger, created_date):  # noqa: F811 - fixtures
    import httpx

    # Orders and receipts are read back with detail.do; real records may have no createdDate.
    accurate_url, _ = sandboxes
    httpx.post(f"{accurate_url}/_sandbox/config", json={"created_date": created_date}).raise_for_status()
    before = stock("BRG-0003")
    order = purchase_order("PO.IT.0002", [("BRG-0003", 5), ("BRG-0004", 2)])
    receipt = receive_item(
        "RI.PO.0002",
        [("BRG-0003", 5), ("BRG-0005", 1)],  # BRG-0005 was not ordered: a plain receipt line
        purchaseOrderNumber=order["number"],
    )
    got = ri_event(receipt)
    store(ledger, got)
    process(ledger, "ri-first")
    made = iseller_transfers("ACC-PO-PO.IT.0002")
    assert made["ACC-PO-PO.IT.0002"]["status"] == "completed"
    assert quantities(made["ACC-PO-PO.IT.0002"], "received_quantity") == {"BRG-0003": Decimal(5)}
    assert made["ACC-PO-PO.IT.0002-2"]["status"] == "pending"
    assert quantities(made["ACC-PO-PO.IT.0002-2"]) == {"BRG-0004": Decimal(2)}
    (plain,) = iseller_transfers("ACC-RI-RI.PO.0002").values()
    assert quantities(plain) == {"BRG-0005": Decimal(1)}
    assert stock("BRG-0003") == before + 5

    # The order's event arrives afterwards: nothing new.
    late = po_event(order)
    store(ledger, late)
    process(ledger, "po-after")
    assert status_of(ledger, late)[0] == "done"
    assert len(iseller_transfers("ACC-PO-PO.IT.0002")) == 2

    # The receive item is deleted first (Accurate refuses to delete an order in use), then the order.
    assert AccurateDelete.delete("receive-item", receipt["number"])
    gone = ri_event(receipt, "DELETE")
    store(ledger, gone)
    process(ledger, "ri-delete")
    assert stock("BRG-0003") == before  # reversed once, by the receive item's own transfer
    assert AccurateDelete.delete("purchase-order", order["number"])
    deleted = po_event(order, "DELETE")
    store(ledger, deleted)
    process(ledger, "po-delete")
    made = iseller_transfers("ACC-PO-PO.IT.0002")
    assert made["ACC-PO-PO.IT.0002-2"]["status"] == "cancelled"
    assert "deleted in Accurate: cancelled in iSeller" in (status_of(ledger, deleted)[1] or "")


class AccurateDelete:
    @staticmethod
    def delete(module: str, number: str) -> bool:
        from include.iseller_accurate.clients import AccurateHook

        body = AccurateHook().call(module, "delete", method="POST", params={"number": number})
        assert body.get("s"), body
        return True


def test_crash_after_update_transfer_is_settled_by_look_up(sandboxes, ledger, monkeypatch):  # noqa: F811 - fixtures
    order = purchase_order("PO.IT.0003", [("BRG-0006", 3)])
    store(ledger, po_event(order))
    process(ledger, "po-3")
    before = stock("BRG-0006")
    receipt = receive_item("RI.PO.0003", [("BRG-0006", 3)], purchaseOrderNumber=order["number"])
    original = purchase_orders.OrderLedger.settle_status
    calls = {"n": 0}

    def crash_once(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker lost after UpdateTransfer")
        original(self, *args, **kwargs)

    monkeypatch.setattr(purchase_orders.OrderLedger, "settle_status", crash_once)
    got = ri_event(receipt)
    store(ledger, got)
    with pytest.raises(Exception, match="1 of 1 webhook events failed"):
        process(ledger, "ri-crash")
    assert stock("BRG-0006") == before + 3  # iSeller completed it; the ledger did not hear back
    monkeypatch.setattr(purchase_orders.OrderLedger, "settle_status", original)
    ref = run("ri-crash", try_number=2)  # the retry of the same run
    process_run(ledger, processor(ledger, ref), ref)
    assert status_of(ledger, got)[0] == "done"
    assert stock("BRG-0006") == before + 3  # settled by the look-up, not sent again
    assert iseller_transfers("ACC-RI-RI.PO.0003") == {}
    made = iseller_transfers("ACC-PO-PO.IT.0003")
    assert list(made) == ["ACC-PO-PO.IT.0003"] and made["ACC-PO-PO.IT.0003"]["status"] == "completed"


def test_store_without_pending_transfers_fails_the_order_and_receipts_still_arrive_once(sandboxes, ledger):  # noqa: F811 - fixtures
    import httpx

    from include.iseller_accurate.pipeline import SyncFailed as WebhookEventsFailed

    _, iseller_url = sandboxes
    httpx.post(f"{iseller_url}/_sandbox/pending-transfers", json={"enabled": False}).raise_for_status()
    order = purchase_order("PO.IT.0004", [("BRG-0007", 2)])
    ev = po_event(order)
    store(ledger, ev)
    with pytest.raises(WebhookEventsFailed):
        process(ledger, "po-refused")
    status, reason = status_of(ledger, ev)
    assert status == "failed"
    assert "iSeller refused pending transfer ACC-PO-PO.IT.0004" in (reason or "")
    assert "status must be 'completed'" in (reason or "")
    assert iseller_transfers("ACC-PO-PO.IT.0004") == {}
    before = stock("BRG-0007")
    receipt = receive_item("RI.PO.0004", [("BRG-0007", 2)], purchaseOrderNumber=order["number"])
    got = ri_event(receipt)
    store(ledger, got)
    process(ledger, "ri-plain")
    status, reason = status_of(ledger, got)
    assert status == "done" and "received as a plain receipt" in (reason or "")
    (plain,) = iseller_transfers("ACC-RI-RI.PO.0004").values()
    assert plain["status"] == "completed" and quantities(plain) == {"BRG-0007": Decimal(2)}
    assert stock("BRG-0007") == before + 2


def test_refused_completion_fails_the_receipt_and_the_refresh_completes_it_once(sandboxes, ledger):  # noqa: F811 - fixtures
    import httpx

    from include.iseller_accurate.pipeline import SyncFailed as WebhookEventsFailed

    _, iseller_url = sandboxes
    order = purchase_order("PO.IT.0005", [("BRG-0008", 5)])
    store(ledger, po_event(order))
    process(ledger, "po-5")
    before = stock("BRG-0008")
    httpx.post(f"{iseller_url}/_sandbox/pending-transfers", json={"enabled": False}).raise_for_status()
    receipt = receive_item("RI.PO.0005", [("BRG-0008", 2)], purchaseOrderNumber=order["number"])
    got = ri_event(receipt)
    store(ledger, got)
    with pytest.raises(WebhookEventsFailed):
        process(ledger, "ri-refused")
    status, reason = status_of(ledger, got)
    assert status == "failed"
    assert "iSeller refused to mark ACC-PO-PO.IT.0005 completed" in (reason or "")
    assert stock("BRG-0008") == before and iseller_transfers("ACC-RI-RI.PO.0005") == {}
    httpx.post(f"{iseller_url}/_sandbox/pending-transfers", json={"enabled": True}).raise_for_status()
    ref = run("ri-refused", try_number=2)  # the refresh (clear) of the failed task
    process_run(ledger, processor(ledger, ref), ref)
    assert status_of(ledger, got)[0] == "done"
    assert stock("BRG-0008") == before + 2
    made = iseller_transfers("ACC-PO-PO.IT.0005")
    assert made["ACC-PO-PO.IT.0005"]["status"] == "completed"
    assert quantities(made["ACC-PO-PO.IT.0005-2"]) == {"BRG-0008": Decimal(3)}
    assert iseller_transfers("ACC-RI-RI.PO.0005") == {}


def test_order_and_its_receipt_for_an_unmapped_warehouse_fail_visibly_and_send_nothing(sandboxes, ledger):  # noqa: F811 - fixtures
    """A purchase order whose warehouse maps to no iSeller outlet is not lost silently: its event (and
    that of the receive item referencing it) is ``failed`` with the reason, the same convention as a
    receive item of an unmapped warehouse, and iSeller gets nothing."""
    shop = SHOP.settings()
    settings = parse_settings(
        {**shop, "outlets": {k: v for k, v in shop["outlets"].items() if v["warehouse"] != "Gudang Pusat"}}
    )
    order = purchase_order(
        "PO.IT.0100", [("BRG-0001", 3)], branchName="Kantor Pusat", warehouseName="Gudang Pusat"
    )
    unmapped = "warehouse 'Gudang Pusat' is not mapped to an iSeller outlet"

    def fails_alone(event: dict[str, Any], run_name: str) -> str:
        """Store ``event``, process it: the run fails, the event is ``failed``; returns its reason."""
        store(ledger, event)
        ref = run(run_name)
        with pytest.raises(SyncFailed):
            process_run(ledger, WebhookProcessor(ledger, AccurateHook(), IsellerHook(), settings, ref), ref)
        status, reason = status_of(ledger, event)
        assert status == "failed"
        assert unmapped in (reason or "")
        return reason or ""

    ev = po_event(order)
    assert order["number"] in fails_alone(ev, "po-unmapped")
    assert iseller_transfers("ACC-PO-PO.IT.0100") == {}

    receipt = receive_item(
        "RI.PO.0100",
        [("BRG-0001", 3)],
        warehouse="Gudang Pusat",
        branch="Kantor Pusat",
        purchaseOrderNumber=order["number"],
    )
    fails_alone(ri_event(receipt), "ri-unmapped")
    assert iseller_transfers("ACC-PO-PO.IT.0100") == {}
    assert iseller_transfers("ACC-RI-RI.PO.0100") == {}
    assert status_of(ledger, ev)[0] == "failed"  # the order's event is not settled by its receipt
