"""iSeller sandbox contract: every read method, its filters, paging, errors and JSON shapes.

The server is only read here, so the expected values come straight from the seeded demo shop.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.demo_shop import DemoShop, build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerApi

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

ISO_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
ORDER_FIELDS = {
    "order_id",
    "order_reference",
    "channel",
    "order_date",
    "closed_date",
    "cancel_date",
    "status",
    "payment_status",
    "outlet_id",
    "outlet_name",
    "outlet_code",
    "register_id",
    "register_name",
    "customer_id",
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "customer_phone_number",
    "external_customer_id",
    "currency",
    "subtotal",
    "total_discount_amount",
    "total_tax_amount",
    "rounding_amount",
    "total_amount",
    "tax_inclusive",
    "time_zone",
    "modified_date",
    # the public doc's fields (issue 11)
    "total_order_amount",
    "total_promotion_amount",
    "fulfillment_status",
    "cashier_id",
    "notes",
}
LINE_FIELDS = {
    "order_detail_id",
    "product_id",
    "product_name",
    "product_variant_id",
    "sku",
    "quantity",
    "base_price",
    "discount_amount",
    "discount_percentage",
    "tax_percentage",
    "tax_amount",
    "type",
    "subtotal",
    "discount_order_amount",
}
TRANSACTION_FIELDS = {
    "transaction_id",
    "transaction_date",
    "type",
    "status",
    "gateway",
    "payment_type_name",
    "amount",
}
ORDERS = "/api/v2/GetOrders"


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    """The seeded demo shop the server was built from."""
    return build_demo_shop(42)


def iso(value: datetime) -> str:
    """A UTC datetime as iSeller writes it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse(text: str) -> datetime:
    """An iSeller date (UTC, no offset) as an aware datetime."""
    assert ISO_NO_OFFSET.match(text), text
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- GetOrders
def test_orders_shape_dates_and_values_match_the_seed(iseller_api: IsellerApi, shop: DemoShop) -> None:
    orders = iseller_api.all_pages(ORDERS, "orders")
    assert len(orders) == len(shop.orders) == 90
    by_id = {o.order_id: o for o in shop.orders}
    customers = {c.customer_id: c for c in shop.customers}
    for order in orders:
        assert set(order) == ORDER_FIELDS | {"order_details", "transactions"}
        for name in ("order_date", "closed_date", "modified_date"):
            parse(order[name])
        seeded = by_id[order["order_id"]]
        assert order["order_reference"] == seeded.order_reference
        assert parse(order["order_date"]) == seeded.order_date
        assert order["total_amount"] == seeded.total_amount
        assert order["subtotal"] == seeded.subtotal
        assert order["tax_inclusive"] is seeded.tax_inclusive
        assert order["time_zone"] == 7
        assert order["currency"] == "IDR"
        outlet = shop.outlet(seeded.outlet_id)
        assert (order["outlet_code"], order["outlet_name"]) == (outlet.outlet_code, outlet.name)
        customer = customers.get(seeded.customer_id or "")
        assert order["external_customer_id"] == (customer.customer_number if customer else None)
        for line, seeded_line in zip(order["order_details"], seeded.lines, strict=True):
            assert set(line) == LINE_FIELDS
            assert line["sku"] == seeded_line.sku
            assert Decimal(line["base_price"]) == seeded_line.base_price
            assert Decimal(line["tax_amount"]) == seeded_line.tax_amount
        for payment in order["transactions"]:
            assert set(payment) == TRANSACTION_FIELDS
            parse(payment["transaction_date"])
    # Customers with and without an ID number both appear.
    external = {o["external_customer_id"] for o in orders if o["customer_id"]}
    assert None in external
    assert any(e for e in external)
    # Ascending by order date by default.
    dates = [o["order_date"] for o in orders]
    assert dates == sorted(dates)


def test_money_is_written_exactly(iseller_api: IsellerApi) -> None:
    response = iseller_api.raw(ORDERS, page_size=5)
    assert response.status_code == 200
    # Two decimals kept as written (a float round trip would print 65000.0 or lose digits).
    assert re.search(r'"total_amount":\d+\.\d{2}[,}]', response.text)
    assert re.search(r'"base_price":\d+\.\d{2}[,}]', response.text)
    assert '"rounding_amount":0.00' in response.text


