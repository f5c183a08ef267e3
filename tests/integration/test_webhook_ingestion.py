"""Webhook ingestion on a real PostgreSQL against both real sandboxes (served on sockets).

Covers the processing of stored events (receive items, purchase invoices, returns, ignored types,
failures that stay alone, the refresh that re-processes exactly the failed events, edits and
deletions, a crash between CreateTransfer and its confirmation) and the maintenance work (history
catch-up stored once, renewal while the sandbox clock moves towards the expiry).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from include.iseller_accurate.clients import (
    AccurateHook,
    IsellerHook,
    clear_discovery_cache,
    clear_token_cache,
)
from include.iseller_accurate.ledger import RunRef, connect
from include.iseller_accurate.pipeline import SyncFailed as WebhookEventsFailed
from include.iseller_accurate.purchases.events import parse_event
from include.iseller_accurate.purchases.maintenance import catch_up, renew_subscription
from include.iseller_accurate.purchases.processor import WebhookProcessor, process_run
from include.iseller_accurate.purchases.store import PlannedTransfer, WebhookEventLedger
from include.iseller_accurate.settings import parse_settings
from sandbox.demo_shop import NO_SKU_PRODUCT_INDEX, build_demo_shop
from tests.integration.test_webhook_receiver import ServerThread

SHOP = build_demo_shop(42)
SETTINGS = parse_settings(SHOP.settings())
OUTLET = {o.outlet_code: o for o in SHOP.outlets}
DAG_ID = "accurate_webhooks_to_iseller"


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    from sandbox.accurate.app import create_app as accurate_app
    from sandbox.iseller.app import create_app as iseller_app

    with ServerThread(accurate_app(seed=42)) as accurate, ServerThread(iseller_app(seed=42)) as iseller:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCURATE_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": accurate.url,
                    "password": "sandbox-api-token",
                    "extra": {"signature_secret": "sandbox-signature-secret", "webhook_token": "t"},
                }
            ),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_ISELLER_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": iseller.url,
                    "login": "sandbox-client",
                    "password": "sandbox-secret",
                }
            ),
        )
        clear_discovery_cache()
        clear_token_cache()
        yield accurate.url, iseller.url


@pytest.fixture
def ledger(pg_dsn: str) -> Iterator[WebhookEventLedger]:
    with WebhookEventLedger.open(pg_dsn) as opened:
        yield opened


def run(name: str = "run-1", try_number: int = 1) -> RunRef:
    return RunRef(DAG_ID, name, "process_events", -1, try_number)


def processor(ledger: WebhookEventLedger, ref: RunRef) -> WebhookProcessor:
    return WebhookProcessor(ledger, AccurateHook(), IsellerHook(), SETTINGS, ref)


def save(module: str, record: dict[str, Any]) -> dict[str, Any]:
    result = AccurateHook().save(module, record)
    assert result.ok, result.reason
    assert result.record is not None
    return result.record


def receive_item(
    number: str,
    lines: list[tuple[str, int]],
    warehouse: str = "Gudang Kemang",
    branch: str = "Cabang Jakarta",
    **extra: Any,
) -> dict[str, Any]:
    return save(
        "receive-item",
        {
            "number": number,
            "receiveNumber": f"SJ-{number}",
            "vendorNo": "V.0001",
            "branchName": branch,
            "warehouseName": warehouse,
            "detailItem": [{"itemNo": sku, "quantity": qty} for sku, qty in lines],
            **extra,
        },
    )


def event_for(event_type: str, kind: str, record: dict[str, Any], action: str = "WRITE") -> dict[str, Any]:
    return {
        "databaseId": 100042,
        "type": event_type,
        "timestamp": datetime.now(UTC).strftime("%d/%m/%Y %H:%M:%S"),
        "uuid": str(uuid.uuid4()),
        "data": [{f"{kind}Id": record["id"], f"{kind}No": record["number"], "action": action}],
    }


def store(ledger: WebhookEventLedger, *events: dict[str, Any]) -> None:
    assert ledger.store([parse_event(e) for e in events]) == len(events)


def transfers(iseller_url: str, reference: str) -> list[dict[str, Any]]:
    hook = IsellerHook()
    return list(hook.get_transfers(reference_code=reference))


def status_of(ledger: WebhookEventLedger, event: dict[str, Any]) -> tuple[str, str | None]:
    row = ledger.event(event["uuid"])
    assert row is not None
    return row.status, row.reason


def test_receive_item_becomes_one_transfer_in_at_the_mapped_outlet(sandboxes, ledger):
    _, iseller_url = sandboxes
    record = receive_item(
        "RI.IT.0001", [("BRG-0001", 5), ("BRG-0002", 3)], warehouse="Gudang Dago", branch="Cabang Bandung"
    )
    first = event_for("RECEIVE_ITEM", "receiveItem", record)
    duplicate_later = event_for("RECEIVE_ITEM", "receiveItem", record)  # Accurate re-sent it under a new uuid
    store(ledger, first, duplicate_later)
    ref = run()
    summary = process_run(ledger, processor(ledger, ref), ref)
    assert summary["done"] == 2
    (made,) = transfers(iseller_url, "ACC-RI-RI.IT.0001")
    assert made["type"] == "in" and made["to_outlet_id"] == OUTLET["BDG01"].outlet_id
    assert made["status"] == "completed" and made["supplier_name"] == "PT Sumber Kopi Nusantara"
    assert {(p["sku"], Decimal(str(p["quantity"]))) for p in made["products"]} == {
        ("BRG-0001", Decimal(5)),
        ("BRG-0002", Decimal(3)),
    }
    assert status_of(ledger, duplicate_later) == ("done", "already in iSeller")
    assert ledger.event(first["uuid"]).attempts == 1


def test_purchase_invoice_return_and_other_types(sandboxes, ledger):
    _, iseller_url = sandboxes
    received = receive_item("RI.IT.0002", [("BRG-0003", 4)])
    invoice_of_received = save(
        "purchase-invoice",
        {
            "number": "PI.IT.0001",
            "vendorNo": "V.0001",
            "branchName": "Cabang Jakarta",
            "detailItem": [
                {
                    "itemNo": "BRG-0003",
                    "quantity": 4,
                    "unitPrice": 1000,
                    "receiveItemNumber": received["number"],
                }
            ],
        },
    )
    direct_invoice = save(
        "purchase-invoice",
        {
            "number": "PI.IT.0002",
            "vendorNo": "V.0002",
            "branchName": "Cabang Surabaya",
            "detailItem": [{"itemNo": "BRG-0004", "quantity": 6, "unitPrice": 1000}],
        },
    )
    purchase_return = save(
        "purchase-return",
        {
            "number": "PRT.IT.0001",
            "vendorNo": "V.0002",
            "branchName": "Cabang Surabaya",
            "invoiceNumber": direct_invoice["number"],
            "detailItem": [{"itemNo": "BRG-0004", "quantity": 2, "unitPrice": 1000}],
        },
    )
    events = [
        event_for("RECEIVE_ITEM", "receiveItem", received),
        event_for("PURCHASE_INVOICE", "purchaseInvoice", invoice_of_received),
        event_for("PURCHASE_INVOICE", "purchaseInvoice", direct_invoice),
        event_for("PURCHASE_RETURN", "purchaseReturn", purchase_return),
        {
            "type": "ITEM",
            "uuid": str(uuid.uuid4()),
            "timestamp": 1795660500000,
            "data": [{"itemId": 1, "itemNo": "BRG-0001", "action": "WRITE"}],
        },
    ]
    store(ledger, *events)
    ref = run()
    summary = process_run(ledger, processor(ledger, ref), ref)
    assert summary["done"] == 3 and summary["ignored"] == 2
    assert status_of(ledger, events[1])[0] == "ignored"
    assert "received with receive items" in (status_of(ledger, events[1])[1] or "")
    assert "ITEM is not synced" in (status_of(ledger, events[4])[1] or "")
    assert not transfers(iseller_url, "ACC-PI-PI.IT.0001")
    (invoice_in,) = transfers(iseller_url, "ACC-PI-PI.IT.0002")
    assert invoice_in["type"] == "in" and invoice_in["to_outlet_id"] == OUTLET["SBY01"].outlet_id
    (out,) = transfers(iseller_url, "ACC-PRT-PRT.IT.0001")
    assert out["type"] == "out" and out["from_outlet_id"] == OUTLET["SBY01"].outlet_id
    assert Decimal(str(out["products"][0]["quantity"])) == 2


def test_product_without_sku_fails_alone_then_refresh_reprocesses_exactly_the_failed(sandboxes, ledger):
    accurate_url, iseller_url = sandboxes
    no_sku = SHOP.products[NO_SKU_PRODUCT_INDEX]
    sku = "BRG-0048"
    assert (
        httpx.post(
            f"{accurate_url}/_sandbox/items",
            json={"no": sku, "name": no_sku.name, "itemType": "INVENTORY", "unit1Name": no_sku.unit},
        ).status_code
        == 200
    )
    bad = receive_item("RI.IT.0100", [(sku, 2), ("BRG-0001", 1)])
    good = receive_item("RI.IT.0101", [("BRG-0001", 1)])
    bad_event, good_event = (event_for("RECEIVE_ITEM", "receiveItem", r) for r in (bad, good))
    store(ledger, bad_event, good_event)
    first = run("run-a")
    with pytest.raises(WebhookEventsFailed) as failure:
        process_run(ledger, processor(ledger, first), first)
    assert not failure.value.transient
    assert "BRG-0048 (Kopi Luwak 100g) has no product with that SKU in iSeller" in str(failure.value)
    status, reason = status_of(ledger, bad_event)
    assert status == "failed" and "BRG-0048" in (reason or "")
    assert status_of(ledger, good_event)[0] == "done"
    assert not transfers(iseller_url, "ACC-RI-RI.IT.0100")  # nothing of the bad document was sent

    later = event_for("RECEIVE_ITEM", "receiveItem", receive_item("RI.IT.0102", [("BRG-0002", 1)]))
    store(ledger, later)  # arrives after the failure: belongs to the next run, not to the refresh
    patched = httpx.patch(f"{iseller_url}/_sandbox/products/{no_sku.product_id}", json={"sku": sku})
    assert patched.status_code == 200, patched.text
    cleared = run("run-a", try_number=2)
    summary = process_run(ledger, processor(ledger, cleared), cleared)
    assert summary == {"events": 2, "done": 2, "still_pending": 1}
    assert status_of(ledger, bad_event)[0] == "done"
    assert ledger.event(bad_event["uuid"]).attempts == 2
    assert ledger.event(good_event["uuid"]).attempts == 1
    assert status_of(ledger, later)[0] == "pending"
    (made,) = transfers(iseller_url, "ACC-RI-RI.IT.0100")
    assert {p["sku"] for p in made["products"]} == {sku, "BRG-0001"}
    nxt = run("run-b")
    assert process_run(ledger, processor(ledger, nxt), nxt)["done"] == 1


def test_unmapped_warehouse_fails_with_the_reason(sandboxes, ledger):
    settings = parse_settings(
        {
            **SHOP.settings(),
            "outlets": {
                k: v for k, v in SHOP.settings()["outlets"].items() if v["warehouse"] != "Gudang Pusat"
            },
        }
    )
    record = receive_item("RI.IT.0200", [("BRG-0001", 1)], warehouse="Gudang Pusat", branch="Kantor Pusat")
    ev = event_for("RECEIVE_ITEM", "receiveItem", record)
    store(ledger, ev)
    ref = run()
    with pytest.raises(WebhookEventsFailed):
        process_run(ledger, WebhookProcessor(ledger, AccurateHook(), IsellerHook(), settings, ref), ref)
    status, reason = status_of(ledger, ev)
    assert status == "failed"
    assert "warehouse 'Gudang Pusat' is not mapped to an iSeller outlet" in (reason or "")


def test_edit_sends_the_difference_and_delete_reverses(sandboxes, ledger):
    _, iseller_url = sandboxes
    record = receive_item("RI.IT.0300", [("BRG-0005", 10)])
    store(ledger, event_for("RECEIVE_ITEM", "receiveItem", record))
    ref = run("r1")
    process_run(ledger, processor(ledger, ref), ref)
    line_id = record["detailItem"][0]["id"]
    edited = save(
        "receive-item",
        {"id": record["id"], "detailItem": [{"id": line_id, "itemNo": "BRG-0005", "quantity": 7}]},
    )
    store(ledger, event_for("RECEIVE_ITEM", "receiveItem", edited))
    ref = run("r2")
    process_run(ledger, processor(ledger, ref), ref)
    (adjust,) = transfers(iseller_url, "ACC-RI-RI.IT.0300-2")
    assert adjust["type"] == "out" and Decimal(str(adjust["products"][0]["quantity"])) == 3

    deleted = AccurateHook().call("receive-item", "delete", method="POST", params={"id": record["id"]})
    assert deleted["s"], deleted
    write_after_delete = event_for("RECEIVE_ITEM", "receiveItem", record)
    delete_event = event_for("RECEIVE_ITEM", "receiveItem", record, action="DELETE")
    store(ledger, write_after_delete, delete_event)
    ref = run("r3")
    with pytest.raises(WebhookEventsFailed):
        process_run(ledger, processor(ledger, ref), ref)
    status, reason = status_of(ledger, write_after_delete)
    assert status == "failed" and "no longer exists in Accurate" in (reason or "")
    assert status_of(ledger, delete_event) == (
        "done",
        "receive item RI.IT.0300 was deleted in Accurate: reversed in iSeller",
    )
    (reversal,) = transfers(iseller_url, "ACC-RI-RI.IT.0300-3")
    assert reversal["type"] == "out" and Decimal(str(reversal["products"][0]["quantity"])) == 7


def test_delete_of_a_document_never_sent_is_ignored(sandboxes, ledger):
    record = receive_item("RI.IT.0400", [("BRG-0001", 1)])
    assert AccurateHook().call("receive-item", "delete", method="POST", params={"id": record["id"]})["s"]
    ev = event_for("RECEIVE_ITEM", "receiveItem", record, action="DELETE")
    store(ledger, ev)
    ref = run()
    process_run(ledger, processor(ledger, ref), ref)
    assert status_of(ledger, ev)[0] == "ignored"


def test_event_of_a_document_that_never_existed_says_not_found(sandboxes, ledger):
    """Issue 9: a WRITE event naming an id Accurate never had claimed it "was deleted after it was saved"."""
    ev = event_for("RECEIVE_ITEM", "receiveItem", {"id": 987654, "number": "RI.NEVER.1"})
    store(ledger, ev)
    ref = run()
    with pytest.raises(WebhookEventsFailed):
        process_run(ledger, processor(ledger, ref), ref)
    status, reason = status_of(ledger, ev)
    assert status == "failed" and reason
    assert "was not found in Accurate" in reason and "deleted after it was saved" not in reason
    assert "if the document is there, press Refresh" in reason


def test_crash_after_create_is_settled_by_lookup_never_twice(sandboxes, ledger):
    _, iseller_url = sandboxes
    record = receive_item("RI.IT.0500", [("BRG-0006", 2)])
    ev = event_for("RECEIVE_ITEM", "receiveItem", record)
    store(ledger, ev)

    class CrashAfterCreate(IsellerHook):
        def create_transfer(self, payload: Any) -> Any:
            super().create_transfer(payload)
            raise SystemExit("worker killed after CreateTransfer")

    ref = run()
    crashing = WebhookProcessor(ledger, AccurateHook(), CrashAfterCreate(), SETTINGS, ref)
    with pytest.raises(SystemExit):
        process_run(ledger, crashing, ref)
    assert [t.status for t in ledger.document_transfers("receive-item", record["id"], "RI.IT.0500")] == [
        "creating"
    ]
    retry = run(try_number=2)
    process_run(ledger, processor(ledger, retry), retry)
    assert len(transfers(iseller_url, "ACC-RI-RI.IT.0500")) == 1
    assert [t.status for t in ledger.document_transfers("receive-item", record["id"], "RI.IT.0500")] == [
        "created"
    ]
    assert status_of(ledger, ev)[0] == "done"


def test_an_id_handed_out_again_under_another_number_is_a_new_document(sandboxes, ledger):
    """A reset Accurate (sandbox, restored database) reuses ids: never reverse another number's stock."""
    _, iseller_url = sandboxes
    record = receive_item("RI.IT.0700", [("BRG-0007", 2)])
    ledger.plan(
        [
            PlannedTransfer(
                "ACC-RI-RI.OLD.1",
                "receive-item",
                record["id"],
                "RI.OLD.1",
                OUTLET["JKT01"].outlet_id,
                "JKT01",
                "in",
                [{"sku": "BRG-0009", "quantity": 5}],
            )
        ],
        None,
    )
    ledger.confirm("ACC-RI-RI.OLD.1", None, None)
    ev = event_for("RECEIVE_ITEM", "receiveItem", record)
    store(ledger, ev)
    ref = run()
    process_run(ledger, processor(ledger, ref), ref)
    status, reason = status_of(ledger, ev)
    assert status == "done" and "was sent before as RI.OLD.1" in (reason or "")
    (made,) = transfers(iseller_url, "ACC-RI-RI.IT.0700")
    assert made["type"] == "in" and [p["sku"] for p in made["products"]] == ["BRG-0007"]


