"""Accurate webhooks to iSeller end to end on the real stack (Airflow API server + scheduler, both
sandboxes, PostgreSQL). Nothing is triggered by hand except where a human would: receive items are
saved in the Accurate sandbox through its signed API; the sandbox delivers the webhooks to the
receiver in the Airflow API server; the asset event it emits schedules the ingestion DAG; the
transfers are read back through the iSeller sandbox's API.

- 20 receive items, each a separate delivery, reach the right iSeller outlets; the p50/p95 latency
  from the save to the transfer is printed (not asserted: it depends on the machine);
- duplicates (Accurate re-sending a delivery, or the same body posted twice) are stored once and
  make one transfer; wrong token, malformed, oversized and non-JSON bodies are refused and audited;
- the receiver unreachable during deliveries: the maintenance DAG's catch-up recovers every missed
  event exactly once, and late re-deliveries change nothing;
- a product without SKU in iSeller fails its event alone; after the repair, clearing the failed task
  processes exactly that event;
- the subscription is renewed before it expires while the sandbox clock moves 7.5 days forward
  (this test runs last: the sandbox clock cannot move back, so it leaves the Accurate sandbox
  checking signatures against the real clock).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from include.iseller_accurate.clients import AccurateHook, IsellerHook
from include.iseller_accurate.ledger import dsn_from_connection
from sandbox.demo_shop import NO_SKU_PRODUCT_INDEX, build_demo_shop

INGEST = "accurate_webhooks_to_iseller"
MAINTENANCE = "accurate_webhook_maintenance"
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
OUTLETS = [o for o in SHOP.outlets if not o.is_warehouse]
TOKEN = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
RUN = uuid.uuid4().hex[:6].upper()  # numbers unique to this test session


@pytest.fixture(scope="module")
def stack(airflow, accurate_sandbox_url, iseller_sandbox_url) -> Iterator[dict[str, str]]:
    for dag_id in (INGEST, MAINTENANCE):
        airflow.wait_for_dag(dag_id, timeout=180)
        airflow.unpause(dag_id)
    receiver = f"{airflow.base_url}/integrations/accurate/webhook"
    target = f"{receiver}?token={TOKEN}"
    _sandbox_post(accurate_sandbox_url, "webhook-target", {"url": target})
    yield {
        "receiver": receiver,
        "target": target,
        "accurate": accurate_sandbox_url,
        "iseller": iseller_sandbox_url,
    }
    _sandbox_post(accurate_sandbox_url, "webhook-target", {"url": target})
    _sandbox_post(accurate_sandbox_url, "config", {"webhook_max_attempts": 5})
    _sandbox_post(accurate_sandbox_url, "faults", {"duplicate_webhook_rate": 0})


def _sandbox_post(base: str, route: str, body: dict[str, Any]) -> Any:
    answer = httpx.post(f"{base}/_sandbox/{route}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _ledger(sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn_from_connection(), row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def _receive_item(number: str, lines: list[tuple[str, int]], outlet: Any) -> dict[str, Any]:
    result = AccurateHook().save(
        "receive-item",
        {
            "number": number,
            "receiveNumber": f"SJ-{number}",
            "vendorNo": "V.0001",
            "branchName": outlet.branch_name,
            "warehouseName": outlet.warehouse_name,
            "detailItem": [{"itemNo": s, "quantity": q} for s, q in lines],
        },
    )
    assert result.ok, result.reason
    return result.record or {}


def _transfers(reference: str) -> list[dict[str, Any]]:
    return list(IsellerHook().get_transfers(reference_code=reference))


def _wait_transfers(references: list[str], timeout: float = 120.0) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    found: dict[str, list[dict[str, Any]]] = {}
    while True:
        for reference in references:
            if reference not in found:
                hits = _transfers(reference)
                if hits:
                    found[reference] = hits
        if len(found) == len(references) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _wait_event(number: str, statuses: set[str], timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _ledger("SELECT * FROM sync.webhook_events WHERE accurate_number = %s ORDER BY id", number)
        if rows and rows[0]["status"] in statuses:
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"event of {number} not {statuses} after {timeout}s: {rows}")
        time.sleep(0.5)


def _deliveries(accurate_url: str) -> dict[str, Any]:
    return httpx.get(f"{accurate_url}/_sandbox/webhook-deliveries", timeout=30).json()


def _delivery_of(accurate_url: str, number: str) -> dict[str, Any] | None:
    for delivery in _deliveries(accurate_url)["deliveries"]:
        for event in delivery["events"]:
            if event["data"][0].get("receiveItemNo") == number:
                return delivery
    return None


# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_receive_items_reach_the_right_outlets_within_seconds(stack, capsys):
    """20 deliveries, one receive item each, spaced so that none share a delivery."""
    saved_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    expected: dict[str, Any] = {}
    done = threading.Event()

    def watch() -> None:  # one GetTransfers call per outstanding document, every 0.25 s
        iseller = IsellerHook()
        while not done.is_set():
            for reference in [r for r in list(saved_at) if r not in seen_at]:
                if list(iseller.get_transfers(reference_code=reference)):
                    seen_at[reference] = time.monotonic()
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for i in range(20):
            outlet = OUTLETS[i % len(OUTLETS)]
            number = f"RI.E2E.{RUN}.{i:03d}"
            reference = f"ACC-RI-{number}"
            expected[reference] = outlet
            before = time.monotonic()
            _receive_item(number, [("BRG-0001", 2), (f"BRG-{i % 5 + 2:04d}", i + 1)], outlet)
            saved_at[reference] = before
            time.sleep(1.5)
        deadline = time.monotonic() + 120
        while len(seen_at) < len(saved_at) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        done.set()
        watcher.join(10)
    missing = sorted(set(saved_at) - set(seen_at))
    assert not missing, f"not in iSeller after 2 minutes: {missing}"
    latencies = sorted(seen_at[r] - saved_at[r] for r in saved_at)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    with capsys.disabled():
        print(
            f"\n[webhook latency] {len(latencies)} deliveries, save -> iSeller transfer: "
            f"p50 {statistics.median(latencies):.1f}s, p95 {p95:.1f}s, max {latencies[-1]:.1f}s, "
            f"min {latencies[0]:.1f}s"
        )
    for reference, outlet in expected.items():
        (transfer,) = _transfers(reference)
        assert transfer["type"] == "in" and transfer["to_outlet_id"] == outlet.outlet_id
        assert transfer["supplier_name"] and transfer["status"] == "completed"
        assert any(p["sku"] == "BRG-0001" and Decimal(str(p["quantity"])) == 2 for p in transfer["products"])
    rows = _ledger(
        "SELECT status, iseller_reference FROM sync.webhook_events WHERE accurate_number LIKE %s",
        f"RI.E2E.{RUN}.%",
    )
    assert len(rows) == 20 and {r["status"] for r in rows} == {"done"}


@pytest.mark.timeout(300)
def test_duplicates_are_stored_once_and_bad_requests_refused(stack):
    receiver, accurate = stack["receiver"], stack["accurate"]
    # Accurate re-sending every delivery: one event, one transfer.
    _sandbox_post(accurate, "faults", {"duplicate_webhook_rate": 1.0})
    try:
        number = f"RI.E2E.{RUN}.DUP"
        _receive_item(number, [("BRG-0003", 4)], OUTLETS[0])
        found = _wait_transfers([f"ACC-RI-{number}"])
        assert len(found[f"ACC-RI-{number}"]) == 1
        delivery = _delivery_of(accurate, number)
        assert delivery is not None and len(delivery["attempts"]) == 2
    finally:
        _sandbox_post(accurate, "faults", {"duplicate_webhook_rate": 0})
    assert len(_ledger("SELECT id FROM sync.webhook_events WHERE accurate_number = %s", number)) == 1
    # The same body posted twice; an event type the sync does not handle is ignored, not failed.
    body = [
        {
            "databaseId": 1,
            "type": "ITEM",
            "timestamp": "26/11/2026 10:00:00",
            "uuid": f"e2e-item-{RUN}",
            "data": [{"itemId": 1, "itemNo": f"ITEM-{RUN}", "action": "WRITE"}],
        }
    ]
    first = httpx.post(receiver, params={"token": TOKEN}, json=body, timeout=30)
    second = httpx.post(receiver, params={"token": TOKEN}, json=body, timeout=30)
    assert (first.status_code, first.json()["stored"]) == (200, 1)
    assert (second.status_code, second.json()["duplicates"]) == (200, 1)
    ignored = _wait_event(f"ITEM-{RUN}", {"ignored", "failed"})
    assert ignored["status"] == "ignored" and "not synced to iSeller" in ignored["reason"]
    # Refusals, each recorded for audit.
    before = _ledger("SELECT coalesce(max(id), 0) AS id FROM sync.webhook_rejections")[0]["id"]
    cases = [
        (httpx.post(receiver, params={"token": "wrong"}, json=body, timeout=30), 401),
        (httpx.post(receiver, json=body, timeout=30), 401),
        (
            httpx.post(
                receiver,
                params={"token": TOKEN},
                content=b'[{"uuid": 1',
                timeout=30,
                headers={"Content-Type": "application/json"},
            ),
            400,
        ),
        (httpx.post(receiver, params={"token": TOKEN}, json=[{"type": "ITEM"}], timeout=30), 400),
        (
            httpx.post(
                receiver,
                params={"token": TOKEN},
                content=b"[" + b" " * (600 * 1024) + b"]",
                timeout=30,
                headers={"Content-Type": "application/json"},
            ),
            413,
        ),
        (
            httpx.post(
                receiver,
                params={"token": TOKEN},
                content=json.dumps(body),
                timeout=30,
                headers={"Content-Type": "text/plain"},
            ),
            415,
        ),
    ]
    assert [answer.status_code for answer, _ in cases] == [status for _, status in cases]
    audit = _ledger(
        "SELECT status_code, body_excerpt FROM sync.webhook_rejections WHERE id > %s ORDER BY id", before
    )
    assert [a["status_code"] for a in audit] == [401, 401, 400, 400, 413, 415]
    assert all(TOKEN not in (a["body_excerpt"] or "") for a in audit)


@pytest.mark.timeout(600)
def test_missed_deliveries_are_recovered_exactly_once_by_the_catch_up(stack, airflow):
    accurate = stack["accurate"]
    numbers = [f"RI.E2E.{RUN}.C{i:02d}" for i in range(8)]
    references = [f"ACC-RI-{n}" for n in numbers]
    _sandbox_post(accurate, "config", {"webhook_max_attempts": 1})
    try:
        for number in numbers[:2]:  # receiver up
            _receive_item(number, [("BRG-0004", 1)], OUTLETS[1])
            time.sleep(0.3)
        assert len(_wait_transfers(references[:2])) == 2
        dead = f"http://127.0.0.1:{_free_port()}/integrations/accurate/webhook?token={TOKEN}"
        _sandbox_post(accurate, "webhook-target", {"url": dead})  # the receiver is down
        for number in numbers[2:6]:
            _receive_item(number, [("BRG-0004", 1)], OUTLETS[1])
            time.sleep(0.3)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            missed = [_delivery_of(accurate, n) for n in numbers[2:6]]
            if all(d and d["status"] == "FAILED" for d in missed):
                break
            time.sleep(0.3)
        assert all(d and d["status"] == "FAILED" for d in missed), missed
        _sandbox_post(accurate, "webhook-target", {"url": stack["target"]})  # back up
        for number in numbers[6:]:
            _receive_item(number, [("BRG-0004", 1)], OUTLETS[1])
            time.sleep(0.3)
        assert len(_wait_transfers(references[6:])) == 2
    finally:
        _sandbox_post(accurate, "webhook-target", {"url": stack["target"]})
        _sandbox_post(accurate, "config", {"webhook_max_attempts": 5})

    # The catch-up reads from its bookmark to now. When an earlier session moved the sandbox clock
    # (it only moves forward), the history is in the sandbox's time: read that window explicitly
    # (the backfill params an operator would use).
    clock = httpx.get(f"{accurate}/_sandbox/clock", timeout=30).json()
    conf: dict[str, Any] = {}
    if abs(clock["offset_seconds"]) > 600:
        now = datetime.fromtimestamp(clock["unix"], UTC)
        conf = {"window_start": (now - timedelta(hours=1)).isoformat(), "window_end": now.isoformat()}
    run = airflow.trigger_dag(MAINTENANCE, conf=conf)
    assert airflow.wait_for_run(MAINTENANCE, run["dag_run_id"], timeout=300) == "success"
    states = airflow.task_states(MAINTENANCE, run["dag_run_id"])
    assert states["renew_subscription"] == "success" and states["catch_up"] == "success"
    found = _wait_transfers(references, timeout=180)
    assert {r: len(found.get(r, [])) for r in references} == {r: 1 for r in references}
    rows = _ledger(
        "SELECT accurate_number, received_via, status FROM sync.webhook_events"
        " WHERE accurate_number = ANY(%s) ORDER BY accurate_number",
        numbers,
    )
    assert [r["accurate_number"] for r in rows] == numbers  # one row per event
    via = {r["accurate_number"]: r["received_via"] for r in rows}
    assert {via[n] for n in numbers[2:6]} == {"history"}
    assert {via[n] for n in numbers[:2] + numbers[6:]} == {"webhook"}

    # Accurate's late retries of the missed deliveries: accepted, stored once, nothing new in iSeller.
    for number in numbers[2:6]:
        delivery = _delivery_of(accurate, number)
        assert delivery is not None
        late = httpx.post(stack["receiver"], params={"token": TOKEN}, json=delivery["events"], timeout=30)
        assert late.status_code == 200 and late.json()["stored"] == 0
    time.sleep(5)
    assert {r: len(_transfers(r)) for r in references} == {r: 1 for r in references}


@pytest.mark.timeout(600)
def test_product_without_sku_fails_alone_and_the_refresh_repairs_it(stack, airflow):
    accurate, iseller = stack["accurate"], stack["iseller"]
    product = SHOP.products[NO_SKU_PRODUCT_INDEX]
    sku = f"BRG-{NO_SKU_PRODUCT_INDEX + 1:04d}"
    answer = httpx.post(
        f"{accurate}/_sandbox/items",
        json={"no": sku, "name": product.name, "itemType": "INVENTORY", "unit1Name": product.unit},
    )
    assert answer.status_code == 200, answer.text
    bad, good = f"RI.E2E.{RUN}.NOSKU", f"RI.E2E.{RUN}.OK"
    _receive_item(bad, [(sku, 3), ("BRG-0001", 1)], OUTLETS[2])  # both within one delivery window
    _receive_item(good, [("BRG-0002", 1)], OUTLETS[2])
    failed = _wait_event(bad, {"failed", "done"})
    assert failed["status"] == "failed"
    assert f"item {sku} ({product.name}) has no product with that SKU in iSeller" in failed["reason"]
    assert _wait_event(good, {"done", "failed"})["status"] == "done"
    assert not _transfers(f"ACC-RI-{bad}")
    run_id = failed["run_id"]
    assert airflow.wait_for_run(INGEST, run_id, timeout=180) == "failed"
    assert airflow.task_states(INGEST, run_id)["process_events"] == "failed"
    try:
        patched = httpx.patch(
            f"{iseller}/_sandbox/products/{product.product_id}", json={"sku": sku}, timeout=30
        )
        assert patched.status_code == 200, patched.text
        airflow.clear_task_instances(INGEST, run_id, task_ids=["process_events"])
        assert airflow.wait_for_run(INGEST, run_id, timeout=300) == "success"
        repaired = _ledger(
            "SELECT status, reason, attempts, run_id FROM sync.webhook_events WHERE accurate_number = %s", bad
        )[0]
        assert (repaired["status"], repaired["attempts"], repaired["run_id"]) == ("done", 2, run_id)
        good_row = _ledger(
            "SELECT attempts, run_id FROM sync.webhook_events WHERE accurate_number = %s", good
        )[0]
        if good_row["run_id"] == run_id:  # same run: the refresh did not touch the event that had succeeded
            assert good_row["attempts"] == 1
        (transfer,) = _transfers(f"ACC-RI-{bad}")
        assert transfer["to_outlet_id"] == OUTLETS[2].outlet_id
        assert {p["sku"] for p in transfer["products"]} == {sku, "BRG-0001"}
        assert len(_transfers(f"ACC-RI-{good}")) == 1
    finally:  # give the demo shop its SKU-less product back
        httpx.patch(f"{iseller}/_sandbox/products/{product.product_id}", json={"sku": ""}, timeout=30)


@pytest.mark.timeout(600)
def test_subscription_is_renewed_before_it_expires_as_the_clock_moves(stack, airflow):
    """Runs last in this module: the sandbox clock only moves forward."""
    accurate = stack["accurate"]
    _sandbox_post(accurate, "config", {"signature_clock": "real"})  # our calls are signed with the real clock
    # With a logical date the run has a data interval, as the 15-minute scheduled runs do: their
    # catch-up once failed on pendulum dates while manual runs (no logical date) passed.
    run = airflow.trigger_dag(MAINTENANCE, logical_date=datetime.now(UTC).isoformat())
    assert airflow.wait_for_run(MAINTENANCE, run["dag_run_id"], timeout=300) == "success"
    assert airflow.task_states(MAINTENANCE, run["dag_run_id"])["catch_up"] == "success"
    first = httpx.get(f"{accurate}/_sandbox/webhook-target", timeout=30).json()
    _sandbox_post(accurate, "clock", {"advance_seconds": 6.5 * 86400})  # half a day before expiry
    assert httpx.get(f"{accurate}/_sandbox/webhook-target", timeout=30).json()["active"] is True
    run = airflow.trigger_dag(MAINTENANCE)
    assert airflow.wait_for_run(MAINTENANCE, run["dag_run_id"], timeout=300) == "success"
    renewed = httpx.get(f"{accurate}/_sandbox/webhook-target", timeout=30).json()
    assert renewed["expires_at"] - first["expires_at"] >= 6.4 * 86400
    stored = _ledger("SELECT expires_text, last_error, renewed_at FROM sync.webhook_subscription")[0]
    assert stored["expires_text"] == renewed["expiredDate"]
    assert stored["renewed_at"] > datetime.now(UTC) - timedelta(minutes=5)

    clock = _sandbox_post(accurate, "clock", {"advance_seconds": 86400})  # past the first expiry
    assert clock["unix"] > first["expires_at"]
    number = f"RI.E2E.{RUN}.RENEW"
    _receive_item(number, [("BRG-0005", 2)], OUTLETS[0])
    assert len(_wait_transfers([f"ACC-RI-{number}"]).get(f"ACC-RI-{number}", [])) == 1
    skipped = [
        s for s in _deliveries(accurate)["skipped"] if s["event"]["data"][0].get("receiveItemNo") == number
    ]
    assert not skipped


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
