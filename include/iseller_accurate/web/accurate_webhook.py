"""``POST /integrations/accurate/webhook?token=<secret>``: Accurate's webhook deliveries.

Served by the Airflow API server through the project's plugin. Accurate signs nothing and documents
no retry, so the receiver's only jobs are to authenticate, to store every event durably, and to
answer fast:

1. the ``token`` query parameter is compared in constant time with the extra ``webhook_token`` of
   connection ``accurate_api`` (wrong or missing: 401);
2. the body is read up to ``MAX_BODY_BYTES`` (a larger ``Content-Length``: 413 before reading; a
   chunked body: 413 as soon as it passes the limit), must be JSON by its ``Content-Type``
   (``application/json`` or ``*+json``; another type: 415; none: sniffed), nest no deeper than
   ``jsonutil.MAX_DEPTH`` and be a JSON array of events (else 400);
3. each event is checked on its own (a ``uuid``, a ``type``, text PostgreSQL can store: no NUL
   character). The good events go to ``sync.webhook_events`` in **one**
   ``INSERT ... ON CONFLICT (uuid) DO NOTHING`` on a small pool of async connections (autocommit:
   committed before the answer); only then 200. A duplicate delivery is answered 200 too, and stored
   once. A bad event beside good ones is recorded in ``sync.webhook_rejections`` (status 422, its
   reason and excerpt) and named in the 200's ``rejected`` list: the same body would be refused
   again, so Accurate must not retry it. A delivery with no good event at all is answered 400;
4. new events wake the ingestion DAG through an Airflow asset event on ``accurate_webhook_events``,
   emitted off the request path and coalesced (at most one every ``SIGNAL_INTERVAL`` seconds), so a
   burst of deliveries makes few metadata writes and the 200 never waits for Airflow.

Every refused request is recorded in ``sync.webhook_rejections`` (status, reason, size, content type,
the first bytes of the body; never the token). If the ledger database is down the answer is 503, so
that Accurate retries; the maintenance DAG's history catch-up recovers what is still missing.
The token is redacted from the API server's access log (it travels in the URL).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from starlette.responses import Response

from include.iseller_accurate import jsonutil
from include.iseller_accurate.airflow_internals import record_asset_event
from include.iseller_accurate.ledger import (
    SYNC_DB_CONN_ID,
    connect,
    dsn_from_connection,
    get_connection,
    migrate,
)
from include.iseller_accurate.purchases.events import ACCURATE_WEBHOOK_EVENTS, DeliveryError, split_delivery
from include.iseller_accurate.purchases.store import (
    INSERT_EVENTS_SQL,
    INSERT_REJECTION_SQL,
    insert_params,
    rekeyed,
    stored_and_collisions,
)
from include.iseller_accurate.web.bodies import EXCERPT_BYTES, declared_length, is_json_type, read_limited

log = logging.getLogger(__name__)
router = APIRouter()

#: Accurate sends at most 100 events of a few hundred bytes each; 512 KiB leaves ample room.
MAX_BODY_BYTES = 512 * 1024
#: Connections to the ledger database kept by each API server worker (env SYNC_WEBHOOK_POOL_SIZE).
POOL_SIZE = int(os.environ.get("SYNC_WEBHOOK_POOL_SIZE", "8"))
#: Seconds a delivery may wait for a free connection before it is answered 503.
POOL_TIMEOUT = 10.0
#: Minimum seconds between two asset events, the first of a burst goes at once
#: (env SYNC_WEBHOOK_SIGNAL_INTERVAL).
SIGNAL_INTERVAL = float(os.environ.get("SYNC_WEBHOOK_SIGNAL_INTERVAL", "1.0"))
#: How long the token and the ledger DSN read from the connections are trusted.
CONFIG_TTL = 60.0
ACCURATE_CONN_ID = "accurate_api"


# ---------------------------------------------------------------------------------------------
# a tiny async connection pool (psycopg_pool is not a dependency of the project)


class AsyncConnectionPool:
    """At most ``size`` autocommit connections, opened lazily, reused, replaced when broken."""

    def __init__(self, dsn: str, size: int = POOL_SIZE, timeout: float = POOL_TIMEOUT) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout = timeout
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one unit of work; returned to the pool unless it broke."""
        await asyncio.wait_for(self._slots.acquire(), self.timeout)
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while self._idle and conn is None:
                candidate = self._idle.pop()
                if candidate.closed or candidate.broken:
                    await candidate.close()
                else:
                    conn = candidate
            if conn is None:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=int(self.timeout)
                )
            yield conn
        except BaseException:
            if conn is not None:
                await conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                if conn.closed or conn.broken:
                    await conn.close()
                else:
                    self._idle.append(conn)
            self._slots.release()

    async def execute(self, sql: str, params: Any, *, fetch: bool = False) -> list[Any]:
        """Run one statement; a connection found dead (server restarted) is replaced once."""
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    cursor = await conn.execute(sql, params)
                    return await cursor.fetchall() if fetch else []
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                log.warning("A ledger connection of the webhook receiver was lost; retrying on a new one")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            await self._idle.pop().close()