def test_a_transfer_iseller_no_longer_has_is_made_again(sandboxes, ledger):
    _, iseller_url = sandboxes
    record = receive_item("RI.IT.0800", [("BRG-0008", 3)])
    store(ledger, event_for("RECEIVE_ITEM", "receiveItem", record))
    ref = run("r1")
    process_run(ledger, processor(ledger, ref), ref)
    assert len(transfers(iseller_url, "ACC-RI-RI.IT.0800")) == 1
    assert httpx.post(f"{iseller_url}/_sandbox/reset", json={}).status_code == 200  # iSeller lost it
    clear_token_cache()
    assert transfers(iseller_url, "ACC-RI-RI.IT.0800") == []
    again = event_for("RECEIVE_ITEM", "receiveItem", record)  # e.g. the document saved once more
    store(ledger, again)
    ref = run("r2")
    process_run(ledger, processor(ledger, ref), ref)
    (made,) = transfers(iseller_url, "ACC-RI-RI.IT.0800")
    assert made["type"] == "in" and Decimal(str(made["products"][0]["quantity"])) == 3
    assert [t.status for t in ledger.document_transfers("receive-item", record["id"], "RI.IT.0800")] == [
        "created"
    ]


def test_catch_up_recovers_missed_deliveries_once_even_if_they_arrive_late(sandboxes, ledger):
    accurate_url, _ = sandboxes
    dead = f"http://127.0.0.1:{_free_port()}/integrations/accurate/webhook?token=t"
    assert httpx.post(f"{accurate_url}/_sandbox/webhook-target", json={"url": dead}).status_code == 200
    httpx.post(f"{accurate_url}/_sandbox/config", json={"webhook_max_attempts": 1})
    started = datetime.now(UTC) - timedelta(minutes=1)
    numbers = [f"RI.IT.06{i:02d}" for i in range(5)]
    for number in numbers:
        receive_item(number, [("BRG-0001", 1)])
        time.sleep(0.15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        deliveries = httpx.get(f"{accurate_url}/_sandbox/webhook-deliveries").json()["deliveries"]
        if len(deliveries) == 5 and all(d["status"] == "FAILED" for d in deliveries):
            break
        time.sleep(0.1)
    early = parse_event(deliveries[0]["events"][0])
    assert ledger.store([early]) == 1  # one of them did arrive (e.g. just before the outage)
    summary = catch_up(AccurateHook(), ledger, started, datetime.now(UTC) + timedelta(minutes=1))
    assert summary["history_rows"] == 5 and summary["failed_deliveries"] == 5 and summary["recovered"] == 4
    again = catch_up(AccurateHook(), ledger, started - timedelta(days=2), datetime.now(UTC))  # two windows
    assert again["recovered"] == 0
    late = [parse_event(e) for d in deliveries for e in d["events"]]
    assert ledger.store(late, received_via="webhook") == 0  # Accurate's late retry: already stored
    with connect(ledger.conn.info.dsn) as conn:
        got = conn.execute(
            "SELECT accurate_number, received_via FROM sync.webhook_events ORDER BY accurate_number"
        )
        assert [(r["accurate_number"], r["received_via"]) for r in got] == [
            (numbers[0], "webhook"),
            *((n, "history") for n in numbers[1:]),
        ]


def test_renewal_keeps_the_subscription_alive_as_the_clock_moves(sandboxes, ledger):
    accurate_url, _ = sandboxes
    target = f"http://127.0.0.1:{_free_port()}/hook"
    httpx.post(f"{accurate_url}/_sandbox/webhook-target", json={"url": target})
    httpx.post(f"{accurate_url}/_sandbox/config", json={"signature_clock": "real"})
    first = renew_subscription(AccurateHook(), ledger)
    httpx.post(f"{accurate_url}/_sandbox/clock", json={"advance_seconds": 6.5 * 86400})
    second = renew_subscription(AccurateHook(), ledger)
    assert datetime.fromisoformat(second["expires_at"]) - datetime.fromisoformat(
        first["expires_at"]
    ) >= timedelta(days=6.4)
    httpx.post(f"{accurate_url}/_sandbox/clock", json={"advance_seconds": 1 * 86400})  # past the first expiry
    subscription = httpx.get(f"{accurate_url}/_sandbox/webhook-target").json()
    assert subscription["active"] is True
    stored = ledger.subscription()
    assert (
        stored is not None
        and stored["expires_text"] == second["expires_text"]
        and stored["last_error"] is None
    )

    httpx.post(f"{accurate_url}/_sandbox/webhook-target", json={"url": None})
    with pytest.raises(Exception, match="renew"):
        renew_subscription(AccurateHook(), ledger)
    assert "renew" in (ledger.subscription() or {}).get("last_error", "")


def _free_port() -> int:
    from tests.integration.test_webhook_receiver import free_port

    return free_port()
