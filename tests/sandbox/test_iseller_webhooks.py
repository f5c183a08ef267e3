"""iSeller sandbox contract: signed order webhooks and the shift-close hook to Airflow's REST API."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.demo_shop import DemoShop, build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerApi, Receiver

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

API_KEY = "demo-iseller-api-key"
DAG_RUNS = "/api/v2/dags/iseller_sales_to_accurate/dagRuns"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")
PAYLOAD_FIELDS = {
    "order_id",
    "order_reference",
    "channel",
    "status",
    "payment_status",
    "outlet_id",
    "modified_date",
}


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    """The seeded demo shop (seed 42)."""
    return build_demo_shop(42)


def expected_signature(body: bytes, timestamp: str) -> str:
    """What a receiver computes: uppercase hex SHA-256 of api key + raw body + timestamp."""
    return hashlib.sha256(API_KEY.encode() + body + timestamp.encode()).hexdigest().upper()


def ring_up(api: IsellerApi, shop: DemoShop, register: int = 0) -> Any:
    """A one-line order through the control route."""
    reg = shop.registers[register]
    return api.control(
        "POST",
        "/_sandbox/orders",
        json={
            "outlet_id": reg.outlet_id,
            "register_id": reg.register_id,
            "lines": [{"sku": "BRG-0003", "quantity": 1}],
        },
    )


def configure(api: IsellerApi, receiver: Receiver, path: str = "/integrations/iseller/webhook") -> None:
    """Point the order webhook at the receiver."""
    answer = api.control(
        "POST", "/_sandbox/webhooks", json={"order_url": receiver.base_url + path, "api_key": API_KEY}
    )
    assert answer["api_key_set"] is True


def test_order_webhook_is_signed(
    iseller_fresh: IsellerApi,
    iseller_clean_receiver: Receiver,
    shop: DemoShop,
    iseller_wait: Callable[..., Any],
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    configure(api, receiver)
    order = ring_up(api, shop)
    [request] = receiver.wait_for(1)
    assert request.path == "/integrations/iseller/webhook"
    assert request.headers["Content-Type"] == "application/json"
    timestamp = request.headers["Timestamp"]
    assert TIMESTAMP.match(timestamp), timestamp
    datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    assert request.headers["Signature"] == expected_signature(request.body, timestamp)
    payload = request.json()
    assert set(payload) == PAYLOAD_FIELDS
    assert payload["order_id"] == order["order_id"]
    assert payload["order_reference"] == order["order_reference"]
    assert (payload["status"], payload["payment_status"], payload["channel"]) == ("completed", "paid", "pos")
    assert payload["modified_date"] == order["modified_date"]
    # A tampered body or another key would not match.
    assert request.headers["Signature"] != expected_signature(request.body + b" ", timestamp)

    # The sandbox logs an attempt once the receiver has answered.
    [delivery] = iseller_wait(lambda: api.deliveries(order["order_id"]))
    assert delivery["success"] is True
    assert delivery["status_code"] == 200
    assert (delivery["attempt"], delivery["event"]) == (1, "order.created")
    assert delivery["signature"] == request.headers["Signature"]


def test_refund_and_void_notify_too(
    iseller_fresh: IsellerApi,
    iseller_clean_receiver: Receiver,
    shop: DemoShop,
    iseller_wait: Callable[..., Any],
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    configure(api, receiver)
    order = ring_up(api, shop)
    receiver.wait_for(1)
    api.control("POST", f"/_sandbox/orders/{order['order_id']}/refund", json={})
    refunded = receiver.wait_for(2)[1]
    assert refunded.json()["payment_status"] == "refunded"
    assert refunded.headers["Signature"] == expected_signature(refunded.body, refunded.headers["Timestamp"])
    other = ring_up(api, shop)
    api.control("POST", f"/_sandbox/orders/{other['order_id']}/void")
    # Deliveries run concurrently: the creation and the void of one order may arrive in any order,
    # so a receiver goes by the payload (and reads the order with GetOrders), not by arrival.
    payloads = [r.json() for r in receiver.wait_for(4)]
    assert {(p["order_id"], p["status"]) for p in payloads[2:]} == {
        (other["order_id"], "completed"),
        (other["order_id"], "void"),
    }
    rows = iseller_wait(lambda: (got := api.deliveries()) and len(got) == 4 and got)
    assert sorted(d["event"] for d in rows) == [
        "order.created",
        "order.created",
        "order.refunded",
        "order.voided",
    ]


def test_failed_delivery_is_retried(
    iseller_fresh: IsellerApi,
    iseller_clean_receiver: Receiver,
    shop: DemoShop,
    iseller_wait: Callable[..., Any],
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    receiver.script["/flaky"] = [(500, {"error": "busy"}), (200, {"ok": True})]
    configure(api, receiver, "/flaky")
    order = ring_up(api, shop)
    first, second = receiver.wait_for(2)
    assert first.json() == second.json()
    assert second.headers["Signature"] == expected_signature(second.body, second.headers["Timestamp"])
    attempts = iseller_wait(lambda: (got := api.deliveries(order["order_id"])) and len(got) == 2 and got)
    assert [(a["attempt"], a["status_code"], a["success"]) for a in attempts] == [
        (1, 500, False),
        (2, 200, True),
    ]


def test_unreachable_webhook_gives_up_after_retries(
    iseller_fresh: IsellerApi, shop: DemoShop, iseller_wait: Callable[..., Any]
) -> None:
    api = iseller_fresh
    api.control(
        "POST", "/_sandbox/webhooks", json={"order_url": "http://127.0.0.1:9/nowhere", "api_key": API_KEY}
    )
    order = ring_up(api, shop)
    assert order["status"] == "completed"  # the sale does not wait for the webhook
    attempts = iseller_wait(
        lambda: (got := api.deliveries(order["order_id"])) and len(got) == 3 and got, timeout=15
    )
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(a["error"] and not a["success"] for a in attempts)
    api.control("POST", "/_sandbox/webhooks", expect=400, json={"order_url": "ftp://x"})


def test_webhooks_off_and_bulk_opt_in(
    iseller_fresh: IsellerApi,
    iseller_clean_receiver: Receiver,
    shop: DemoShop,
    iseller_wait: Callable[..., Any],
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    ring_up(api, shop)
    configure(api, receiver)
    api.control("POST", "/_sandbox/orders/bulk", json={"count": 5})
    api.control("POST", "/_sandbox/orders/bulk", json={"count": 3, "send_webhooks": True})
    rows = iseller_wait(lambda: (got := api.deliveries()) and len(got) >= 3 and got)
    assert len(rows) == 3
    assert {r["event"] for r in rows} == {"order.created"}
    assert len(receiver.received()) == 3  # the order rung up before configuring and the 5 others: none


def test_shift_close_calls_airflow_with_a_token(
    iseller_fresh: IsellerApi, iseller_clean_receiver: Receiver, shop: DemoShop
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    receiver.script["/auth/token"] = [(201, {"access_token": "jwt-from-airflow", "token_type": "bearer"})]
    receiver.script[DAG_RUNS] = [(200, {"dag_run_id": "manual__shift", "state": "queued"})]
    configured = api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={
            "url": receiver.base_url + DAG_RUNS,
            "token_url": receiver.base_url + "/auth/token",
            "username": "admin",
            "password": "admin",
            "headers": {"X-Shop": "demo"},
        },
    )
    assert "password" not in configured["hook"]
    register = shop.registers[2]
    ring_up(api, shop, register=2)

    closed = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    hook = closed["hook"]
    assert hook["success"] is True
    assert (hook["token_status_code"], hook["status_code"]) == (201, 200)
    assert hook["body"] == {"dag_run_id": "manual__shift", "state": "queued"}
    [token_call] = receiver.received("/auth/token")
    assert token_call.json() == {"username": "admin", "password": "admin"}
    [trigger] = receiver.received(DAG_RUNS)
    assert trigger.headers["Authorization"] == "Bearer jwt-from-airflow"
    assert trigger.headers["X-Shop"] == "demo"
    assert trigger.json() == {
        "logical_date": None,
        "conf": {
            "outlet_id": register.outlet_id,
            "register_id": register.register_id,
            "register_shift_id": closed["register_shift_id"],
        },
    }
    calls = api.control("GET", "/_sandbox/shift-close-hook")["calls"]
    assert [c["status_code"] for c in calls] == [200]


def test_shift_close_hook_failures_are_reported(
    iseller_fresh: IsellerApi, iseller_clean_receiver: Receiver, shop: DemoShop
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    register = shop.registers[3]
    receiver.script["/auth/token"] = [(401, {"detail": "Invalid credentials"})]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={
            "url": receiver.base_url + DAG_RUNS,
            "token_url": receiver.base_url + "/auth/token",
            "username": "admin",
            "password": "wrong",
        },
    )
    refused = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")["hook"]
    assert refused["success"] is False
    assert refused["token_status_code"] == 401
    assert refused["error"]
    assert receiver.received(DAG_RUNS) == []

    # Without a token URL the headers alone authenticate; an error answer is recorded as is.
    receiver.script[DAG_RUNS] = [(400, {"detail": "conf is invalid"})]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={"url": receiver.base_url + DAG_RUNS, "headers": {"Authorization": "Bearer static"}},
    )
    rejected = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")["hook"]
    assert (rejected["success"], rejected["status_code"], rejected["body"]) == (
        False,
        400,
        {"detail": "conf is invalid"},
    )
    assert receiver.received(DAG_RUNS)[0].headers["Authorization"] == "Bearer static"

    api.control("POST", "/_sandbox/shift-close-hook", json={"url": "http://127.0.0.1:9" + DAG_RUNS})
    unreachable = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")["hook"]
    assert unreachable["success"] is False
    assert unreachable["status_code"] is None
    assert "Connect" in unreachable["error"]