# ---------------------------------------------------------------------------------------------
# configuration read from Airflow connections, cached


class _Config:
    """The receiver's token and ledger DSN, re-read every ``CONFIG_TTL`` seconds."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.dsn: str | None = None
        self.loaded_at = float("-inf")
        self.migrated_dsn: str | None = None
        self.pool: AsyncConnectionPool | None = None
        self.pool_loop: asyncio.AbstractEventLoop | None = None
        self.lock: asyncio.Lock | None = None
        self.lock_loop: asyncio.AbstractEventLoop | None = None
        self.refresher: asyncio.Task[None] | None = None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self.lock is None or self.lock_loop is not loop:
            self.lock, self.lock_loop = asyncio.Lock(), loop
        return self.lock

    async def refresh(self) -> None:
        """Re-read the connections when the cache is stale (one reader at a time).

        Once loaded, a stale cache is refreshed in the background and the request goes on with the
        values it has, so a slow secrets backend never stalls a burst of deliveries.
        """
        if time.monotonic() - self.loaded_at < CONFIG_TTL:
            return
        if self.dsn is not None and self.token is not None:
            if self.refresher is None or self.refresher.done():
                self.refresher = asyncio.get_running_loop().create_task(self._background_reload())
            return
        await self._reload()

    async def _background_reload(self) -> None:
        try:
            await self._reload()
        except Exception:  # noqa: BLE001 - keep serving with the values we have
            log.exception("Could not re-read the webhook receiver's connections; keeping the previous ones")

    async def _reload(self) -> None:
        async with self._lock():
            if time.monotonic() - self.loaded_at < CONFIG_TTL:
                return
            token, dsn = await asyncio.to_thread(_read_connections)
            if dsn and self.migrated_dsn != dsn:
                await asyncio.to_thread(_migrate, dsn)  # the tables exist before any insert
                self.migrated_dsn = dsn
            self.token, self.dsn = token, dsn
            self.loaded_at = time.monotonic()

    def current_pool(self) -> AsyncConnectionPool:
        """The pool of this event loop for the current DSN."""
        loop = asyncio.get_running_loop()
        if self.dsn is None:
            raise RuntimeError("ledger DSN not loaded")
        if self.pool is None or self.pool_loop is not loop or self.pool.dsn != self.dsn:
            self.pool, self.pool_loop = AsyncConnectionPool(self.dsn), loop
        return self.pool


def _read_connections() -> tuple[str | None, str]:
    """(webhook token or None when the connection has none, ledger DSN); raises when unreadable."""
    extra = get_connection(ACCURATE_CONN_ID).extra_dejson or {}
    token = str(extra.get("webhook_token") or "") or None
    return token, dsn_from_connection(SYNC_DB_CONN_ID)


def _migrate(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        migrate(conn)


CONFIG = _Config()


def reset_receiver_state() -> None:
    """Forget cached configuration and connections (tests; changed connections are seen after CONFIG_TTL)."""
    global CONFIG
    CONFIG = _Config()
    SIGNALLER.reset()


# ---------------------------------------------------------------------------------------------
# waking the ingestion DAG


def emit_asset_event(extra: dict[str, Any]) -> None:
    """Record an asset event on ``accurate_webhook_events`` (queues a run of the ingestion DAG)."""
    if not record_asset_event(ACCURATE_WEBHOOK_EVENTS.name, extra):
        log.warning(
            "Accurate webhook events stored, but no DAG is scheduled on %s yet",
            ACCURATE_WEBHOOK_EVENTS.name,
        )


class Signaller:
    """Coalesces "new events stored" into few asset events: the first at once, then one per interval."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], interval: float = SIGNAL_INTERVAL) -> None:
        self.emit = emit
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        """Drop the background task's state (a new event loop starts afresh)."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_events = 0
        self.emitted = 0

    def notify(self, new_events: int) -> None:
        """Some events were stored: make sure an asset event follows soon (never blocks)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._wake = asyncio.Event()
            self._loop = loop
            self._task = loop.create_task(self._run(self._wake))
        assert self._wake is not None
        self._new_events += new_events
        self._wake.set()

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            count, self._new_events = self._new_events, 0
            try:
                await asyncio.to_thread(self.emit, {"new_events": count})
                self.emitted += 1
            except Exception:  # noqa: BLE001 - events are stored; the DAG's periodic run picks them up
                log.exception("Could not emit the asset event for %d new Accurate webhook events", count)
            await asyncio.sleep(self.interval)


SIGNALLER = Signaller(emit_asset_event)


# ---------------------------------------------------------------------------------------------
# the route


def _answer(status: int, message: str, **extra: Any) -> Response:
    body = {"s": 200 <= status < 300, "d": [message], **extra}
    return Response(jsonutil.dumps(body), status_code=status, media_type="application/json")


