"""``POST /integrations/iseller/webhook``: iSeller order notifications, the real-time sales trigger.

Served by the Airflow API server through the project's plugin. A notification is checked
(``Signature`` = uppercase hex SHA-256 of api key + raw body + ``Timestamp``, the scheme integrators
describe), stored in the ledger, then turned into an Airflow asset event on
``iseller_order_notifications``. In ``realtime`` mode the sales DAG is scheduled on that asset, so a
burst of notifications coalesces into few DAG runs; the run reads orders by its cursor window, so a
lost notification only delays an order until the periodic poll.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from include.iseller_accurate import jsonutil
from include.iseller_accurate.airflow_internals import record_asset_event
from include.iseller_accurate.ledger import connect, dsn_from_connection, get_connection, migrate
from include.iseller_accurate.schedules import ISELLER_ORDERS

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY_BYTES = 256 * 1024
#: Refuse notifications whose Timestamp is further than this from our clock (replays).
MAX_SKEW = timedelta(minutes=15)


def iseller_signature(api_key: str, body: bytes, timestamp: str) -> str:
    """Uppercase hex SHA-256 of api key + raw body + timestamp."""
    return hashlib.sha256(api_key.encode() + body + timestamp.encode()).hexdigest().upper()


def _api_key() -> str | None:
    try:
        conn = get_connection("iseller_api")
    except Exception:  # noqa: BLE001 - not configured: reported as 503 below
        return None
    return (conn.extra_dejson or {}).get("webhook_api_key")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": False, "error_message": message}, status_code=status)


@router.post("/iseller/webhook", name="iseller_order_webhook")
async def receive(request: Request) -> JSONResponse:
    """Verify, store and signal one iSeller order notification."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    api_key = _api_key()
    if not api_key:
        return _error(
            503, "iseller_api connection has no extra 'webhook_api_key'; cannot verify notifications"
        )
    timestamp = request.headers.get("Timestamp", "")
    signature = request.headers.get("Signature", "")
    if not timestamp or not signature:
        return _error(401, "missing Timestamp or Signature header")
    if not hmac.compare_digest(signature.upper(), iseller_signature(api_key, body, timestamp)):
        return _error(401, "Signature does not match the body and Timestamp for the configured api key")
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
    except ValueError:
        return _error(400, "Timestamp is not ISO-8601")
    if abs(datetime.now(UTC) - sent) > MAX_SKEW:
        return _error(401, "Timestamp too far from the server clock")
    try:
        payload = jsonutil.loads(body)
    except ValueError:
        return _error(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _error(400, "body must be a JSON object (one order notification)")
    order_id = str(payload.get("order_id") or "") or None
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(_store_and_signal, order_id, payload)
    return JSONResponse({"status": True})


def _store_and_signal(order_id: str | None, payload: dict[str, Any]) -> None:
    with connect(dsn_from_connection(), autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO sync.iseller_notifications (order_id, payload, verified) VALUES (%s, %s, true)",
            (order_id, jsonutil.dumps(payload)),
        )
    _asset_event({"order_id": order_id, "status": payload.get("status")})


def _asset_event(extra: dict[str, Any]) -> None:
    """Record an asset event so asset-scheduled DAGs (real-time sales) get a run."""
    # Only an active asset (one a DAG schedules on) gets events: in shift_close or scheduled mode
    # the notification is stored and no run is queued.
    if not record_asset_event(ISELLER_ORDERS.name, extra, only_if_scheduled=True):
        log.info("iSeller notification stored; no DAG consumes %s", ISELLER_ORDERS.name)
