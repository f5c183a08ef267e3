"""iSeller sandbox contract: control routes (orders, refunds, voids, shifts, transfers, stock takes,
product patches, reset) and ``/api/v3/CreateTransfer``, seen through the API like a client sees them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.demo_shop import NO_SKU_PRODUCT_INDEX, DemoShop, build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerApi

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

ORDERS = "/api/v2/GetOrders"
ISO_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    """The seeded demo shop (seed 42)."""
    return build_demo_shop(42)


def parse(text: str) -> datetime:
    """An iSeller date (UTC, no offset) as an aware datetime."""
    assert ISO_NO_OFFSET.match(text), text
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def stock(api: IsellerApi, sku: str, outlet_id: str) -> Decimal:
    """Units in stock, read with GetProducts."""
    [product] = api.call("/api/v2/GetProducts", page=1, page_size=1, sku=sku)["products"]
    return next(Decimal(i["unit_in_stock"]) for i in product["inventories"] if i["outlet_id"] == outlet_id)


def new_order(api: IsellerApi, shop: DemoShop, register: int = 0, expect: int = 200, **fields: Any) -> Any:
    """Ring up an order on a seeded register through the control route."""
    reg = shop.registers[register]
    body = {
        "outlet_id": reg.outlet_id,
        "register_id": reg.register_id,
        "lines": [{"sku": "BRG-0001", "quantity": 2}],
        **fields,
    }
    return api.control("POST", "/_sandbox/orders", expect=expect, json=body)


# --------------------------------------------------------------------------- orders
def test_create_order_answers_it_as_get_orders_does(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    register = shop.registers[0]
    before = stock(api, "BRG-0001", register.outlet_id)
    customer = shop.customers[0]
    order = new_order(
        api,
        shop,
        customer_id=customer.customer_id,
        lines=[
            {"sku": "BRG-0001", "quantity": 2},
            {"sku": "BRG-0002", "quantity": 1, "discount_percentage": 10},
        ],
    )
    assert order["status"] == "completed"
    assert order["payment_status"] == "paid"
    assert order["channel"] == "pos"
    assert order["order_reference"] == f"#{shop.outlet(register.outlet_id).outlet_code}-1091"
    assert order["external_customer_id"] == customer.customer_number
    assert order["customer_first_name"] == customer.first_name
    for name in ("order_date", "closed_date", "modified_date"):
        assert abs(parse(order[name]) - datetime.now(UTC)) < timedelta(minutes=2)
    # Tax-inclusive by default: total = subtotal - discount; tax is inside.
    assert order["tax_inclusive"] is True
    assert order["subtotal"] == Decimal("175000.00")  # 2 x 65000 + 45000
    assert order["total_discount_amount"] == Decimal("4500.00")
    assert order["total_amount"] == Decimal("170500.00")
    [payment] = order["transactions"]
    assert (payment["type"], payment["gateway"], payment["amount"]) == ("sale", "cash", Decimal("170500.00"))
    [served] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert served == order
    assert stock(api, "BRG-0001", register.outlet_id) == before - 2


def test_order_money_stays_exact(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    order = new_order(
        api,
        shop,
        tax_inclusive=False,
        lines=[
            {"sku": "BRG-0001", "quantity": 1, "price": 0.10},
            {"sku": "BRG-0002", "quantity": 1, "price": 0.20},
            {"sku": "BRG-0003", "quantity": 3, "price": 33333.33},
        ],
    )
    # 0.10 + 0.20 is 0.30 exactly (a float sum would be 0.30000000000000004); 3 x 33333.33 = 99999.99.
    assert order["subtotal"] == Decimal("100000.29")
    taxes = [Decimal("0.01"), Decimal("0.02"), Decimal("11000.00")]
    assert [line["tax_amount"] for line in order["order_details"]] == taxes
    assert order["total_tax_amount"] == sum(taxes)
    assert order["total_amount"] == Decimal("100000.29") + sum(taxes)
    raw = api.raw(ORDERS, order_id=order["order_id"]).text
    assert '"subtotal":100000.29' in raw
    assert '"base_price":0.10' in raw
    assert '"total_amount":111000.32' in raw


def test_order_payments_dates_and_refusals(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    split = new_order(
        api,
        shop,
        payments=[{"gateway": "cash", "amount": 100000}, {"gateway": "external_debit", "amount": 30000}],
    )
    assert [(t["gateway"], t["amount"]) for t in split["transactions"]] == [
        ("cash", Decimal("100000.00")),
        ("external_debit", Decimal("30000.00")),
    ]
    assert split["payment_status"] == "paid"
    partial = new_order(api, shop, payments=[{"gateway": "cash", "amount": 1000}])
    assert partial["payment_status"] == "partially_paid"
    dated = new_order(api, shop, register=2, order_date="2026-11-21T09:30:00+07:00")
    assert dated["order_date"] == "2026-11-21T02:30:00"

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"lines": [{"sku": "NOPE-1", "quantity": 1}]}, "NOPE-1"),
        ({"lines": [{"sku": "", "quantity": 1}]}, "sku"),
        ({"lines": []}, "line"),
        ({"lines": [{"sku": "BRG-0001", "quantity": 0}]}, "quantity"),
        ({"customer_id": "nobody"}, "nobody"),
        ({"register_id": shop.registers[3].register_id}, "does not belong"),
        ({"payments": [{"gateway": "cash", "amount": 10**9}]}, "exceed"),
        ({"payments": [{"gateway": "barter", "amount": 1}]}, "barter"),
        ({"order_date": "someday"}, "order_date"),
    ]
    for fields, message in refusals:
        body = new_order(api, shop, expect=400, **fields)
        assert body["status"] is False
        assert message in body["error_message"]
    assert new_order(api, shop, expect=400, outlet_id="nowhere")["error_message"].endswith("nowhere")


def test_product_without_sku_is_sold_by_id_and_patching_the_sku_repairs_its_orders(
    iseller_fresh: IsellerApi, shop: DemoShop
) -> None:
    api = iseller_fresh
    no_sku = shop.products[NO_SKU_PRODUCT_INDEX]
    order = new_order(api, shop, lines=[{"product_id": no_sku.product_id, "quantity": 1}])
    assert order["order_details"][0]["sku"] == ""
    # A product without SKU cannot be addressed by CreateTransfer.
    outlet_code = shop.outlets[0].outlet_code
    refused = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet_code,
        type="in",
        status="completed",
        products=[{"sku": "", "quantity": 1}],
    )
    assert refused["status"] is False

    patched = api.control("PATCH", f"/_sandbox/products/{no_sku.product_id}", json={"sku": "BRG-0048"})
    assert patched["sku"] == "BRG-0048"
    assert abs(parse(patched["modified_date"]) - datetime.now(UTC)) < timedelta(minutes=2)
    [repaired] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert repaired["order_details"][0]["sku"] == "BRG-0048"
    assert api.call("/api/v2/GetProducts", page=1, page_size=5, sku="BRG-0048")["count"] == 1
    changed = api.call("/api/v2/GetProducts", page=1, page_size=50, modified_after=patched["modified_date"])
    assert [p["product_id"] for p in changed["products"]] == [no_sku.product_id]
    accepted = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet_code,
        type="in",
        status="completed",
        products=[{"sku": "BRG-0048", "quantity": 4}],
    )
    assert accepted["status"] is True

    duplicate = api.control(
        "PATCH", f"/_sandbox/products/{shop.products[0].product_id}", expect=409, json={"sku": "BRG-0048"}
    )
    assert "BRG-0048" in duplicate["error_message"]
    api.control("PATCH", "/_sandbox/products/nope", expect=404, json={"sku": "X"})
    api.control("PATCH", f"/_sandbox/products/{no_sku.product_id}", expect=400, json={"colour": "red"})
    price = api.control("PATCH", f"/_sandbox/products/{no_sku.product_id}", json={"price": "7600.50"})
    assert price["price"] == Decimal("7600.50")


def test_raw_values_make_an_order_hostile_as_get_orders_shows_it(
    iseller_fresh: IsellerApi, shop: DemoShop
) -> None:
    api = iseller_fresh
    order = new_order(api, shop)
    hostile = {"order_date": "31/02/2026", "order_details.0.quantity": "abc", "total_amount": "NaN"}
    answer = api.control("POST", f"/_sandbox/orders/{order['order_id']}/raw", json={"set": hostile})
    assert answer["order_date"] == "31/02/2026" and answer["order_details"][0]["quantity"] == "abc"
    [served] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert (served["order_date"], served["order_details"][0]["quantity"], served["total_amount"]) == (
        "31/02/2026", "abc", "NaN"
    )
    assert served["order_details"][0]["sku"] == "BRG-0001"  # the rest is as it was
    api.control("POST", f"/_sandbox/orders/{order['order_id']}/raw", json={"set": {}})
    [cleared] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert cleared["order_date"] == order["order_date"]
    api.control("POST", f"/_sandbox/orders/{order['order_id']}/raw", expect=400, json={"set": {"a.b": 1}})
    api.control("POST", f"/_sandbox/orders/{order['order_id']}/raw", expect=400, json={"set": [1]})
    api.control("POST", "/_sandbox/orders/nope/raw", expect=404, json={"set": {}})


def test_reported_total_order_amount_can_disagree_with_the_lines_and_be_cleared(
    iseller_fresh: IsellerApi, shop: DemoShop
) -> None:
    api = iseller_fresh
    order = new_order(api, shop)
    other = new_order(api, shop)
    route = f"/_sandbox/orders/{order['order_id']}/total-order-amount"
    assert order["total_order_amount"] == order["total_amount"]
    answer = api.control("POST", route, json={"total_order_amount": "150001.50"})
    assert answer["total_order_amount"] == Decimal("150001.50")
    [served] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert served["total_order_amount"] == Decimal("150001.50")
    assert '"total_order_amount":150001.50' in api.raw(ORDERS, order_id=order["order_id"]).text  # exact
    # Everything else is as it was, and only this order reports another total.
    assert served["total_amount"] == order["total_amount"]
    assert served["modified_date"] == order["modified_date"]
    assert served["order_details"] == order["order_details"]
    [untouched] = api.call(ORDERS, order_id=other["order_id"])["orders"]
    assert untouched["total_order_amount"] == untouched["total_amount"]
    # Refusals name the problem and change nothing.
    for bad in ("abc", "NaN", "Infinity", "-1", "1.001", "1e30", "", True, 1.001, [1], {"a": 1}):
        refused = api.control("POST", route, expect=400, json={"total_order_amount": bad})
        assert refused["status"] is False and "total_order_amount" in refused["error_message"]
    assert api.control("POST", route, expect=400, json={})["status"] is False
    [still] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert still["total_order_amount"] == Decimal("150001.50")
    # null clears it; an unknown order is 404; reset clears every reported total.
    cleared = api.control("POST", route, json={"total_order_amount": None})
    assert cleared["total_order_amount"] == order["total_amount"]
    missing = "/_sandbox/orders/nope/total-order-amount"
    api.control("POST", missing, expect=404, json={"total_order_amount": "1"})
    api.control("POST", route, json={"total_order_amount": 7})
    api.control("POST", "/_sandbox/reset", json={"seed": 42})
    assert api.call(ORDERS, order_id=order["order_id"])["orders"] == []


def test_customer_patch_changes_the_id_number_orders_show(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    nameless = next(c for c in shop.customers if c.customer_number is None)
    order = new_order(api, shop, customer_id=nameless.customer_id)
    assert order["external_customer_id"] is None
    api.control(
        "PATCH", f"/_sandbox/customers/{nameless.customer_id}", json={"customer_number": "CUST-00099"}
    )
    [served] = api.call(ORDERS, order_id=order["order_id"])["orders"]
    assert served["external_customer_id"] == "CUST-00099"
    [customer] = api.call("/api/v3/GetCustomers", customer_id=nameless.customer_id)["customers"]
    assert customer["customer_number"] == "CUST-00099"


def test_refund_and_void(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    outlet_id = shop.registers[0].outlet_id
    order = new_order(
        api,
        shop,
        tax_inclusive=False,
        lines=[{"sku": "BRG-0001", "quantity": 3}, {"sku": "BRG-0002", "quantity": 1}],
    )
    after_sale = stock(api, "BRG-0001", outlet_id)
    refund = api.control(
        "POST",
        f"/_sandbox/orders/{order['order_id']}/refund",
        json={"lines": [{"sku": "BRG-0001", "quantity": 1}]},
    )
    assert refund["payment_status"] == "partially_refunded"
    assert refund["refund_amount"] == Decimal("72150.00")  # 65000 + 11% tax
    assert [(r["sku"], r["quantity"]) for r in refund["refund_details"]] == [("BRG-0001", 1)]
    assert stock(api, "BRG-0001", outlet_id) == after_sale + 1
    window = {"modified_after": refund["refund_date"]}
    seen = api.call(ORDERS, **window)
    assert [r["order_id"] for r in seen["refunded_orders"]] == [order["order_id"]]
    assert seen["orders"][0]["transactions"][-1]["type"] == "refund"

    too_much = api.control(
        "POST",
        f"/_sandbox/orders/{order['order_id']}/refund",
        expect=400,
        json={"lines": [{"sku": "BRG-0001", "quantity": 5}]},
    )
    assert "only 2" in too_much["error_message"]
    api.control(
        "POST",
        f"/_sandbox/orders/{order['order_id']}/refund",
        expect=400,
        json={"lines": [{"sku": "BRG-0009", "quantity": 1}]},
    )
    rest = api.control("POST", f"/_sandbox/orders/{order['order_id']}/refund", json={})
    assert rest["payment_status"] == "refunded"
    assert api.call(ORDERS, order_id=order["order_id"])["orders"][0]["payment_status"] == "refunded"
    assert api.call(ORDERS, **window)["refunded_count"] == 2

    to_void = new_order(api, shop)
    voided = api.control("POST", f"/_sandbox/orders/{to_void['order_id']}/void")
    assert voided["status"] == "void"
    assert voided["payment_status"] == "refunded"
    assert voided["cancel_date"] is not None
    assert [(t["type"], t["amount"]) for t in voided["transactions"]] == [
        ("sale", to_void["total_amount"]),
        ("void", to_void["total_amount"]),
    ]
    assert stock(api, "BRG-0001", outlet_id) == after_sale + 3  # 3 refunded, then 2 sold and voided
    api.control("POST", f"/_sandbox/orders/{to_void['order_id']}/void", expect=400)
    api.control("POST", f"/_sandbox/orders/{to_void['order_id']}/refund", expect=400)
    api.control("POST", "/_sandbox/orders/nope/void", expect=404)


# --------------------------------------------------------------------------- shifts
def test_shift_opens_with_the_first_order_and_close_answers_it(
    iseller_fresh: IsellerApi, shop: DemoShop
) -> None:
    api = iseller_fresh
    register = shop.registers[1]
    order = new_order(api, shop, register=1)
    [open_shift] = api.call("/api/v2/GetRegisterShifts", register_id=register.register_id, status="open")[
        "register_shifts"
    ]
    assert open_shift["closed_date"] is None
    assert open_shift["open_date"] == order["order_date"]
    second = new_order(api, shop, register=1)

    closed = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    assert closed["register_shift_id"] == open_shift["register_shift_id"]
    assert closed["register_id"] == register.register_id
    assert closed["outlet_id"] == register.outlet_id
    assert closed["closed_date"] >= second["order_date"]
    assert closed["hook"] is None
    # The shift's orders: its register's orders between open and close (both inclusive).
    end = (parse(closed["closed_date"]) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    in_shift = api.call(
        ORDERS, register_id=register.register_id, created_after=closed["open_date"], created_before=end
    )["orders"]
    assert [o["order_id"] for o in in_shift] == [order["order_id"], second["order_id"]]
    assert (
        api.call("/api/v2/GetRegisterShifts", register_id=register.register_id, status="open")[
            "register_shifts"
        ]
        == []
    )

    # The next order opens a new shift after the close, so no order belongs to two shifts.
    third = new_order(api, shop, register=1)
    assert third["order_date"] > closed["closed_date"]
    [reopened] = api.call("/api/v2/GetRegisterShifts", register_id=register.register_id, status="open")[
        "register_shifts"
    ]
    assert reopened["register_shift_id"] != closed["register_shift_id"]
    api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")

    # Closing with no open shift opens and closes an empty one.
    empty = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    assert empty["open_date"] <= empty["closed_date"]
    assert api.call("/api/v2/GetRegisterShifts", register_id=register.register_id)["count"] == 5 + 3
    api.control("POST", "/_sandbox/registers/nope/close-shift", expect=404)


# --------------------------------------------------------------------------- transfers, stock takes
def test_outlet_transfer_send_and_partial_receive(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    warehouse = next(o for o in shop.outlets if o.is_warehouse)
    kemang = shop.outlets[0]
    wh_before, kemang_before = (
        stock(api, "BRG-0005", warehouse.outlet_id),
        stock(api, "BRG-0005", kemang.outlet_id),
    )
    sent = api.control(
        "POST",
        "/_sandbox/transfers",
        json={
            "from_outlet_id": warehouse.outlet_id,
            "to_outlet_id": kemang.outlet_id,
            "lines": [{"sku": "BRG-0005", "quantity": 6}, {"sku": "BRG-0006", "quantity": 2}],
        },
    )
    assert sent["status"] == "sent"
    assert sent["type"] == "outlet"
    assert sent["received_date"] is None
    assert sent["transfer_number"] == "TRF-WH01-0004"
    assert stock(api, "BRG-0005", warehouse.outlet_id) == wh_before - 6
    in_transit = api.call("/api/v3/GetTransfers", status="sent", type="outlet")["transfers"]
    assert sent["transfer_id"] in {t["transfer_id"] for t in in_transit}

    received = api.control(
        "POST",
        f"/_sandbox/transfers/{sent['transfer_id']}/receive",
        json={"lines": [{"sku": "BRG-0005", "received_quantity": 4}]},
    )
    assert received["status"] == "received"
    assert [(p["sku"], p["received_quantity"]) for p in received["products"]] == [
        ("BRG-0005", 4),
        ("BRG-0006", 0),
    ]
    assert stock(api, "BRG-0005", kemang.outlet_id) == kemang_before + 4
    [served] = api.call("/api/v3/GetTransfers", transfer_id=sent["transfer_id"])["transfers"]
    assert served == received
    changed = api.call("/api/v3/GetTransfers", modified_after=received["modified_date"])["transfers"]
    assert sent["transfer_id"] in {t["transfer_id"] for t in changed}
    api.control("POST", f"/_sandbox/transfers/{sent['transfer_id']}/receive", expect=400)

    # The seeded transfer in transit is received in full by default.
    seeded = next(t for t in shop.transfers if t.status == "sent")
    full = api.control("POST", f"/_sandbox/transfers/{seeded.transfer_id}/receive")
    assert [p["received_quantity"] for p in full["products"]] == [p["quantity"] for p in full["products"]]
    api.control("POST", "/_sandbox/transfers/nope/receive", expect=404)
    bad = api.control(
        "POST",
        "/_sandbox/transfers",
        expect=400,
        json={
            "from_outlet_id": warehouse.outlet_id,
            "to_outlet_id": kemang.outlet_id,
            "lines": [{"sku": "NOPE-9", "quantity": 1}],
        },
    )
    assert "NOPE-9" in bad["error_message"]


def test_create_transfer_api(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    dago = shop.outlets[1]
    before = stock(api, "BRG-0010", dago.outlet_id)
    goods_in = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=dago.outlet_code,
        type="in",
        status="completed",
        supplier_name="PT Sumber Kopi Nusantara",
        reference_code="RI.2026.11.00001",
        products=[{"sku": "BRG-0010", "quantity": 12}],
        tags=["accurate"],
    )
    assert goods_in["status"] is True
    assert goods_in["transfer"]["type"] == "in"
    assert goods_in["transfer"]["to_outlet_id"] == dago.outlet_id
    assert stock(api, "BRG-0010", dago.outlet_id) == before + 12
    goods_out = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=dago.outlet_code,
        type="out",
        status="completed",
        supplier_name="PT Sumber Kopi Nusantara",
        reference_code="RB.2026.11.00001",
        products=[{"sku": "BRG-0010", "quantity": 2.5}],
        tags=[],
    )
    assert goods_out["status"] is True
    assert stock(api, "BRG-0010", dago.outlet_id) == before + Decimal("9.5")

    [found] = api.call("/api/v3/GetTransfers", reference_code="RI.2026.11.00001")["transfers"]
    assert found["transfer_id"] == goods_in["transfer_id"]
    assert (found["type"], found["status"], found["outlet_code"]) == ("in", "completed", dago.outlet_code)
    assert found["supplier_name"] == "PT Sumber Kopi Nusantara"
    assert found["tags"] == ["accurate"]
    assert found["products"] == [
        {
            "product_id": found["products"][0]["product_id"],
            "product_name": "Madu Hutan 350ml",
            "sku": "BRG-0010",
            "quantity": 12,
            "received_quantity": 12,
        }
    ]
    assert (
        api.call("/api/v3/GetTransfers", type="out")["transfers"][0]["transfer_id"]
        == goods_out["transfer_id"]
    )
    assert api.call("/api/v3/GetTransfers", type="outlet")["count"] == 3

    form = api.http.post(
        "/api/v3/CreateTransfer", data={"outlet_code": dago.outlet_code}, headers=api.headers
    )
    assert form.json()["status"] is False
    unknown_sku = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=dago.outlet_code,
        type="in",
        status="completed",
        products=[{"sku": "BRG-0010", "quantity": 1}, {"sku": "ZZZ-404", "quantity": 1}],
    )
    assert unknown_sku["status"] is False
    assert "ZZZ-404" in unknown_sku["error_message"]
    assert stock(api, "BRG-0010", dago.outlet_id) == before + Decimal("9.5")  # nothing half-applied
    unknown_outlet = api.call(
        "/api/v3/CreateTransfer",
        outlet_code="XXX01",
        type="in",
        status="completed",
        products=[{"sku": "BRG-0010", "quantity": 1}],
    )
    assert unknown_outlet["status"] is False
    assert "XXX01" in unknown_outlet["error_message"]
    bad: dict[str, Any]
    for bad in (
        {"type": "sideways"},
        {"status": "draft"},
        {"products": []},
        {"products": [{"sku": "BRG-0010", "quantity": -1}]},
    ):
        body = {
            "outlet_code": dago.outlet_code,
            "type": "in",
            "status": "completed",
            "products": [{"sku": "BRG-0010", "quantity": 1}],
            **bad,
        }
        assert api.call("/api/v3/CreateTransfer", **body)["status"] is False
    assert api.http.get("/api/v3/CreateTransfer", headers=api.headers).status_code == 405


def test_stock_take_sets_stock_to_the_count(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    tunjungan = shop.outlets[2]
    system = stock(api, "BRG-0020", tunjungan.outlet_id)
    take = api.control(
        "POST",
        "/_sandbox/stock-takes",
        json={"outlet_id": tunjungan.outlet_id, "lines": [{"sku": "BRG-0020", "counted_quantity": 7}]},
    )
    assert take["stock_take_number"] == "ST-SBY01-0002"
    assert take["status"] == "completed"
    assert take["lines"][0]["system_quantity"] == system
    assert take["lines"][0]["counted_quantity"] == 7
    assert stock(api, "BRG-0020", tunjungan.outlet_id) == 7
    [served] = api.call("/api/v3/GetStockTakes", outlet_id=tunjungan.outlet_id)["stock_takes"]
    assert served == take
    assert api.call("/api/v3/GetStockTakes", modified_after=take["modified_date"])["count"] == 1
    api.control(
        "POST", "/_sandbox/stock-takes", expect=400, json={"outlet_id": tunjungan.outlet_id, "lines": []}
    )
    api.control(
        "POST",
        "/_sandbox/stock-takes",
        expect=400,
        json={"outlet_id": "nowhere", "lines": [{"sku": "BRG-0020", "counted_quantity": 1}]},
    )


# --------------------------------------------------------------------------- reset, state
def test_reset_and_state(iseller_fresh: IsellerApi, shop: DemoShop) -> None:
    api = iseller_fresh
    new_order(api, shop)
    state = api.control("GET", "/_sandbox/state")
    assert state["orders"] == 91
    assert state["seed"] == 42
    assert len(state["open_shifts"]) == 1
    reset = api.control("POST", "/_sandbox/reset", json={"seed": 7})
    assert reset["seed"] == 7
    other = build_demo_shop(7)
    assert api.call("/api/v3/GetOutlets")["outlets"][0]["id"] == other.outlets[0].outlet_id
    assert api.call(ORDERS)["count"] == 90  # the token survives a reset
    api.control("POST", "/_sandbox/reset", json={})
    assert api.control("GET", "/_sandbox/health")["seed"] == 7
    api.control("POST", "/_sandbox/reset", json={"seed": 42})
    assert api.call("/api/v3/GetOutlets")["outlets"][0]["id"] == shop.outlets[0].outlet_id
    api.control("POST", "/_sandbox/reset", expect=400, json={"seed": "forty-two"})


def test_pending_supplier_transfer_moves_stock_only_when_completed_once(
    iseller_fresh: IsellerApi, shop: DemoShop
) -> None:
    """Assumed pending transfers + ``/api/v3/UpdateTransfer`` (docs/sandboxes.md), and their switch."""
    api = iseller_fresh
    outlet = shop.outlets[0]
    before = {sku: stock(api, sku, outlet.outlet_id) for sku in ("BRG-0001", "BRG-0002")}
    created = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet.outlet_code,
        type="in",
        status="pending",
        reference_code="PO-SANDBOX-1",
        products=[{"sku": "BRG-0001", "quantity": 10}, {"sku": "BRG-0002", "quantity": 4}],
    )
    assert created["status"] is True and created["transfer"]["status"] == "pending"
    assert {sku: stock(api, sku, outlet.outlet_id) for sku in before} == before
    [listed] = api.call("/api/v3/GetTransfers", status="pending", reference_code="PO-SANDBOX-1")["transfers"]
    assert [p["received_quantity"] for p in listed["products"]] == [None, None]
    refused_out = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet.outlet_code,
        type="out",
        status="pending",
        products=[{"sku": "BRG-0001", "quantity": 1}],
    )
    assert refused_out["status"] is False and "completed" in refused_out["error_message"]
    unknown_sku = api.call(
        "/api/v3/UpdateTransfer",
        reference_code="PO-SANDBOX-1",
        status="completed",
        products=[{"sku": "BRG-0003", "quantity": 1}],
    )
    assert unknown_sku["status"] is False and "not in the transfer" in unknown_sku["error_message"]
    done = api.call(
        "/api/v3/UpdateTransfer",
        reference_code="PO-SANDBOX-1",
        status="completed",
        products=[{"sku": "BRG-0001", "quantity": 6}],
    )
    assert done["status"] is True and done["transfer"]["status"] == "completed"
    assert stock(api, "BRG-0001", outlet.outlet_id) == before["BRG-0001"] + 6
    assert stock(api, "BRG-0002", outlet.outlet_id) == before["BRG-0002"]  # left out: nothing arrived
    again = api.call("/api/v3/UpdateTransfer", reference_code="PO-SANDBOX-1", status="completed")
    assert again["status"] is False and "not pending" in again["error_message"]
    assert stock(api, "BRG-0001", outlet.outlet_id) == before["BRG-0001"] + 6  # never twice

    api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet.outlet_code,
        type="in",
        status="pending",
        reference_code="PO-SANDBOX-2",
        products=[{"sku": "BRG-0001", "quantity": 3}],
    )
    cancelled = api.call("/api/v3/UpdateTransfer", reference_code="PO-SANDBOX-2", status="cancelled")
    assert cancelled["transfer"]["status"] == "cancelled"
    assert stock(api, "BRG-0001", outlet.outlet_id) == before["BRG-0001"] + 6
    missing = api.call("/api/v3/UpdateTransfer", reference_code="NOPE", status="cancelled")
    assert missing["status"] is False and "NOPE" in missing["error_message"]

    switched = api.control("POST", "/_sandbox/pending-transfers", json={"enabled": False})
    assert switched["pending_transfers"] is False
    off = api.call(
        "/api/v3/CreateTransfer",
        outlet_code=outlet.outlet_code,
        type="in",
        status="pending",
        products=[{"sku": "BRG-0001", "quantity": 1}],
    )
    assert off["status"] is False and "status must be 'completed'" in off["error_message"]
    assert (
        api.call("/api/v3/UpdateTransfer", reference_code="PO-SANDBOX-2", status="cancelled")["status"]
        is False
    )
    api.control("POST", "/_sandbox/pending-transfers", json={"enabled": True})
