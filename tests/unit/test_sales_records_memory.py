"""The sales extract holds a whole window of orders: repeated values are held once (issue 13).

Parsed from JSON, every order had its own copy of its status, outlet, product names, prices and
quantities (about 6 KiB an order; at 100,000 orders the records alone took about 840 MiB). Reading
the pages now shares equal texts and decimals between orders, without changing any value read.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from include.iseller_accurate.clients._transport import load_json
from include.iseller_accurate.streams import sales_orders
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.sales_orders import share_values


def parsed_page(orders: list[dict[str, Any]], refunds: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """A page as the iSeller client hands it over: parsed from JSON, decimals as ``Decimal``."""
    return load_json(json.dumps({"orders": orders, "refunded_orders": list(refunds)}).encode())


def sandbox_order(n: int) -> dict[str, Any]:
    return {
        "order_id": f"order-{n}",
        "status": "completed",
        "outlet_name": "Toko Kemang",
        "total_amount": 15000.0,
        "order_details": [
            {"order_detail_id": f"l-{n}", "product_name": "Gula Aren", "quantity": 1.0, "base_price": 15000.0}
        ],
    }


def test_orders_of_a_window_share_their_repeated_values_and_read_the_same():
    pages = [parsed_page([sandbox_order(1), sandbox_order(2)]), parsed_page([sandbox_order(3)])]
    expected = [parsed_page([sandbox_order(n)])["orders"][0] for n in (1, 2, 3)]
    records = SalesStream().group_orders(pages)
    assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in records] == expected
    first, second, third = records
    assert first["status"] is second["status"] is third["status"]  # across pages too
    assert first["order_details"][0]["product_name"] is third["order_details"][0]["product_name"]
    assert first["total_amount"] is third["total_amount"] is first["order_details"][0]["base_price"]
    assert first["order_id"] == "order-1" and third["order_id"] == "order-3"


def test_a_decimal_is_shared_only_with_one_written_the_same_way():
    shared: dict[Any, Any] = {}
    one, one_point_zero = Decimal("1"), Decimal("1.0")
    a = share_values({"quantity": one}, shared)
    b = share_values({"quantity": Decimal("1.0"), "other": Decimal("1")}, shared)
    assert str(b["quantity"]) == "1.0" and b["quantity"] is not one
    assert b["other"] is one and a["quantity"] is one and str(one_point_zero) == "1.0"


def test_a_record_nested_thousands_deep_is_walked_without_recursion():
    deep: Any = "bottom"
    for _ in range(50_000):
        deep = {"next": [deep]}
    record = {"order_id": "order-1", "notes": deep}
    assert share_values(record, {}) is record


def test_the_table_of_shared_values_starts_afresh_when_full(monkeypatch):
    monkeypatch.setattr(sales_orders, "SHARED_VALUES", 3)
    shared: dict[Any, Any] = {}
    share_values({"a": "1", "b": "2", "c": "3", "d": "4"}, shared)
    assert len(shared) == 4
    share_values({"a": "5"}, shared)
    assert list(shared) == ["5"]
