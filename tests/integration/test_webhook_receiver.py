"""The Accurate webhook receiver over real HTTP, on a real PostgreSQL, fed by the real Accurate sandbox.

The receiver's router runs in a uvicorn server on a socket (as the Airflow API server serves it);
the asset-event emission is replaced by a recorder (no Airflow metadata database here: the end-to-end
tests cover that part).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI

from include.iseller_accurate.web import accurate_webhook
from include.iseller_accurate.web.accurate_webhook import MAX_BODY_BYTES, RedactTokenFilter

TOKEN = "test-webhook-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn in a background thread, on a real socket."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def connection_json(dsn: str) -> str:
    parts = urlsplit(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parts.hostname,
            "port": parts.port,
            "schema": parts.path.lstrip("/"),
            "login": parts.username or "",
            "password": parts.password or "",
        }
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[ServerThread]:
    app = FastAPI()
    app.include_router(accurate_webhook.router, prefix="/integrations")
    with ServerThread(app) as server:
        yield server


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Asset events the receiver emitted (recorded instead of written to Airflow)."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(accurate_webhook.SIGNALLER, "emit", seen.append)
    monkeypatch.setattr(accurate_webhook.SIGNALLER, "interval", 0.3)
    return seen


@pytest.fixture
def ledger_dsn(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, signals: list[dict[str, Any]]) -> Iterator[str]:
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", connection_json(pg_dsn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": "http://127.0.0.1:9",
                "password": "sandbox-api-token",
                "extra": {"signature_secret": "sandbox-signature-secret", "webhook_token": TOKEN},
            }
        ),
    )
    accurate_webhook.reset_receiver_state()
    yield pg_dsn
    accurate_webhook.reset_receiver_state()


def event(event_type: str = "RECEIVE_ITEM", number: str = "RI.2026.11.00001", **over: Any) -> dict[str, Any]:
    body = {
        "databaseId": 100042,
        "type": event_type,
        "timestamp": "26/11/2026 09:15:00",
        "uuid": str(uuid.uuid4()),
        "data": [{"receiveItemId": 501, "receiveItemNo": number, "action": "WRITE"}],
    }
    body.update(over)
    return body


def post(url: str, body: Any, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
    params = {"token": token} if token is not None else {}
    if isinstance(body, bytes):
        return httpx.post(
            f"{url}/integrations/accurate/webhook", params=params, content=body, timeout=30, **kwargs
        )
    return httpx.post(f"{url}/integrations/accurate/webhook", params=params, json=body, timeout=30, **kwargs)


def rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def test_events_are_stored_before_200_and_duplicates_once(receiver, ledger_dsn, signals):
    first, second = (
        event(),
        event(
            "PURCHASE_RETURN", data=[{"purchaseReturnId": 7, "purchaseReturnNo": "PRT.1", "action": "DELETE"}]
        ),
    )
    answer = post(receiver.url, [first, second, first])
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 2
    stored = rows(
        ledger_dsn,
        "SELECT uuid, event_type, accurate_id, accurate_number, action, status, received_via,"
        " event_timestamp, payload FROM sync.webhook_events ORDER BY id",
    )
    assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in stored] == [
        (first["uuid"], "RECEIVE_ITEM", 501, "RI.2026.11.00001", "WRITE", "pending", "webhook"),
        (second["uuid"], "PURCHASE_RETURN", 7, "PRT.1", "DELETE", "pending", "webhook"),
    ]
    assert stored[0][7].isoformat() == "2026-11-26T02:15:00+00:00"  # 09:15 Jakarta
    assert stored[0][8] == first  # the event exactly as received
    again = post(receiver.url, [second, first])
    assert again.status_code == 200 and again.json() == {
        "s": True,
        "d": ["stored"],
        "stored": 0,
        "duplicates": 2,
    }
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 2
    deadline = time.monotonic() + 5
    while not signals and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signals and signals[0]["new_events"] == 2  # duplicates alone wake nobody


def test_epoch_millis_timestamp_and_single_object(receiver, ledger_dsn):
    one = event(timestamp=1795660500000)
    assert post(receiver.url, one).status_code == 200
    (stamp,) = rows(ledger_dsn, "SELECT event_timestamp FROM sync.webhook_events")[0]
    assert stamp.timestamp() == 1795660500


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_wrong_or_missing_token_is_401_and_audited(receiver, ledger_dsn, token):
    answer = post(receiver.url, [event()], token=token)
    assert answer.status_code == 401
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 0
    (status, reason, body_size, excerpt) = rows(
        ledger_dsn, "SELECT status_code, reason, body_size, body_excerpt FROM sync.webhook_rejections"
    )[0]
    assert status == 401 and "token" in reason and body_size and body_size > 0
    assert excerpt is None  # an unauthenticated body is not kept


def test_oversized_body_is_413(receiver, ledger_dsn):
    big = json.dumps([event(padding="x" * (MAX_BODY_BYTES + 10))]).encode()
    answer = post(receiver.url, big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b"["
        for _ in range(MAX_BODY_BYTES // 1000 + 5):
            yield b" " * 1000
        yield b"]"

    streamed = httpx.post(
        f"{receiver.url}/integrations/accurate/webhook",
        params={"token": TOKEN},
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert streamed.status_code == 413
    audit = rows(
        ledger_dsn, "SELECT status_code, body_size, body_excerpt FROM sync.webhook_rejections ORDER BY id"
    )
    assert [a[0] for a in audit] == [413, 413]
    assert all(TOKEN not in (a[2] or "") for a in audit)


def test_non_json_content_type_is_415(receiver, ledger_dsn):
    answer = post(receiver.url, json.dumps([event()]).encode(), headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    form = httpx.post(
        f"{receiver.url}/integrations/accurate/webhook",
        params={"token": TOKEN},
        data={"uuid": "x"},
        timeout=30,
    )
    assert form.status_code == 415
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 0
    assert [r[0] for r in rows(ledger_dsn, "SELECT status_code FROM sync.webhook_rejections")] == [415, 415]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'[{"uuid": ', "not valid JSON"),
        (b'"hello"', "JSON array"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps([{"type": "RECEIVE_ITEM"}]).encode(), "no uuid"),
        (json.dumps([{"uuid": "u-1"}]).encode(), "no type"),
        (json.dumps([{"uuid": "u-1", "type": "ITEM", "data": {"a": 1}}]).encode(), "data must be a list"),
        (b"\xff\xfe[]", "not valid JSON"),
    ],
)
def test_malformed_body_is_400(receiver, ledger_dsn, body, why):
    answer = post(receiver.url, body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["d"][0]
    (status, excerpt) = rows(ledger_dsn, "SELECT status_code, body_excerpt FROM sync.webhook_rejections")[0]
    assert status == 400 and excerpt


def test_missing_content_type_is_sniffed(receiver, ledger_dsn):
    answer = httpx.post(
        f"{receiver.url}/integrations/accurate/webhook",
        params={"token": TOKEN},
        content=json.dumps([event()]).encode(),
        timeout=30,
    )
    assert answer.status_code == 200


def test_ledger_down_answers_503_so_accurate_retries(receiver, monkeypatch, signals):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": free_port(),
                "schema": "nope",
                "login": "x",
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9", "extra": {"webhook_token": TOKEN}}),
    )
    accurate_webhook.reset_receiver_state()
    try:
        assert post(receiver.url, [event()]).status_code == 503
    finally:
        accurate_webhook.reset_receiver_state()


def test_burst_of_concurrent_deliveries_is_stored_and_signals_coalesce(receiver, ledger_dsn, signals):
    bodies = [[event() for _ in range(3)] for _ in range(96)]

    async def send_all() -> list[int]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            sem = asyncio.Semaphore(32)

            async def one(body: list[dict[str, Any]]) -> int:
                async with sem:
                    answer = await client.post(
                        f"{receiver.url}/integrations/accurate/webhook", params={"token": TOKEN}, json=body
                    )
                    return answer.status_code

            return await asyncio.gather(*(one(b) for b in bodies))

    statuses = asyncio.run(send_all())
    assert statuses == [200] * len(bodies)
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 3 * len(bodies)
    time.sleep(0.8)
    assert 1 <= len(signals) < 20, signals
    assert sum(s["new_events"] for s in signals) == 3 * len(bodies)


def test_token_is_redacted_from_access_log_lines():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/integrations/accurate/webhook?token={TOKEN}&x=1", "1.1", 200),
        None,
    )
    RedactTokenFilter().filter(record)
    assert TOKEN not in record.getMessage()
    assert "token=***&x=1" in record.getMessage()
    assert any(isinstance(f, RedactTokenFilter) for f in logging.getLogger("uvicorn.access").filters)


# ---------------------------------------------------------------------------------------------
# fed by the real Accurate sandbox


@pytest.fixture
def accurate_sandbox() -> Iterator[ServerThread]:
    from sandbox.accurate.app import create_app

    with ServerThread(create_app(seed=42)) as server:
        yield server


def _save_receive_item(accurate_url: str, number: str) -> None:
    from include.iseller_accurate.clients import AccurateHook

    hook = AccurateHook()
    result = hook.save(
        "receive-item",
        {
            "number": number,
            "receiveNumber": f"SJ-{number}",
            "vendorNo": "V.0001",
            "branchName": "Cabang Jakarta",
            "warehouseName": "Gudang Kemang",
            "detailItem": [{"itemNo": "BRG-0001", "quantity": 2}],
        },
    )
    assert result.ok, result.reason


def test_sandbox_deliveries_including_duplicates_are_stored_once(
    receiver, ledger_dsn, accurate_sandbox, monkeypatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": accurate_sandbox.url,
                "password": "sandbox-api-token",
                "extra": {"signature_secret": "sandbox-signature-secret", "webhook_token": TOKEN},
            }
        ),
    )
    accurate_webhook.reset_receiver_state()
    target = f"{receiver.url}/integrations/accurate/webhook?token={TOKEN}"
    assert (
        httpx.post(f"{accurate_sandbox.url}/_sandbox/webhook-target", json={"url": target}).status_code == 200
    )
    httpx.post(f"{accurate_sandbox.url}/_sandbox/faults", json={"duplicate_webhook_rate": 1.0})
    numbers = [f"RI.TEST.{i}" for i in range(3)]
    for number in numbers:
        _save_receive_item(accurate_sandbox.url, number)
        time.sleep(0.15)  # separate deliveries
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        deliveries = httpx.get(f"{accurate_sandbox.url}/_sandbox/webhook-deliveries").json()["deliveries"]
        if len(deliveries) >= 3 and all(len(d["attempts"]) == 2 for d in deliveries):
            break
        time.sleep(0.1)
    assert all(a["statusCode"] == 200 for d in deliveries for a in d["attempts"])  # each sent twice
    stored = rows(ledger_dsn, "SELECT accurate_number FROM sync.webhook_events ORDER BY accurate_number")
    assert [r[0] for r in stored] == numbers


def test_a_uuid_reused_for_a_different_event_is_kept_not_dropped(receiver, ledger_dsn):
    """Real duplicates carry the same type, timestamp and data; a reused uuid (e.g. a sandbox restarted
    with the same seed) does not, and must not hide the new event."""
    original = event(number="RI.1")
    reused = {**event(number="RI.2", timestamp="27/11/2026 10:00:00"), "uuid": original["uuid"]}
    assert post(receiver.url, [original]).json()["stored"] == 1
    answer = post(receiver.url, [reused])
    assert answer.json()["stored"] == 1, answer.text
    for body in ([reused], [original]):  # both delivered once more: nothing new
        assert post(receiver.url, body).json() == {"s": True, "d": ["stored"], "stored": 0, "duplicates": 1}
    stored = rows(ledger_dsn, "SELECT uuid, accurate_number FROM sync.webhook_events ORDER BY id")
    assert [r[1] for r in stored] == ["RI.1", "RI.2"]
    assert stored[0][0] == original["uuid"] and stored[1][0].startswith(original["uuid"] + "~")


# ---------------------------------------------------------------------------------------------
# hostile input (issue 9)


def test_accurate_nul_event_beside_a_valid_one_stores_the_valid_one(receiver, ledger_dsn, signals):
    """Defect 5: one event with \\u0000 made the whole delivery 503 (retried forever), nothing stored."""
    good = event(number="RI.GOOD")
    bad = event(number="RI.BAD\u0000X")
    answer = post(receiver.url, [good, bad])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 1
    assert [(r["index"], r["uuid"]) for r in body["rejected"]] == [(1, bad["uuid"])]
    assert "NUL" in body["rejected"][0]["reason"]
    assert [r[0] for r in rows(ledger_dsn, "SELECT accurate_number FROM sync.webhook_events")] == ["RI.GOOD"]
    (status, reason, excerpt) = rows(
        ledger_dsn, "SELECT status_code, reason, body_excerpt FROM sync.webhook_rejections"
    )[0]
    assert status == 422 and bad["uuid"] in reason and "data[0].receiveItemNo" in reason
    assert "\\u0000" in excerpt and TOKEN not in excerpt


def test_accurate_nul_event_alone_is_400_with_reason_and_recorded(receiver, ledger_dsn):
    bad = event(number="RI\u0000")
    answer = post(receiver.url, [bad])
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.json()["d"][0]
    (status, reason) = rows(ledger_dsn, "SELECT status_code, reason FROM sync.webhook_rejections")[0]
    assert status == 400 and bad["uuid"] in reason
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 0


def test_accurate_lone_surrogate_and_raw_nul_byte_are_refused_not_500(receiver, ledger_dsn):
    good = event(number="RI.OK")
    surrogate = json.dumps([good, {**event(), "type": "\ud800"}], ensure_ascii=True).encode()
    answer = post(receiver.url, surrogate, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1 and "surrogate" in answer.json()["rejected"][0]["reason"]
    raw_nul = b'[{"uuid": "u-\x00", "type": "ITEM"}]'  # a raw NUL byte: not even JSON
    answer = post(receiver.url, raw_nul, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    excerpts = [r[0] for r in rows(ledger_dsn, "SELECT body_excerpt FROM sync.webhook_rejections")]
    assert any(e and "u-\\u0000" in e for e in excerpts)  # recorded (text columns refuse a raw NUL)


def test_accurate_deep_json_is_400(receiver, ledger_dsn):
    """Defect 6: 100,000-deep nesting on the Accurate receiver was a bare 500."""
    body = b"[" * 100_000 + b"]" * 100_000
    answer = post(receiver.url, body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "nested deeper than" in answer.json()["d"][0]
    deep_event = json.dumps([{**event(), "data": [{"x": 1}]}]).encode().replace(
        b'{"x": 1}', b'{"x": ' + b"[" * 100 + b"]" * 100 + b"}"
    )
    assert post(receiver.url, deep_event, headers={"Content-Type": "application/json"}).status_code == 400


def test_accurate_wrong_token_reason_is_plain(receiver, ledger_dsn):
    answer = post(receiver.url, [event()], token="nope")
    assert answer.status_code == 401 and answer.json()["d"] == ["wrong token"]


def test_accurate_number_with_an_absurd_exponent_is_400(receiver, ledger_dsn):
    body = json.dumps([event()]).encode().replace(b'"databaseId": 100042', b'"databaseId": 1e999999999')
    answer = post(receiver.url, body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.json()["d"][0]
    assert rows(ledger_dsn, "SELECT count(*) FROM sync.webhook_events")[0][0] == 0
