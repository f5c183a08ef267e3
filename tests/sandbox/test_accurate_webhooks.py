"""Accurate sandbox contract: webhook subscription, deliveries, retries, expiry, renew, history."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi, WebhookReceiver

pytest_plugins = ["tests.sandbox.accurate_fixtures"]

JAKARTA = timezone(timedelta(hours=7))
TIMESTAMP = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}")


def _subscribe(accurate: AccurateApi, receiver: WebhookReceiver) -> dict[str, Any]:
    accurate.config(webhook_backoff_seconds=0.05, webhook_max_attempts=5)
    answer: dict[str, Any] = accurate.control("POST", "webhook-target", json={"url": receiver.url})
    return answer


def _receive_item(number: str, quantity: int = 3) -> dict[str, Any]:
    return {
        "number": number,
        "receiveNumber": f"SJ-{number}",
        "vendorNo": "V.0001",
        "branchName": "Kantor Pusat",
        "detailItem": [{"itemNo": "BRG-0001", "quantity": quantity}],
    }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(JAKARTA).strftime("%d/%m/%Y %H:%M:%S")


def _sandbox_now(accurate: AccurateApi) -> datetime:
    return datetime.fromisoformat(accurate.control("GET", "clock")["now"])


def test_registering_a_target_answers_a_7_day_expiry(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    now = _sandbox_now(accurate)
    answer = _subscribe(accurate, accurate_clean_receiver)
    assert answer["url"] == accurate_clean_receiver.url and answer["active"] is True
    expiry = datetime.strptime(answer["expiredDate"], "%d/%m/%Y %H:%M:%S").replace(tzinfo=JAKARTA)
    assert abs((expiry - now) - timedelta(days=7)) < timedelta(seconds=5)
    accurate.control("POST", "webhook-target", expect=400, json={"url": "ftp://nope"})


@pytest.mark.parametrize(
    ("module", "record", "event_type", "kind"),
    [
        ("receive-item", _receive_item("RI-W1"), "RECEIVE_ITEM", "receiveItem"),
        (
            "purchase-invoice",
            {
                "number": "PI-W1",
                "vendorNo": "V.0002",
                "branchName": "Kantor Pusat",
                "detailItem": [{"itemNo": "BRG-0002", "quantity": 1}],
            },
            "PURCHASE_INVOICE",
            "purchaseInvoice",
        ),
        (
            "purchase-return",
            {
                "number": "PR-W1",
                "vendorNo": "V.0002",
                "branchName": "Kantor Pusat",
                "detailItem": [{"itemNo": "BRG-0002", "quantity": 1}],
            },
            "PURCHASE_RETURN",
            "purchaseReturn",
        ),
        ("item", {"no": "BRG-W1", "name": "Barang Webhook"}, "ITEM", "item"),
    ],
)
def test_saves_and_deletes_are_delivered_as_an_array_of_events(
    accurate: AccurateApi,
    accurate_clean_receiver: WebhookReceiver,
    module: str,
    record: dict[str, Any],
    event_type: str,
    kind: str,
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    saved = accurate.save(module, record)["r"]
    key = saved["no"] if module == "item" else saved["number"]
    accurate.save(module, {"id": saved["id"], "description": "diubah"})
    lookup = {"no": key} if module == "item" else {"number": key}
    assert accurate.delete(module, **lookup)["s"] is True
    deliveries = accurate_clean_receiver.wait_for(1)
    time.sleep(0.3)
    events = [event for delivery in accurate_clean_receiver.received() for event in delivery.events()]
    assert [e["data"][0]["action"] for e in events] == ["WRITE", "WRITE", "DELETE"]
    event = events[0]
    assert set(event) == {"databaseId", "type", "timestamp", "uuid", "data"}
    assert event["type"] == event_type
    assert event["databaseId"] == accurate.control("GET", "health")["databaseId"]
    assert TIMESTAMP.fullmatch(event["timestamp"])
    assert uuid.UUID(event["uuid"]).version == 4
    assert event["data"] == [{f"{kind}Id": saved["id"], f"{kind}No": key, "action": "WRITE"}]
    assert len({e["uuid"] for e in events}) == 3
    assert deliveries[0].headers.get("Content-Type") == "application/json"


def test_other_modules_do_not_send_webhooks(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.save("sales-invoice", accurate.invoice("SI-NOHOOK"))
    accurate.save("receive-item", _receive_item("RI-MARK"))
    time.sleep(0.4)
    events = [e for d in accurate_clean_receiver.wait_for(1) for e in d.events()]
    assert [e["type"] for e in events] == ["RECEIVE_ITEM"]


def test_events_saved_close_together_share_one_delivery(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    body = accurate.bulk("receive-item", [_receive_item(f"RI-B{n}") for n in range(3)])
    assert all(r["s"] for r in body["d"])
    delivery = accurate_clean_receiver.wait_for(1)[0]
    time.sleep(0.3)
    assert len(accurate_clean_receiver.received()) == 1
    assert [e["data"][0]["receiveItemNo"] for e in delivery.events()] == ["RI-B0", "RI-B1", "RI-B2"]


def test_failed_delivery_is_retried_with_the_same_uuid(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate_clean_receiver.clear(fail_first=2)
    accurate.save("receive-item", _receive_item("RI-R1"))
    deliveries = accurate_clean_receiver.wait_for(3)
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert deliveries[0].body == deliveries[1].body == deliveries[2].body
    log = accurate.control("GET", "webhook-deliveries")["deliveries"]
    assert log[-1]["status"] == "SUCCESS"
    assert [a["statusCode"] for a in log[-1]["attempts"]] == [500, 500, 200]


def test_save_answers_at_once_while_the_receiver_is_down(
    accurate: AccurateApi, accurate_free_port: Callable[[], int], accurate_wait: Callable[..., Any]
) -> None:
    # Retries take at least 1 + 2 s: the save must not wait for them.
    accurate.config(webhook_backoff_seconds=1.0, webhook_max_attempts=3)
    accurate.control("POST", "webhook-target", json={"url": f"http://127.0.0.1:{accurate_free_port()}/hook"})
    started = time.monotonic()
    assert accurate.save("receive-item", _receive_item("RI-DOWN"))["s"] is True
    assert time.monotonic() - started < 2.0

    def finished() -> Any:
        rows = accurate.control("GET", "webhook-deliveries")["deliveries"]
        return rows and len(rows[-1]["attempts"]) == 3 and rows[-1]

    delivery = accurate_wait(finished)
    assert delivery["status"] == "FAILED"
    assert all(a["statusCode"] is None and a["error"] for a in delivery["attempts"])
    now = _sandbox_now(accurate)
    history = accurate.ok(
        accurate.request(
            "GET",
            "/api/webhook-history.do",
            params={"from": _stamp(now - timedelta(minutes=5)), "to": _stamp(now + timedelta(minutes=1))},
        )
    )
    assert [(row["data"][0]["receiveItemNo"], row["status"]) for row in history["d"]] == [
        ("RI-DOWN", "FAILED")
    ]


def test_duplicate_delivery_fault_sends_the_same_body_twice(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.faults(duplicate_webhook_rate=1)
    accurate.save("receive-item", _receive_item("RI-DUP"))
    first, second = accurate_clean_receiver.wait_for(2)
    assert first.body == second.body and first.status == second.status == 200
    # The sandbox records an attempt after the receiver has answered: wait for the record too.
    deadline = time.monotonic() + 10
    while True:
        attempts = accurate.control("GET", "webhook-deliveries")["deliveries"][-1]["attempts"]
        if len(attempts) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [a["duplicate"] for a in attempts] == [False, True]


def test_subscription_expires_after_7_days_and_renew_extends_it(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.advance_clock(7 * 86400 + 1)
    assert accurate.control("GET", "webhook-target")["active"] is False
    accurate.save("receive-item", _receive_item("RI-EXP"))
    time.sleep(0.4)
    assert accurate_clean_receiver.received() == []
    skipped = accurate.control("GET", "webhook-deliveries")["skipped"]
    assert skipped[-1]["reason"] == "subscription expired"
    renewed = accurate.ok(accurate.request("POST", "/api/webhook-renew.do"))
    assert renewed["s"] is True and TIMESTAMP.fullmatch(renewed["d"]["expiredDate"])
    expiry = datetime.strptime(renewed["d"]["expiredDate"], "%d/%m/%Y %H:%M:%S").replace(tzinfo=JAKARTA)
    assert abs((expiry - _sandbox_now(accurate)) - timedelta(days=7)) < timedelta(seconds=5)
    accurate.save("receive-item", _receive_item("RI-AFTER"))
    events = accurate_clean_receiver.wait_for(1)[0].events()
    assert events[0]["data"][0]["receiveItemNo"] == "RI-AFTER"


def test_renew_without_a_target_is_refused(accurate: AccurateApi) -> None:
    body = accurate.ok(accurate.request("GET", "/api/webhook-renew.do"))
    assert body["s"] is False and "webhook" in body["d"][0].lower()


def test_history_lists_deliveries_in_the_window(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.save("receive-item", _receive_item("RI-H1"))
    accurate_clean_receiver.wait_for(1)
    time.sleep(0.1)
    now = _sandbox_now(accurate)
    params = {"from": _stamp(now - timedelta(hours=1)), "to": _stamp(now + timedelta(minutes=1))}
    history = accurate.ok(accurate.request("GET", "/api/webhook-history.do", params=params))
    assert history["s"] is True and history["sp"]["rowCount"] == 1
    row = history["d"][0]
    assert {"uuid", "type", "timestamp", "data", "sentDate", "status", "statusCode"} <= set(row)
    assert row["type"] == "RECEIVE_ITEM" and row["status"] == "SUCCESS" and row["statusCode"] == 200
    assert row["uuid"] == accurate_clean_receiver.received()[0].events()[0]["uuid"]
    earlier = {"from": _stamp(now - timedelta(hours=3)), "to": _stamp(now - timedelta(hours=2))}
    assert accurate.ok(accurate.request("GET", "/api/webhook-history.do", params=earlier))["d"] == []


@pytest.mark.parametrize(
    ("shift_from", "shift_to", "expected"),
    [
        (timedelta(hours=-25), timedelta(0), "24 jam"),
        (timedelta(days=-40), timedelta(days=-40, hours=1), "1 bulan"),
        (timedelta(hours=1), timedelta(0), "sebelum"),
        (None, timedelta(0), "from dan to"),
    ],
)
def test_history_window_rules(
    accurate: AccurateApi, shift_from: timedelta | None, shift_to: timedelta, expected: str
) -> None:
    now = _sandbox_now(accurate)
    params = {"to": _stamp(now + shift_to)}
    if shift_from is not None:
        params["from"] = _stamp(now + shift_from)
    body = accurate.ok(accurate.request("GET", "/api/webhook-history.do", params=params))
    assert body["s"] is False and expected in body["d"][0]


def test_millis_timestamp_format_option(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.config(webhook_timestamp_format="millis")
    accurate.save("receive-item", _receive_item("RI-MS"))
    event = accurate_clean_receiver.wait_for(1)[0].events()[0]
    assert isinstance(event["timestamp"], int) and abs(event["timestamp"] / 1000 - time.time()) < 60


def test_items_helper_also_announces_items(
    accurate: AccurateApi, accurate_clean_receiver: WebhookReceiver
) -> None:
    _subscribe(accurate, accurate_clean_receiver)
    accurate.control("POST", "items", json={"no": "BRG-0049", "name": "Permen Jahe"})
    event = accurate_clean_receiver.wait_for(1)[0].events()[0]
    assert event["type"] == "ITEM" and event["data"][0]["itemNo"] == "BRG-0049"
