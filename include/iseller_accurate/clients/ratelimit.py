"""Rate limiting for the Accurate API: 8 request starts per second and 8 requests in flight.

Accurate's limit holds for the whole deployment (every task of every worker uses the same token), so
production uses ``PostgresRateLimiter`` on the sync ledger database; ``LocalRateLimiter`` covers one
process (unit tests, a single local worker).

Both space request *starts* by ``1/rate`` seconds plus a small safety margin (wake-up and network
jitter would otherwise let a 9th request land inside the server's 1-second window), and cap the
number of requests running at once. A caller waits for a free in-flight slot first, then for its
start time, and holds the slot until the request has its answer.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

log = logging.getLogger(__name__)

#: The migration holding the limiter's tables (also applied by the project's migration runner).
MIGRATION_FILE = Path(__file__).resolve().parent.parent / "migrations" / "0002_accurate_rate_limit.sql"

ACCURATE_RATE = 8.0
ACCURATE_MAX_IN_FLIGHT = 8
#: Added to 1/rate between starts: 8 starts then span 1.08 s, so jitter cannot squeeze a 9th into 1 s.
DEFAULT_SAFETY_MARGIN = 0.01


class RateLimiter(ABC):
    """Something that decides when a request may start; shared by all threads using one hook."""

    @abstractmethod
    def slot(self) -> AbstractContextManager[None]:
        """Block until a request may start; the request runs inside the ``with`` block.

        The in-flight slot is released when the block exits, whatever the outcome.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most limiters hold nothing
        """Release resources held by the limiter (connections); it may be used again afterwards."""


def _interval(rate: float, safety_margin: float) -> float:
    if rate <= 0:
        raise ValueError("rate must be positive")
    if safety_margin < 0:
        raise ValueError("safety_margin must not be negative")
    return 1.0 / rate + safety_margin


