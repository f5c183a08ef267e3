"""iSeller sandbox contract: signed order webhooks and the shift-close hook to Airflow's REST API."""

from __future__ import annotations

import hashlib
import re
import time
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


def hook_calls(api: IsellerApi, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The hook's recorded attempts, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        calls = api.control("GET", "/_sandbox/shift-close-hook")["calls"]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("answers", "statuses"),
    [
        ([(404, {"detail": "Dag with dag_id: 'iseller_sales_to_accurate' not found"})] * 2, [404, 404, 200]),
        ([(503, {"detail": "unavailable"}), (500, "oops")], [503, 500, 200]),
        ([(429, {"detail": "slow down"})], [429, 200]),
    ],
    ids=["dag_not_found_while_unparsed", "server_errors", "rate_limited"],
)
def test_shift_close_hook_retries_what_may_pass_later(
    iseller_fresh: IsellerApi,
    iseller_clean_receiver: Receiver,
    shop: DemoShop,
    answers: list[tuple[int, Any]],
    statuses: list[int],
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    receiver.script[DAG_RUNS] = [*answers, (200, {"dag_run_id": "manual__late", "state": "queued"})]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={"url": receiver.base_url + DAG_RUNS, "retry_delays": [0.05, 0.1, 0.2, 0.4]},
    )
    register = shop.registers[1]
    first = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    assert (first["hook"]["success"], first["hook"]["will_retry"]) == (False, True)  # the close did not wait
    calls = hook_calls(api, len(statuses))
    assert [c["status_code"] for c in calls] == statuses
    assert [c["attempt"] for c in calls] == list(range(1, len(statuses) + 1))
    assert len({c["call_id"] for c in calls}) == 1 and calls[-1]["success"] is True
    sent = [r.json() for r in receiver.received(DAG_RUNS)]
    assert len(sent) == len(statuses) and all(s == sent[0] for s in sent)  # the same conf every time
    assert sent[0]["conf"]["register_shift_id"] == first["register_shift_id"]
    time.sleep(0.5)
    assert len(receiver.received(DAG_RUNS)) == len(statuses)  # nothing after the success


def test_shift_close_hook_retries_are_bounded_and_refusals_not_retried(
    iseller_fresh: IsellerApi, iseller_clean_receiver: Receiver, shop: DemoShop
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    register = shop.registers[0]
    receiver.script[DAG_RUNS] = [(502, "bad gateway")]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={"url": receiver.base_url + DAG_RUNS, "retry_delays": [0.05] * 3},
    )
    api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    calls = hook_calls(api, 4)
    time.sleep(0.4)
    calls = api.control("GET", "/_sandbox/shift-close-hook")["calls"]
    assert [c["status_code"] for c in calls] == [502] * 4  # 1 + 3 retries, then it gives up
    assert [c["will_retry"] for c in calls] == [True, True, True, False]

    # 400 (invalid conf) and 401 (bad credentials) are refusals: one attempt only.
    for status in (400, 401, 422):
        receiver.reset()
        receiver.script[DAG_RUNS] = [(status, {"detail": "refused"})]
        api.control("POST", "/_sandbox/reset", json={"seed": 42})
        api.control(
            "POST",
            "/_sandbox/shift-close-hook",
            json={"url": receiver.base_url + DAG_RUNS, "retry_delays": [0.05]},
        )
        refused = api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")["hook"]
        assert (refused["status_code"], refused["retriable"], refused["will_retry"]) == (status, False, False)
        time.sleep(0.3)
        assert len(receiver.received(DAG_RUNS)) == 1


def test_shift_close_hook_retries_connection_errors_and_token_outages(
    iseller_fresh: IsellerApi, iseller_clean_receiver: Receiver, shop: DemoShop
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    register = shop.registers[2]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={"url": "http://127.0.0.1:9" + DAG_RUNS, "retry_delays": [0.05, 0.05]},
    )
    api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    calls = hook_calls(api, 3)
    assert [c["attempt"] for c in calls] == [1, 2, 3] and all("Connect" in c["error"] for c in calls)

    api.control("POST", "/_sandbox/reset", json={"seed": 42})
    receiver.script["/auth/token"] = [(503, {"detail": "starting"}), (201, {"access_token": "jwt"})]
    receiver.script[DAG_RUNS] = [(200, {"dag_run_id": "manual__x", "state": "queued"})]
    api.control(
        "POST",
        "/_sandbox/shift-close-hook",
        json={
            "url": receiver.base_url + DAG_RUNS,
            "token_url": receiver.base_url + "/auth/token",
            "username": "admin",
            "password": "admin",
            "retry_delays": [0.05],
        },
    )
    api.control("POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    calls = hook_calls(api, 2)
    assert [(c["token_status_code"], c["status_code"]) for c in calls] == [(503, None), (201, 200)]
    assert receiver.received(DAG_RUNS)[0].headers["Authorization"] == "Bearer jwt"


def test_shift_close_hook_retry_configuration(
    iseller_fresh: IsellerApi, iseller_clean_receiver: Receiver
) -> None:
    api, receiver = iseller_fresh, iseller_clean_receiver
    configured = api.control("POST", "/_sandbox/shift-close-hook", json={"url": receiver.base_url + DAG_RUNS})
    assert configured["hook"]["retry_delays"] == [2.0, 5.0, 10.0, 20.0, 40.0, 80.0]  # the default
    for bad in ("soon", [1] * 11, [-1], [True], [601]):
        api.control(
            "POST",
            "/_sandbox/shift-close-hook",
            expect=400,
            json={"url": receiver.base_url, "retry_delays": bad},
        )