def test_orders_created_window_is_inclusive_after_exclusive_before(
    iseller_api: IsellerApi, shop: DemoShop
) -> None:
    start = datetime(2026, 11, 17, tzinfo=UTC)
    end = datetime(2026, 11, 18, tzinfo=UTC)
    expected = {o.order_id for o in shop.orders if start <= o.order_date < end}
    found = iseller_api.all_pages(
        ORDERS, "orders", page_size=7, created_after=iso(start), created_before=iso(end)
    )
    assert {o["order_id"] for o in found} == expected
    # An exact bound: the first order's own date includes it as "after" and excludes it as "before".
    first = min(shop.orders, key=lambda o: o.order_date)
    at = iso(first.order_date)
    assert first.order_id in {o["order_id"] for o in iseller_api.call(ORDERS, created_after=at)["orders"]}
    assert first.order_id not in {
        o["order_id"] for o in iseller_api.call(ORDERS, created_before=at)["orders"]
    }


def test_orders_dates_with_offset_are_converted_to_utc(iseller_api: IsellerApi, shop: DemoShop) -> None:
    # 2026-11-17T07:00:00+07:00 is 2026-11-17T00:00:00 UTC.
    with_offset = iseller_api.call(
        ORDERS,
        created_after="2026-11-17T07:00:00+07:00",
        created_before="2026-11-18T07:00:00+07:00",
        page_size=200,
    )
    plain = iseller_api.call(
        ORDERS, created_after="2026-11-17T00:00:00", created_before="2026-11-18T00:00:00", page_size=200
    )
    assert with_offset["orders"] == plain["orders"]
    assert with_offset["count"] == plain["count"] > 0


def test_orders_paging_to_the_last_page(iseller_api: IsellerApi) -> None:
    seen: list[str] = []
    for page in range(1, 14):
        body = iseller_api.call(ORDERS, page=page, page_size=7)
        assert body["status"] is True
        assert body["count"] == 90
        seen += [o["order_id"] for o in body["orders"]]
        assert body["has_next_item"] is (page < 13)
    assert len(seen) == len(set(seen)) == 90
    last = iseller_api.call(ORDERS, page=13, page_size=7)
    assert len(last["orders"]) == 90 - 12 * 7
    beyond = iseller_api.call(ORDERS, page=14, page_size=7)
    assert beyond["orders"] == []
    assert beyond["has_next_item"] is False


def test_orders_sort_by_modified_date_descending(iseller_api: IsellerApi, shop: DemoShop) -> None:
    refunded = next(o for o in shop.orders if o.refund)
    body = iseller_api.call(ORDERS, sort="ModifiedDate", sort_direction="desc", page_size=200)
    modified = [o["modified_date"] for o in body["orders"]]
    assert modified == sorted(modified, reverse=True)
    assert refunded.refund is not None
    served = next(o for o in body["orders"] if o["order_id"] == refunded.order_id)
    assert parse(served["modified_date"]) == refunded.refund.refund_date  # a refund changes the order
    ascending = iseller_api.call(ORDERS, sort="ModifiedDate", page_size=200)["orders"]
    assert [o["order_id"] for o in ascending] == [o["order_id"] for o in reversed(body["orders"])]


def test_orders_modified_window_and_refunded_orders(iseller_api: IsellerApi, shop: DemoShop) -> None:
    refunded = next(o for o in shop.orders if o.refund)
    assert refunded.refund is not None
    refund_day = refunded.refund.refund_date.replace(hour=0, minute=0, second=0)
    body = iseller_api.call(
        ORDERS,
        modified_after=iso(refund_day),
        modified_before=iso(refund_day + timedelta(days=1)),
        page_size=200,
    )
    assert refunded.order_id in {o["order_id"] for o in body["orders"]}
    assert all(
        refund_day <= parse(o["modified_date"]) < refund_day + timedelta(days=1) for o in body["orders"]
    )
    [entry] = body["refunded_orders"]
    assert entry["order_id"] == refunded.order_id
    assert parse(entry["refund_date"]) == refunded.refund.refund_date
    assert entry["refund_amount"] == refunded.refund.refund_amount
    [returned] = entry["refund_details"]
    assert returned["sku"] == refunded.refund.lines[0].sku
    assert returned["quantity"] == refunded.refund.lines[0].quantity
    assert entry["payment_status"] == refunded.payment_status
    assert [t["type"] for t in entry["transactions"]] == ["sale", "refund"]
    # A window without the refund date has no refunded orders.
    before = iseller_api.call(ORDERS, created_before=iso(refunded.order_date), page_size=200)
    assert before["refunded_orders"] == []


