"""Pure mapping of Accurate purchase orders to pending iSeller transfers (no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.iseller_accurate.purchases.mapping import (
    PURCHASE_ORDER,
    as_lines,
    by_outlet,
    describe,
    lines_map,
    open_quantities,
    order_closed,
    pending_payload,
    receipt_order_lines,
    receipt_split,
    reference_base,
    update_payload,
)
from include.iseller_accurate.purchases.orders import OrderTransfer

D = Decimal
WAREHOUSES = {"Gudang Kemang": ["out-kemang"], "Gudang Dua": ["a", "b"]}


@pytest.mark.parametrize(
    ("document", "closed"),
    [
        ({}, False),
        ({"manualClosed": False, "status": "OPEN"}, False),
        ({"manualClosed": True}, True),
        ({"manualClosed": "true"}, True),
        ({"closed": True}, True),
        ({"status": "CLOSED"}, True),
        ({"statusName": "Closed"}, True),
        ({"status": {"name": "closed"}}, True),
        ({"status": "PROCEED"}, False),
        ({"manualClosed": "yes please"}, False),
    ],
)
def test_order_closed_reads_every_known_shape(document, closed):
    assert order_closed(document) is closed


def test_open_quantities_never_below_zero_and_by_outlet():
    ordered = {("o", "A"): D(10), ("o", "B"): D(4), ("p", "A"): D(1)}
    received = {("o", "A"): D(6), ("o", "B"): D(5), ("q", "C"): D(2)}
    left = open_quantities(ordered, received)
    assert left == {("o", "A"): D(4), ("p", "A"): D(1)}
    assert by_outlet(left) == {"o": {"A": D(4)}, "p": {"A": D(1)}}


def test_receipt_lines_grouped_by_order_line_or_header():
    receipt = {
        "purchaseOrderNumber": "PO.1",
        "warehouseName": "Gudang Kemang",
        "detailItem": [
            {"itemNo": "A", "quantity": 2},
            {"itemNo": "A", "quantity": 1, "purchaseOrderNumber": "PO.1"},
            {"itemNo": "B", "quantity": 3, "purchaseOrder": {"number": "PO.2"}},
            {"itemNo": "C", "quantity": 5, "warehouseName": "Gudang Dua"},  # ambiguous: left out
            {"itemNo": "D", "quantity": 2, "unitRatio": 12},
        ],
    }
    assert receipt_order_lines(receipt, WAREHOUSES) == {
        "PO.1": {("out-kemang", "A"): D(3), ("out-kemang", "D"): D(24)},
        "PO.2": {("out-kemang", "B"): D(3)},
    }
    assert (
        receipt_order_lines(
            {"detailItem": [{"itemNo": "A", "quantity": 1, "warehouseName": "Gudang Kemang"}]}, WAREHOUSES
        )
        == {}
    )


def test_receipt_split_takes_what_the_pending_transfer_expects_in_any_quantity():
    received = {("o", "A"): D(12), ("o", "X"): D(1), ("p", "A"): D(2), ("o", "Z"): D(0)}
    pending = {"o": {"A": D(10), "B": D(3)}}
    assert receipt_split(received, pending) == {"o": {"A": D(12)}}
    assert receipt_split(received, {}) == {}


def test_payloads_pending_completed_cancelled():
    code = reference_base(PURCHASE_ORDER, "PO.2026.11.00001")
    assert code == "ACC-PO-PO.2026.11.00001"
    body = pending_payload(code, "JKT01", [{"sku": "A", "quantity": "2.5"}], "PT Kopi")
    assert body == {
        "outlet_code": "JKT01",
        "type": "in",
        "status": "pending",
        "reference_code": code,
        "products": [{"sku": "A", "quantity": D("2.5")}],
        "tags": ["accurate", "purchase-order"],
        "supplier_name": "PT Kopi",
    }
    assert "supplier_name" not in pending_payload(code, "JKT01", [], None)
    assert update_payload(code, "completed", [{"sku": "A", "quantity": 1}]) == {
        "reference_code": code,
        "status": "completed",
        "products": [{"sku": "A", "quantity": D(1)}],
    }
    assert update_payload(code, "cancelled") == {"reference_code": code, "status": "cancelled"}


def test_lines_helpers_and_description():
    assert lines_map(
        [{"sku": "B", "quantity": "1"}, {"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 0}]
    ) == {"B": D(3)}
    assert as_lines({"B": D(1), "A": D(2), "C": D(0)}) == [
        {"sku": "A", "quantity": D(2)},
        {"sku": "B", "quantity": D(1)},
    ]
    assert describe({"B": D("1.50"), "A": D("4.0")}) == "A x 4, B x 1.50"


def test_order_transfer_counts_what_arrived_only_when_completed():
    row = OrderTransfer(
        "ACC-PO-1", 1, "PO.1", "o", "JKT01", [{"sku": "A", "quantity": 5}], "created", "pending"
    )
    assert row.open and row.received == {}
    row.wanted_status, row.received_lines = "completed", [{"sku": "A", "quantity": 3}]
    assert not row.open and row.received == {("o", "A"): D(3)}  # being completed counts (never twice)
    row.iseller_status, row.wanted_status = "cancelled", None
    assert row.received == {}
