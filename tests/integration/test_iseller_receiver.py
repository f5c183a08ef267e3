"""The iSeller order-notification receiver against hostile input, on a real PostgreSQL ledger.

The receiver runs in-process: as a raw ASGI app (so a test can count the body bytes the handler
pulls from the client) or through httpx's ASGI transport; the asset event it would write to
Airflow's metadata database is recorded instead. (The Accurate receiver's bad-input tests are in
test_webhook_receiver.py.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from include.iseller_accurate.web import iseller_webhook
from include.iseller_accurate.web.iseller_webhook import MAX_BODY_BYTES, iseller_signature
from tests.integration.test_webhook_receiver import connection_json, rows

API_KEY = "iseller-webhook-key-0123"
PATH = "/integrations/iseller/webhook"


# ---------------------------------------------------------------------------------------------
# the iSeller receiver, in-process


@pytest.fixture
def iseller_app(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, list[Any]]]:
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", connection_json(pg_dsn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ISELLER_API",
        json.dumps(
            {"conn_type": "http", "host": "http://127.0.0.1:9", "extra": {"webhook_api_key": API_KEY}}
        ),
    )
    emitted: list[Any] = []
    monkeypatch.setattr(iseller_webhook, "_asset_event", emitted.append)
    app = FastAPI()
    app.include_router(iseller_webhook.router, prefix="/integrations")
    yield app, emitted


def stamp(delta: timedelta = timedelta(0)) -> str:
    now = datetime.now(UTC) + delta
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def signed(body: bytes, timestamp: str | None = None, **headers: str) -> dict[str, str]:
    timestamp = timestamp or stamp()
    return {
        "Content-Type": "application/json",
        "Timestamp": timestamp,
        "Signature": iseller_signature(API_KEY, body, timestamp),
        **headers,
    }


def order(order_id: str = "ord-1", **over: Any) -> bytes:
    body = {"order_id": order_id, "order_reference": "#A-1", "status": "completed", **over}
    return json.dumps(body).encode()


def send(app: FastAPI, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            raw = {k: v.encode("utf-8") for k, v in headers.items()}  # non-ASCII sent as UTF-8 bytes
            return await client.post(PATH, content=body, headers=raw)

    return asyncio.run(go())


def stored_notifications(dsn: str) -> list[tuple[Any, ...]]:
    try:
        return rows(dsn, "SELECT order_id, payload FROM sync.iseller_notifications ORDER BY id")
    except psycopg.errors.UndefinedTable:
        return []


class CountingBody:
    """A raw ASGI call whose body is produced lazily: records how many bytes the app pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.consumed = total, chunk, 0

    async def receive(self) -> dict[str, Any]:
        if self.consumed >= self.total:
            await asyncio.sleep(3600)  # a client that never sends more
        size = min(self.chunk, self.total - self.consumed)
        self.consumed += size
        return {"type": "http.request", "body": b" " * size, "more_body": self.consumed < self.total}


