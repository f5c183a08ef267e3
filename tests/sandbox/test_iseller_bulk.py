"""iSeller sandbox contract: generating 10,000 orders fast and paging through them quickly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from sandbox.demo_shop import build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerApi

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

ORDERS = "/api/v2/GetOrders"


def test_ten_thousand_orders_are_generated_and_paged_quickly(iseller_fresh: IsellerApi) -> None:
    api = iseller_fresh
    started = time.perf_counter()
    bulk = api.control("POST", "/_sandbox/orders/bulk", json={"count": 10_000})
    generated = time.perf_counter() - started
    assert bulk["created"] == 10_000
    assert bulk["total_orders"] == 10_090
    assert generated < 5, f"bulk generation took {generated:.1f}s"

    started = time.perf_counter()
    ids: list[str] = []
    page = 1
    slowest = 0.0
    while True:
        page_started = time.perf_counter()
        body = api.call(ORDERS, page=page, page_size=200, includes="OrderDetails,Transactions")
        slowest = max(slowest, time.perf_counter() - page_started)
        assert body["status"] is True
        assert body["count"] == 10_090
        ids += [o["order_id"] for o in body["orders"]]
        if not body["has_next_item"]:
            break
        page += 1
    elapsed = time.perf_counter() - started
    assert page == 51
    assert len(body["orders"]) == 10_090 - 50 * 200
    assert len(ids) == len(set(ids)) == 10_090
    assert slowest < 1.0, f"slowest page {slowest:.2f}s"
    assert elapsed < 20, f"paging took {elapsed:.1f}s"

    # A deep page of a filtered, date-bounded, descending read is quick too.
    outlet_id = build_demo_shop(42).outlets[0].outlet_id
    started = time.perf_counter()
    deep = api.call(
        ORDERS,
        page=10,
        page_size=200,
        outlet_id=outlet_id,
        sort="ModifiedDate",
        sort_direction="desc",
        created_after=bulk["first_order_date"],
    )
    assert time.perf_counter() - started < 1.0
    assert deep["status"] is True
    assert all(o["outlet_id"] == outlet_id for o in deep["orders"])
    assert deep["count"] > 2000


def test_bulk_orders_spread_over_a_window(iseller_fresh: IsellerApi) -> None:
    api = iseller_fresh
    bulk = api.control(
        "POST",
        "/_sandbox/orders/bulk",
        json={
            "count": 500,
            "start_date": "2026-11-22T01:00:00",
            "end_date": "2026-11-22T14:00:00",
            "include_ids": True,
        },
    )
    assert bulk["first_order_date"] == "2026-11-22T01:00:00"
    assert bulk["last_order_date"] == "2026-11-22T14:00:00"
    window = api.all_pages(
        ORDERS, "orders", created_after="2026-11-22T00:00:00", created_before="2026-11-23T00:00:00"
    )
    assert {o["order_id"] for o in window} == set(bulk["order_ids"])
    for order in window:
        sold = sum(line["quantity"] for line in order["order_details"])
        assert sold >= 1
        assert all(line["sku"] for line in order["order_details"])
        assert order["payment_status"] == "paid"
        assert order["transactions"][0]["amount"] == order["total_amount"]
        assert datetime.fromisoformat(order["order_date"]).replace(tzinfo=UTC).day == 22

    outlet = build_demo_shop(42).outlets[1]
    one_outlet = api.control(
        "POST",
        "/_sandbox/orders/bulk",
        json={"count": 50, "outlet_id": outlet.outlet_id, "include_ids": True},
    )
    for order_id in one_outlet["order_ids"]:
        [order] = api.call(ORDERS, order_id=order_id)["orders"]
        assert order["outlet_code"] == outlet.outlet_code
    for bad in (
        {"count": 0},
        {"count": "many"},
        {"count": 5, "outlet_id": "nowhere"},
        {"count": 5, "start_date": "2026-11-22T01:00:00"},
    ):
        assert api.control("POST", "/_sandbox/orders/bulk", expect=400, json=bad)["status"] is False