@pytest.mark.parametrize("field", ["outlet_id", "register_id", "customer_id"])
def test_orders_filter_by_id(iseller_api: IsellerApi, shop: DemoShop, field: str) -> None:
    value = next(getattr(o, field) for o in shop.orders if getattr(o, field))
    expected = {o.order_id for o in shop.orders if getattr(o, field) == value}
    found = iseller_api.all_pages(ORDERS, "orders", page_size=5, **{field: value})
    assert {o["order_id"] for o in found} == expected
    assert all(o[field] == value for o in found)


def test_orders_filter_by_order_id_and_statuses(iseller_api: IsellerApi, shop: DemoShop) -> None:
    target = shop.orders[10]
    [order] = iseller_api.call(ORDERS, order_id=target.order_id)["orders"]
    assert order["order_reference"] == target.order_reference
    assert iseller_api.call(ORDERS, order_id="00000000-0000-4000-8000-000000000000")["orders"] == []

    voided = next(o for o in shop.orders if o.status == "void")
    [void] = iseller_api.call(ORDERS, status="void")["orders"]
    assert void["order_id"] == voided.order_id
    assert void["cancel_date"] is not None
    assert [t["type"] for t in void["transactions"]] == ["sale", "void"]
    assert (
        iseller_api.call(ORDERS, fulfillment_status="cancelled")["orders"][0]["order_id"] == voided.order_id
    )
    assert iseller_api.call(ORDERS, status="completed", page_size=200)["count"] == 89
    partially = iseller_api.call(ORDERS, payment_status="partially_refunded")["orders"]
    refunded = iseller_api.call(ORDERS, payment_status="refunded")["orders"]
    assert {o["order_id"] for o in partially + refunded} == {
        o.order_id for o in shop.orders if o.payment_status in ("refunded", "partially_refunded")
    }


def test_the_seeded_sale_partly_handed_over_is_answered_and_filtered_as_partial(
    iseller_api: IsellerApi, shop: DemoShop
) -> None:
    [partly] = [o for o in shop.orders if o.fulfillment == "partial"]
    assert partly.status == "completed" and len(partly.lines) > 1
    [answered] = iseller_api.call(ORDERS, order_id=partly.order_id)["orders"]
    assert answered["fulfillment_status"] == "partial" and answered["status"] == "completed"
    [found] = iseller_api.call(ORDERS, fulfillment_status="partial", page_size=200)["orders"]
    assert found["order_id"] == partly.order_id
    fulfilled = iseller_api.call(ORDERS, fulfillment_status="fulfilled", page_size=200)["orders"]
    assert partly.order_id not in {o["order_id"] for o in fulfilled}
    assert all(o["fulfillment_status"] == "fulfilled" for o in fulfilled)
    completed = iseller_api.call(ORDERS, status="completed", page_size=200)["orders"]
    assert len(fulfilled) == len(completed) - 1  # every other completed sale is fulfilled


def test_orders_includes_limits_nested_lists(iseller_api: IsellerApi) -> None:
    only_payments = iseller_api.call(ORDERS, includes="Transactions", page_size=3)["orders"]
    assert all("transactions" in o and "order_details" not in o for o in only_payments)
    both = iseller_api.call(ORDERS, includes=["OrderDetails", "Transactions"], page_size=3)["orders"]
    assert all("transactions" in o and "order_details" in o for o in both)


def test_orders_answer_form_bodies_and_get_queries_alike(iseller_api: IsellerApi) -> None:
    params = {
        "created_after": "2026-11-18T00:00:00",
        "page": "2",
        "page_size": "5",
        "sort_direction": "desc",
        "time_zone": "0",  # required on GetOrders (public doc, the sandbox's default)
    }
    form = iseller_api.http.post(ORDERS, data=params, headers=iseller_api.headers)
    query = iseller_api.http.get(ORDERS, params=params, headers=iseller_api.headers)
    as_json = iseller_api.raw(ORDERS, **params)
    assert form.status_code == query.status_code == as_json.status_code == 200
    assert form.json() == query.json() == as_json.json()
    assert len(form.json()["orders"]) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"created_after": "yesterday"}, "created_after"),
        ({"modified_before": "2026-13-01"}, "modified_before"),
        ({"created_after": "2026-11-18", "created_before": "2026-11-17"}, "created_before"),
        ({"page_size": 201}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"page": 0}, "page"),
        ({"outlet_id": "no-such-outlet"}, "no-such-outlet"),
        ({"register_id": "no-such-register"}, "no-such-register"),
        ({"sort": "Total"}, "sort"),
        ({"sort_direction": "up"}, "sort_direction"),
        ({"status": "lost"}, "status"),
        ({"payment_status": "free"}, "payment_status"),
    ],
)
def test_orders_bad_parameters_are_status_false(
    iseller_api: IsellerApi, params: dict[str, Any], message: str
) -> None:
    body = iseller_api.call(ORDERS, **params)
    assert body["status"] is False
    assert message in body["error_message"]