def call_asgi(app: FastAPI, headers: dict[str, str], body: CountingBody) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send_(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("receiver", 80),
    }
    asyncio.run(asyncio.wait_for(app(scope, body.receive, send_), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


HUGE = 300 * 1024 * 1024


def test_iseller_huge_body_with_content_length_is_refused_unread(iseller_app):
    """Defect 3: 300 MB with a bad signature; the old receiver read all of it before answering 413."""
    app, _ = iseller_app
    body = CountingBody(HUGE)
    headers = {"Content-Type": "application/json", "Content-Length": str(HUGE), "Timestamp": stamp()}
    status, answer = call_asgi(app, {**headers, "Signature": "0" * 64}, body)
    assert status == 413, answer
    assert body.consumed == 0
    assert "larger than" in json.loads(answer)["error_message"]


def test_iseller_huge_chunked_body_is_cut_off_at_the_limit(iseller_app):
    app, _ = iseller_app
    body = CountingBody(HUGE)
    headers = {"Content-Type": "application/json", "Timestamp": stamp(), "Signature": "0" * 64}
    status, _ = call_asgi(app, headers, body)
    assert status == 413
    assert body.consumed <= MAX_BODY_BYTES + body.chunk


def test_iseller_replay_is_stored_once_and_signals_once(iseller_app, pg_dsn):
    """Defect 4: the same signed request replayed 8 times was stored 8 times."""
    app, emitted = iseller_app
    body = order()
    headers = signed(body)
    answers = [send(app, body, headers) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8
    assert answers[0].json() == {"status": True}
    assert all(a.json() == {"status": True, "duplicate": True} for a in answers[1:])
    assert len(stored_notifications(pg_dsn)) == 1
    assert len(emitted) == 1
    # a retry by iSeller (new Timestamp, so a new signature) is a new notification
    assert send(app, body, signed(body, stamp(timedelta(seconds=1)))).json() == {"status": True}
    assert len(stored_notifications(pg_dsn)) == 2


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_iseller_wrong_content_type_is_415(iseller_app, pg_dsn, content_type):
    app, emitted = iseller_app
    body = order()
    answer = send(app, body, signed(body, **{"Content-Type": content_type}))
    assert answer.status_code == 415, answer.text
    assert "Content-Type" in answer.json()["error_message"]
    assert stored_notifications(pg_dsn) == [] and emitted == []


def test_iseller_missing_content_type_is_still_accepted(iseller_app, pg_dsn):
    app, _ = iseller_app
    body = order()
    headers = signed(body)
    del headers["Content-Type"]
    assert send(app, body, headers).status_code == 200


def test_iseller_deep_json_is_400(iseller_app, pg_dsn):
    """Defect 6: 100,000-deep nesting crashed the parser (bare 500)."""
    app, _ = iseller_app
    body = b"[" * 100_000 + b"]" * 100_000  # 200,000 bytes: within the size limit
    answer = send(app, body, signed(body))
    assert answer.status_code == 400, answer.text
    assert "nested deeper than" in answer.json()["error_message"]
    assert stored_notifications(pg_dsn) == []


def test_iseller_number_with_an_absurd_exponent_is_400(iseller_app, pg_dsn):
    """1e999999999 would be written out with a billion digits when stored."""
    app, _ = iseller_app
    body = b'{"order_id": "ord-1", "total": 1e999999999}'
    answer = send(app, body, signed(body))
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.json()["error_message"]
    assert stored_notifications(pg_dsn) == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b'{"order_id": "ord\\u00001", "status": "completed"}', "order_id contains a NUL character"),
        (b'{"order_id": "ord-1", "notes": ["a", "b\\u0000"]}', "notes[1] contains a NUL character"),
        (b'{"order_id": "ord-1", "k\\u0000": 1}', "the key"),
        (b'{"order_id": "ord-1", "status": "\\ud800"}', "status contains a lone UTF-16 surrogate"),
    ],
    ids=["nul-in-order-id", "nul-in-a-list", "nul-in-a-key", "lone-surrogate"],
)
def test_iseller_unstorable_text_is_400_with_the_field(iseller_app, pg_dsn, payload, where):
    """Defect 6: a NUL in an iSeller payload was a bare 500 (PostgreSQL refuses it)."""
    app, emitted = iseller_app
    answer = send(app, payload, signed(payload))
    assert answer.status_code == 400, answer.text
    assert where in answer.json()["error_message"]
    assert stored_notifications(pg_dsn) == [] and emitted == []


@pytest.mark.parametrize(
    "signature", ["é" * 64, "ü", "Z" * 64, "abc"], ids=["non-ascii-64", "non-ascii-1", "not-hex", "short"]
)
def test_iseller_malformed_signature_header_is_401(iseller_app, pg_dsn, signature):
    """Defect 6: a non-ASCII Signature made hmac.compare_digest raise TypeError (bare 500)."""
    app, _ = iseller_app
    body = order()
    answer = send(app, body, signed(body, Signature=signature))
    assert answer.status_code == 401, answer.text
    assert "Signature" in answer.json()["error_message"]


def test_iseller_non_ascii_timestamp_is_refused_not_500(iseller_app):
    app, _ = iseller_app
    body = order()
    timestamp = stamp() + "é"
    answer = send(app, body, signed(body, timestamp))
    assert answer.status_code == 400 and "Timestamp" in answer.json()["error_message"]