class LocalRateLimiter(RateLimiter):
    """Rate limit for the threads of one process: a semaphore plus spacing of request starts."""

    def __init__(
        self,
        rate: float = ACCURATE_RATE,
        max_in_flight: int = ACCURATE_MAX_IN_FLIGHT,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.rate = rate
        self.max_in_flight = max_in_flight
        self._interval = _interval(rate, safety_margin)
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._next_start = 0.0  # time.monotonic() of the earliest next start

    @contextmanager
    def _slot(self) -> Iterator[None]:
        self._in_flight.acquire()
        try:
            with self._lock:
                now = time.monotonic()
                start = max(self._next_start, now)
                self._next_start = start + self._interval
            if start > now:
                time.sleep(start - now)
            yield
        finally:
            self._in_flight.release()

    def slot(self) -> AbstractContextManager[None]:
        """Block until a request may start (free slot, then start time); release the slot on exit."""
        return self._slot()

    def __repr__(self) -> str:
        return f"LocalRateLimiter(rate={self.rate}, max_in_flight={self.max_in_flight})"


_SEED_SQL = """
INSERT INTO sync.rate_limit_bucket (name) VALUES (%(name)s) ON CONFLICT DO NOTHING;
"""
_SEED_SLOTS_SQL = """
INSERT INTO sync.rate_limit_lease (name, slot)
SELECT %(name)s, slot FROM generate_series(1, %(max)s) AS slot
ON CONFLICT DO NOTHING
"""

# One statement claims a free (or expired) in-flight slot and, only if it got one, takes the next start
# time from the leaky bucket. It answers the slot and how many seconds to wait before starting.
_ACQUIRE_SQL = """
WITH lease AS (
    UPDATE sync.rate_limit_lease AS l
       SET holder = %(holder)s,
           expires_at = clock_timestamp() + make_interval(secs => %(lease)s::float8)
     WHERE (l.name, l.slot) = (
            SELECT f.name, f.slot
              FROM sync.rate_limit_lease AS f
             WHERE f.name = %(name)s
               AND f.slot <= %(max)s
               AND (f.holder IS NULL OR f.expires_at < clock_timestamp())
             ORDER BY f.slot
             LIMIT 1
               FOR UPDATE SKIP LOCKED)
    RETURNING l.slot
), start AS (
    UPDATE sync.rate_limit_bucket AS b
       SET next_at = greatest(b.next_at, clock_timestamp()) + make_interval(secs => %(interval)s::float8)
     WHERE b.name = %(name)s
       AND EXISTS (SELECT 1 FROM lease)
    RETURNING b.next_at - make_interval(secs => %(interval)s::float8) AS start_at
)
SELECT lease.slot,
       coalesce(extract(epoch FROM start.start_at - clock_timestamp())::float8, 0.0) AS wait_seconds
  FROM lease LEFT JOIN start ON true
"""

_RELEASE_SQL = """
UPDATE sync.rate_limit_lease
   SET holder = NULL, expires_at = NULL
 WHERE name = %(name)s AND slot = %(slot)s AND holder = %(holder)s
"""


class PostgresRateLimiter(RateLimiter):
    """Deployment-wide rate limit kept in PostgreSQL (tables of migration 0002 in the ledger database).

    Per request: one statement claims an in-flight lease (``FOR UPDATE SKIP LOCKED``) together with a
    start time from the leaky bucket, one statement releases the lease. Leases expire after
    ``lease_seconds`` so that a crashed worker cannot hold a slot for ever; keep it above the longest
    request (connect + read timeout). When every slot is taken, callers poll with short jittered sleeps.

    Uses one autocommit connection per process, shared by its threads under a lock (statements take
    well under a millisecond), reopened after a fork or a lost connection.
    """

    def __init__(
        self,
        dsn: str,
        name: str = "accurate",
        rate: float = ACCURATE_RATE,
        max_in_flight: int = ACCURATE_MAX_IN_FLIGHT,
        lease_seconds: float = 120.0,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
        poll_interval: float = 0.05,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._dsn = dsn
        self.name = name
        self.rate = rate
        self.max_in_flight = max_in_flight
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._interval = _interval(rate, safety_margin)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn: psycopg.Connection[Any] | None = None
        self._prepared = False

    @classmethod
    def from_airflow_connection(cls, conn_id: str = "sync_db", **kwargs: Any) -> PostgresRateLimiter:
        """Build a limiter on the database of an Airflow Postgres connection (default ``sync_db``),
        connected the way the ledger connects: every libpq extra (``sslmode`` ...) kept."""
        from include.iseller_accurate.sync_db import dsn_from_connection

        return cls(dsn_from_connection(conn_id), **kwargs)

    def __repr__(self) -> str:  # never show the DSN: it may hold a password
        return (
            f"PostgresRateLimiter(name={self.name!r}, rate={self.rate}, max_in_flight={self.max_in_flight}, "
            f"lease_seconds={self.lease_seconds})"
        )

    # -- connection -------------------------------------------------------------------------------
    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # The parent's socket and lock came along with fork(): never touch them here.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._conn = None
            self._prepared = False

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        return self._conn

    def _execute(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run one statement and return its first row; reconnect once if the connection was lost."""
        self._check_fork()
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    cur = conn.execute(sql, params)
                    return cur.fetchone() if cur.description else None
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.broken:
                        raise
                    log.warning("Rate limiter lost its database connection; reconnecting")
                    self._conn = None
        return None  # pragma: no cover - the loop always returns or raises

    def _prepare(self) -> None:
        """Make sure this limiter's rows exist (creating the tables if the migration never ran)."""
        if self._prepared:
            return
        params = {"name": self.name, "max": self.max_in_flight}
        try:
            self._execute(_SEED_SQL, params)
        except pg_errors.UndefinedTable:
            self.ensure_schema()
            self._execute(_SEED_SQL, params)
        self._execute(_SEED_SLOTS_SQL, params)
        self._prepared = True

    def ensure_schema(self) -> None:
        """Apply ``migrations/0002_accurate_rate_limit.sql`` (idempotent) and seed this limiter's rows."""
        self._check_fork()
        ddl = MIGRATION_FILE.read_text(encoding="utf-8")
        with psycopg.connect(self._dsn, connect_timeout=10) as conn, conn.transaction():
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide: serialise on an advisory lock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('iseller_accurate.rate_limit_schema'))")
            conn.execute(ddl.encode())  # a trusted file of our own, without parameters
            conn.execute(_SEED_SQL, {"name": self.name})
            conn.execute(_SEED_SLOTS_SQL, {"name": self.name, "max": self.max_in_flight})
        self._prepared = True

    def close(self) -> None:
        """Close this process's connection to the database."""
        self._check_fork()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- slots ------------------------------------------------------------------------------------
    def _holder(self) -> str:
        return f"{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"

    def _acquire(self) -> tuple[int, str]:
        self._prepare()
        holder = self._holder()
        params = {
            "name": self.name,
            "max": self.max_in_flight,
            "holder": holder,
            "lease": float(self.lease_seconds),
            "interval": self._interval,
        }
        while True:
            row = self._execute(_ACQUIRE_SQL, params)
            if row is not None:
                slot_no, wait_seconds = int(row[0]), float(row[1])
                if wait_seconds > 0:
                    try:
                        time.sleep(wait_seconds)
                    except BaseException:
                        self._release(slot_no, holder)
                        raise
                return slot_no, holder
            time.sleep(self.poll_interval * random.uniform(0.5, 1.5))

    def _release(self, slot_no: int, holder: str) -> None:
        try:
            self._execute(_RELEASE_SQL, {"name": self.name, "slot": slot_no, "holder": holder})
        except psycopg.Error as exc:
            # The lease expires by itself; failing the (finished) request would be worse.
            log.warning("Could not release rate-limit slot %s (%s); it expires by itself", slot_no, exc)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        slot_no, holder = self._acquire()
        try:
            yield
        finally:
            self._release(slot_no, holder)

    def slot(self) -> AbstractContextManager[None]:
        """Block until a deployment-wide slot is free and the start time has come; release it on exit."""
        return self._slot()