# --------------------------------------------------------------------------- other methods
def test_register_shifts(iseller_api: IsellerApi, shop: DemoShop) -> None:
    shifts = iseller_api.all_pages("/api/v2/GetRegisterShifts", "register_shifts", page_size=4)
    assert len(shifts) == len(shop.shifts) == 30
    for shift in shifts:
        assert {
            "register_shift_id",
            "register_id",
            "register_name",
            "outlet_id",
            "open_date",
            "closed_date",
        } <= set(shift)
        assert parse(shift["open_date"]) < parse(shift["closed_date"])
    register = shop.registers[0]
    mine = iseller_api.call("/api/v2/GetRegisterShifts", register_id=register.register_id)["register_shifts"]
    assert len(mine) == 5
    assert {s["register_name"] for s in mine} == {register.register_name}
    outlet = iseller_api.call("/api/v2/GetRegisterShifts", outlet_id=register.outlet_id)["register_shifts"]
    assert len(outlet) == 10
    day = iseller_api.call(
        "/api/v2/GetRegisterShifts", created_after="2026-11-17T00:00:00", created_before="2026-11-18T00:00:00"
    )["register_shifts"]
    assert len(day) == 6
    closed = iseller_api.call("/api/v2/GetRegisterShifts", closed_after="2026-11-20T00:00:00")[
        "register_shifts"
    ]
    assert len(closed) == 6
    assert iseller_api.call("/api/v2/GetRegisterShifts", status="open")["register_shifts"] == []
    bad = iseller_api.call("/api/v2/GetRegisterShifts", register_id="nope")
    assert bad["status"] is False


def test_products(iseller_api: IsellerApi, shop: DemoShop) -> None:
    required = iseller_api.call("/api/v2/GetProducts")
    assert required["status"] is False
    assert "page" in required["error_message"]
    assert iseller_api.call("/api/v2/GetProducts", page=1)["status"] is False
    products = iseller_api.all_pages("/api/v2/GetProducts", "products", page_size=15)
    assert len(products) == 50
    for product in products:
        assert {
            "product_id",
            "name",
            "type",
            "sku",
            "barcode",
            "price",
            "unit_of_measurement",
            "buying_price",
            "inventories",
            "is_active",
            "modified_date",
        } <= set(product)
        parse(product["modified_date"])
        assert len(product["inventories"]) == 4
    no_sku = [p for p in products if p["sku"] == ""]
    assert len(no_sku) == 1
    assert all(i["unit_in_stock"] == 0 for i in no_sku[0]["inventories"])
    # Stock of a product never moved equals its opening stock.
    moved = (
        {line.sku for o in shop.orders for line in o.lines}
        | {line.sku for t in shop.transfers for line in t.lines}
        | {line.sku for t in shop.stock_takes for line in t.lines}
    )
    still = next(p for p in shop.products if p.sku and p.sku not in moved)
    served = next(p for p in products if p["sku"] == still.sku)
    for inventory in served["inventories"]:
        assert inventory["unit_in_stock"] == shop.opening_stock[(still.sku, inventory["outlet_id"])]
    tracked = iseller_api.call("/api/v2/GetProducts", page=1, page_size=200, track_inventory="true")
    assert tracked["count"] == 50
    untracked = iseller_api.call("/api/v2/GetProducts", page=1, page_size=200, track_inventory=False)
    assert untracked["count"] == 0
    later = iseller_api.call(
        "/api/v2/GetProducts", page=1, page_size=200, modified_after="2026-11-02T00:00:00"
    )
    assert later["products"] == []
    assert iseller_api.call("/api/v2/GetProducts", page=1, page_size=500)["status"] is False


