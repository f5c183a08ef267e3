"""``POST /integrations/iseller/webhook``: iSeller order notifications, the real-time sales trigger.

Served by the Airflow API server through the project's plugin. A notification is checked
(``Signature`` = uppercase hex SHA-256 of api key + raw body + ``Timestamp``, the scheme integrators
describe), stored in the ledger, then turned into an Airflow asset event on
``iseller_order_notifications``. In ``realtime`` mode the sales DAG is scheduled on that asset, so a
burst of notifications coalesces into few DAG runs; the run reads orders by its cursor window, so a
lost notification only delays an order until the periodic poll.

Order of the checks (the cheap ones first, nothing read from an unknown sender beyond the limit):

1. ``Content-Length`` over ``MAX_BODY_BYTES``: 413 at once, the body is not read;
2. a ``Content-Type`` other than JSON: 415 (none at all: accepted, the body must still be JSON);
3. no ``webhook_api_key`` configured: 503; ``Timestamp`` or ``Signature`` missing, or a ``Signature``
   that is not 64 hexadecimal characters: 401; a ``Timestamp`` that is not even ASCII: 400;
4. the body is read up to ``MAX_BODY_BYTES`` (a chunked body is cut off past it: 413);
5. signature (401), ``Timestamp`` (400 unreadable, 401 more than ``MAX_SKEW`` away);
6. the body: nested deeper than ``jsonutil.MAX_DEPTH`` (400), not JSON or a number with an absurd
   exponent such as ``1e999999999`` (400), not an object (400),
   text PostgreSQL cannot store, e.g. a NUL character (400, the reason names the field);
7. stored once per notification: a replay of the same signed request (same ``Timestamp`` and body)
   answers 200 ``{"status": true, "duplicate": true}`` without a second row or asset event. 200, not
   409, because a POS retries what it sees failing; an idempotent success ends the retries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from include.iseller_accurate import jsonutil
from include.iseller_accurate.airflow_internals import record_asset_event
from include.iseller_accurate.ledger import connect, dsn_from_connection, get_connection, migrate
from include.iseller_accurate.schedules import ISELLER_ORDERS
from include.iseller_accurate.web.bodies import declared_length, is_json_type, read_limited

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY_BYTES = 256 * 1024
#: Refuse notifications whose Timestamp is further than this from our clock (replays).
MAX_SKEW = timedelta(minutes=15)
_HEX_SIGNATURE = re.compile(r"[0-9A-Fa-f]{64}")


def iseller_signature(api_key: str, body: bytes, timestamp: str) -> str:
    """Uppercase hex SHA-256 of api key + raw body + timestamp."""
    return hashlib.sha256(api_key.encode() + body + timestamp.encode()).hexdigest().upper()


def notification_key(body: bytes, timestamp: str) -> str:
    """A notification's identity: SHA-256 of its Timestamp and raw body (what its Signature covers)."""
    return hashlib.sha256(timestamp.encode("utf-8", "surrogateescape") + b"\n" + body).hexdigest()


def _api_key() -> str | None:
    try:
        conn = get_connection("iseller_api")
    except Exception:  # noqa: BLE001 - not configured: reported as 503 below
        return None
    return (conn.extra_dejson or {}).get("webhook_api_key")


def _error(status: int, message: str) -> JSONResponse:
    log.warning("iSeller notification refused (HTTP %s): %s", status, message)
    return JSONResponse({"status": False, "error_message": message}, status_code=status)


@router.post("/iseller/webhook", name="iseller_order_webhook")
async def receive(request: Request) -> JSONResponse:
    """Verify, store and signal one iSeller order notification."""
    declared = declared_length(request)
    if declared is not None and declared > MAX_BODY_BYTES:
        return _error(413, f"body of {declared} bytes is larger than {MAX_BODY_BYTES} bytes; not read")
    content_type = request.headers.get("content-type")
    if content_type and not is_json_type(content_type):
        return _error(
            415, f"Content-Type must be application/json, got {jsonutil.printable(content_type, 100)}"
        )
    api_key = _api_key()
    if not api_key:
        return _error(
            503, "iseller_api connection has no extra 'webhook_api_key'; cannot verify notifications"
        )
    timestamp = request.headers.get("Timestamp", "")
    signature = request.headers.get("Signature", "")
    if not timestamp or not signature:
        return _error(401, "missing Timestamp or Signature header")
    if not _HEX_SIGNATURE.fullmatch(signature):
        return _error(401, "Signature header is not 64 hexadecimal characters (SHA-256 in hex)")
    if not timestamp.isascii() or len(timestamp) > 64:
        return _error(400, "Timestamp is not ISO-8601")
    body = await read_limited(request, MAX_BODY_BYTES)
    if body.too_large:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes; reading stopped there")
    if not hmac.compare_digest(signature.upper(), iseller_signature(api_key, body.data, timestamp)):
        return _error(401, "Signature does not match the body and Timestamp for the configured api key")
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
    except ValueError:
        return _error(400, "Timestamp is not ISO-8601")
    if abs(datetime.now(UTC) - sent) > MAX_SKEW:
        return _error(401, "Timestamp too far from the server clock")
    try:
        jsonutil.check_depth(body.data)
        payload = jsonutil.loads(body.data)
    except jsonutil.JsonTooDeep as exc:
        return _error(400, f"body refused: {exc}")
    except ValueError as exc:  # UnicodeDecodeError included
        return _error(400, f"body is not JSON ({jsonutil.printable(str(exc), 120)})")
    if not isinstance(payload, dict):
        return _error(400, "body must be a JSON object (one order notification)")
    problem = jsonutil.unstorable(payload)
    if problem:
        return _error(400, f"body refused: {problem}")
    order_id = str(payload.get("order_id") or "") or None
    from starlette.concurrency import run_in_threadpool

    try:
        new = await run_in_threadpool(
            _store_and_signal, order_id, payload, notification_key(body.data, timestamp)
        )
    except (psycopg.Error, OSError):
        log.exception("Could not store an iSeller notification (order %s); answering 503", order_id)
        return _error(503, "notification not stored (ledger database unavailable); retry later")
    if not new:
        log.info("iSeller notification for order %s received again (same Timestamp and body)", order_id)
        return JSONResponse({"status": True, "duplicate": True})
    return JSONResponse({"status": True})


def _store_and_signal(order_id: str | None, payload: dict[str, Any], key: str) -> bool:
    """Store the notification once; True (and an asset event) when it was new."""
    with connect(dsn_from_connection(), autocommit=True) as conn:
        migrate(conn)
        row = conn.execute(
            "INSERT INTO sync.iseller_notifications (order_id, payload, verified, notification_key)"
            " VALUES (%s, %s, true, %s) ON CONFLICT (notification_key) DO NOTHING RETURNING id",
            (order_id, jsonutil.dumps(payload), key),
        ).fetchone()
    if row is None:
        return False
    _asset_event({"order_id": order_id, "status": payload.get("status")})
    return True


def _asset_event(extra: dict[str, Any]) -> None:
    """Record an asset event so asset-scheduled DAGs (real-time sales) get a run."""
    # Only an active asset (one a DAG schedules on) gets events: in shift_close or scheduled mode
    # the notification is stored and no run is queued.
    if not record_asset_event(ISELLER_ORDERS.name, extra, only_if_scheduled=True):
        log.info("iSeller notification stored; no DAG consumes %s", ISELLER_ORDERS.name)