def _excerpt(body: bytes, *secrets: str | None) -> str | None:
    if not body:
        return None
    text = body[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "\\u0000")  # text column
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


async def _reject(
    request: Request,
    status: int,
    reason: str,
    *,
    body: bytes = b"",
    size: int | None = None,
    given_token: str | None = None,
) -> Response:
    await _record_rejection(request, status, reason, _excerpt(body, given_token, CONFIG.token), size)
    return _answer(status, reason)


async def _record_rejection(
    request: Request, status: int, reason: str, excerpt: str | None, size: int | None
) -> None:
    """One row of ``sync.webhook_rejections`` (best effort: the answer matters more)."""
    content_type = request.headers.get("content-type")
    client = request.client.host if request.client else None
    log.warning("Accurate webhook refused (HTTP %s) from %s: %s", status, client, reason)
    if not CONFIG.dsn:
        return
    try:
        await CONFIG.current_pool().execute(
            INSERT_REJECTION_SQL,
            (
                client,
                status,
                jsonutil.printable(reason, 2000),
                jsonutil.printable(content_type, 200) if content_type else None,
                size,
                excerpt,
            ),
        )
    except Exception:  # noqa: BLE001 - the answer matters more than the audit row
        log.exception("Could not record a refused Accurate webhook delivery")


@router.post("/accurate/webhook", name="accurate_webhook")
async def receive(request: Request) -> Response:
    """Authenticate, store durably, answer, then wake the ingestion DAG."""
    try:
        await CONFIG.refresh()
    except Exception:  # noqa: BLE001 - connections unreadable, or the ledger database down while migrating
        log.exception("Accurate webhook receiver not ready")
        return _answer(503, "receiver not ready (connections or ledger database unavailable); retry later")
    given = request.query_params.get("token") or ""
    expected = CONFIG.token
    if not expected:
        return await _reject(request, 503, f"connection {ACCURATE_CONN_ID} has no extra 'webhook_token'")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        return await _reject(
            request, 401, "wrong token" if given else "missing token", size=declared_length(request)
        )
    limited = await read_limited(request, MAX_BODY_BYTES)
    body, size = limited.data, limited.size
    if limited.too_large:
        return await _reject(
            request, 413, f"body larger than {MAX_BODY_BYTES} bytes", body=body, size=size, given_token=given
        )
    content_type = request.headers.get("content-type")
    if content_type and not is_json_type(content_type):
        return await _reject(
            request,
            415,
            f"Content-Type must be application/json, got {jsonutil.printable(content_type, 100)}",
            body=body,
            size=size,
            given_token=given,
        )
    try:
        events, rejected = split_delivery(body)
    except DeliveryError as exc:
        return await _reject(request, 400, str(exc), body=body, size=size, given_token=given)
    if rejected and not events:  # nothing usable: the whole delivery is refused
        reason = "; ".join(r.reason for r in rejected[:5]) + (
            f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
        )
        return await _reject(request, 400, reason, body=body, size=size, given_token=given)
    if not events:
        return _answer(200, "no events", stored=0, duplicates=0)
    try:
        pool = CONFIG.current_pool()
        rows = await pool.execute(INSERT_EVENTS_SQL, insert_params(events, "webhook"), fetch=True)
        stored, collisions = stored_and_collisions(rows)
        if collisions:  # a uuid reused for another event: keep both
            again = await pool.execute(
                INSERT_EVENTS_SQL, insert_params(rekeyed(events, collisions), "webhook"), fetch=True
            )
            stored += stored_and_collisions(again)[0]
    except (psycopg.Error, TimeoutError, OSError):
        log.exception(
            "Could not store %d Accurate webhook events; answering 503 so that Accurate retries", len(events)
        )
        return _answer(503, "events not stored (ledger database unavailable); retry later")
    if stored:
        SIGNALLER.notify(stored)
    if not rejected:
        return _answer(200, "stored", stored=stored, duplicates=len(events) - stored)
    # The good events are stored; each bad one is on record, and the 200 ends Accurate's retries
    # (the same body would be refused again).
    for item in rejected:
        await _record_rejection(
            request, 422, f"{item.reason} (the other events of the delivery were stored)", item.excerpt, size
        )
    return _answer(
        200,
        f"stored; {len(rejected)} event(s) refused",
        stored=stored,
        duplicates=len(events) - stored,
        rejected=[{"index": r.index, "uuid": r.uuid, "reason": r.reason} for r in rejected],
    )


# ---------------------------------------------------------------------------------------------
# keep the token out of the access log

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"]*")


class RedactTokenFilter(logging.Filter):
    """Replaces ``token=...`` in access-log lines (uvicorn passes the path with its query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1***", arg) if isinstance(arg, str) and "token=" in arg else arg
                for arg in record.args
            )
        elif isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1***", record.msg)
        return True


def install_access_log_filter() -> None:
    """Attach :class:`RedactTokenFilter` to uvicorn's access logger (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokenFilter) for f in access.filters):
        access.addFilter(RedactTokenFilter())


install_access_log_filter()