def test_store_info_and_outlets(iseller_api: IsellerApi, shop: DemoShop) -> None:
    info = iseller_api.call("/api/v2/GetStoreInfo")
    assert info["status"] is True
    assert info["store_name"] == shop.store_name
    assert [o["outlet_id"] for o in info["active_outlets"]] == [o.outlet_id for o in shop.outlets]
    outlets = iseller_api.call("/api/v3/GetOutlets")
    assert outlets["has_next_item"] is False
    assert outlets["count"] == 4
    for served, seeded in zip(outlets["outlets"], shop.outlets, strict=True):
        assert served["id"] == seeded.outlet_id
        assert served["outlet_code"] == seeded.outlet_code
        assert served["name"] == seeded.name
        assert served["is_active"] is True
        assert served["is_warehouse"] is seeded.is_warehouse
    paged = iseller_api.call("/api/v3/GetOutlets", page=2, page_size=3)
    assert len(paged["outlets"]) == 1
    assert paged["has_next_item"] is False


def test_customers(iseller_api: IsellerApi, shop: DemoShop) -> None:
    customers = iseller_api.all_pages("/api/v3/GetCustomers", "customers", page_size=5)
    assert [c["customer_id"] for c in customers] == [c.customer_id for c in shop.customers]
    assert set(customers[0]) == {
        "customer_id",
        "customer_number",
        "first_name",
        "last_name",
        "email",
        "phone_number",
        "modified_date",
    }
    assert sum(1 for c in customers if c["customer_number"] is None) == 4
    one = iseller_api.call("/api/v3/GetCustomers", customer_number="CUST-00001")["customers"]
    assert one[0]["customer_id"] == shop.customers[0].customer_id
    assert iseller_api.call("/api/v3/GetCustomers", modified_after="2026-11-02")["customers"] == []


def test_transfers(iseller_api: IsellerApi, shop: DemoShop) -> None:
    transfers = iseller_api.all_pages("/api/v3/GetTransfers", "transfers", page_size=2)
    assert [t["transfer_number"] for t in transfers] == [t.transfer_number for t in shop.transfers]
    for served, seeded in zip(transfers, shop.transfers, strict=True):
        assert served["type"] == "outlet"
        assert served["from_outlet_id"] == seeded.from_outlet_id
        assert served["to_outlet_id"] == seeded.to_outlet_id
        assert served["status"] == seeded.status
        parse(served["sent_date"])
        assert [p["sku"] for p in served["products"]] == [line.sku for line in seeded.lines]
        assert [p["quantity"] for p in served["products"]] == [line.quantity for line in seeded.lines]
    in_transit = iseller_api.call("/api/v3/GetTransfers", status="sent")["transfers"]
    assert len(in_transit) == 1
    assert in_transit[0]["received_date"] is None
    assert all(p["received_quantity"] is None for p in in_transit[0]["products"])
    assert iseller_api.call("/api/v3/GetTransfers", type="outlet")["count"] == 3
    assert iseller_api.call("/api/v3/GetTransfers", type="in")["count"] == 0
    warehouse = next(o for o in shop.outlets if o.is_warehouse)
    assert iseller_api.call("/api/v3/GetTransfers", outlet_id=warehouse.outlet_id)["count"] == 2
    window = iseller_api.call(
        "/api/v3/GetTransfers", created_after="2026-11-19T00:00:00", created_before="2026-11-20T00:00:00"
    )["transfers"]
    assert [t["transfer_number"] for t in window] == [shop.transfers[1].transfer_number]
    assert iseller_api.call("/api/v3/GetTransfers", type="sideways")["status"] is False
    assert iseller_api.call("/api/v3/GetTransfers", reference_code="PO-NONE")["transfers"] == []


def test_stock_takes(iseller_api: IsellerApi, shop: DemoShop) -> None:
    body = iseller_api.call("/api/v3/GetStockTakes")
    assert body["has_next_item"] is False
    [take] = body["stock_takes"]
    seeded = shop.stock_takes[0]
    assert take["stock_take_number"] == seeded.stock_take_number
    assert take["outlet_id"] == seeded.outlet_id
    assert parse(take["stock_take_date"]) == seeded.stock_take_date
    assert take["status"] == "completed"
    assert [(x["sku"], x["system_quantity"], x["counted_quantity"]) for x in take["lines"]] == [
        (x.sku, x.system_quantity, x.counted_quantity) for x in seeded.lines
    ]
    other = next(o for o in shop.outlets if o.outlet_id != seeded.outlet_id)
    assert iseller_api.call("/api/v3/GetStockTakes", outlet_id=other.outlet_id)["stock_takes"] == []
    assert iseller_api.call("/api/v3/GetStockTakes", created_after="2026-11-21")["stock_takes"] == []
    assert iseller_api.call("/api/v3/GetStockTakes", created_after="2026-11-20")["count"] == 1
