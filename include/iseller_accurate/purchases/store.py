"""The Accurate webhook event ledger: durable storage, claiming, outcomes, transfers, subscription.

- every event is stored once, keyed by its ``uuid`` (``INSERT ... ON CONFLICT (uuid) DO NOTHING``),
  before the receiver answers 200; events recovered from ``webhook-history.do`` land in the same
  table (``received_via = 'history'``), so an event that arrives both ways is still one row;
- a DAG run *claims* pending events (oldest first) and records itself on them; clearing its failed
  task re-processes exactly its own failed events (:meth:`WebhookEventLedger.run_events`);
- the iSeller transfers made for each Accurate document are rows of ``sync.webhook_transfers``,
  written before the call (see ``processor.py``);
- the subscription's last renewal is kept for the operator pages (see ``maintenance.py``).

Tables: ``sync.webhook_events`` and ``sync.webhook_rejections`` (migration 0003), plus
``sync.webhook_transfers``, ``sync.webhook_runs`` and ``sync.webhook_subscription`` (0004).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.iseller_accurate import jsonutil
from include.iseller_accurate.ledger import Ledger, RunRef
from include.iseller_accurate.purchases.events import WebhookEvent, unique_events

log = logging.getLogger(__name__)



# ---------------------------------------------------------------------------------------------
# SQL shared by the receiver (async) and the tasks (sync)

#: Stores new events in one statement and names, in the same round trip, the uuids already stored
#: for a *different* event (same type, timestamp and data = a duplicate; anything else = a reused
#: uuid, e.g. a sandbox restarted with the same seed). Rows: ``(outcome, uuid)``, outcome ``stored`` or
#: ``collision``. The join reads the table as it was before this statement, so rows inserted by it
#: are never reported as collisions.
INSERT_EVENTS_SQL = """
    WITH incoming AS (
        SELECT e.uuid, e.event_type, e.database_id, e.event_timestamp, e.payload::jsonb AS payload,
            e.accurate_id, e.accurate_number, e.action
        FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::bigint[],
                    %s::text[], %s::text[])
            AS e(uuid, event_type, database_id, event_timestamp, payload, accurate_id, accurate_number,
                 action)
    ), stored AS (
        INSERT INTO sync.webhook_events (uuid, event_type, database_id, event_timestamp, payload,
            accurate_id, accurate_number, action, received_via)
        SELECT uuid, event_type, database_id, event_timestamp, payload, accurate_id, accurate_number, action,
            %s
        FROM incoming
        ON CONFLICT (uuid) DO NOTHING
        RETURNING uuid
    )
    SELECT 'stored' AS outcome, uuid FROM stored
    UNION ALL
    SELECT 'collision', i.uuid FROM incoming i JOIN sync.webhook_events w ON w.uuid = i.uuid
    WHERE (w.payload -> 'type', w.payload -> 'timestamp', w.payload -> 'data')
        IS DISTINCT FROM (i.payload -> 'type', i.payload -> 'timestamp', i.payload -> 'data')
"""

INSERT_REJECTION_SQL = """
    INSERT INTO sync.webhook_rejections
        (remote_addr, status_code, reason, content_type, body_size, body_excerpt)
    VALUES (%s, %s, %s, %s, %s, %s)
"""


def insert_params(events: Sequence[WebhookEvent], received_via: str) -> tuple[Any, ...]:
    """Parameters of :data:`INSERT_EVENTS_SQL` for ``events`` (one statement, one round trip)."""
    return (
        [e.uuid for e in events],
        [e.event_type for e in events],
        [e.database_id for e in events],
        [e.event_timestamp for e in events],
        [jsonutil.dumps(e.payload) for e in events],
        [e.accurate_id for e in events],
        [e.accurate_number for e in events],
        [e.action for e in events],
        received_via,
    )


def stored_and_collisions(rows: Iterable[Sequence[Any]]) -> tuple[int, set[str]]:
    """(how many events :data:`INSERT_EVENTS_SQL` stored, the uuids it found reused)."""
    stored = 0
    collisions: set[str] = set()
    for outcome, uuid in rows:
        if outcome == "stored":
            stored += 1
        else:
            collisions.add(uuid)
    return stored, collisions


def rekeyed(events: Sequence[WebhookEvent], collisions: set[str]) -> list[WebhookEvent]:
    """The events whose uuid was reused for another event, keyed ``<uuid>~<content hash>`` instead.

    The derived key is deterministic, so a re-delivery of such an event is still stored once.
    """
    import hashlib
    from dataclasses import replace

    result = []
    for event in events:
        if event.uuid in collisions:
            content = jsonutil.dumps([event.payload.get(k) for k in ("type", "timestamp", "data")])
            digest = hashlib.sha256(content.encode()).hexdigest()[:16]
            log.warning(
                "Accurate event uuid %s was already used by a different event; storing it as %s~%s",
                event.uuid,
                event.uuid,
                digest,
            )
            result.append(replace(event, uuid=f"{event.uuid}~{digest}"))
    return result


# ---------------------------------------------------------------------------------------------
# ledger access


@dataclass
class EventRow:
    """A stored event, as the ingestion task sees it."""

    id: int
    uuid: str
    event_type: str
    event_timestamp: datetime | None
    received_at: datetime
    received_via: str
    payload: dict[str, Any]
    accurate_id: int | None
    accurate_number: str | None
    action: str | None
    status: str
    reason: str | None
    attempts: int

    @property
    def label(self) -> str:
        """How an operator names the event: type and document number."""
        return f"{self.event_type} {self.accurate_number or self.accurate_id or self.uuid}"


_EVENT_SELECT = ", ".join(f"e.{column.name}" for column in fields(EventRow))  # EventRow(**row) reads it
_OLDEST_FIRST = "ORDER BY COALESCE(e.event_timestamp, e.received_at), e.id"


@dataclass
class TransferRow:
    """An iSeller transfer made (or being made) for an Accurate document."""

    id: int
    reference_code: str
    document_type: str
    accurate_id: int
    accurate_number: str
    outlet_id: str
    outlet_code: str
    transfer_type: str
    lines: list[dict[str, Any]]
    status: str
    iseller_transfer_id: str | None = None
    iseller_transfer_number: str | None = None
    event_id: int | None = None


@dataclass
class PlannedTransfer:
    """A transfer to create in iSeller (its row is written before the call)."""

    reference_code: str
    document_type: str
    accurate_id: int
    accurate_number: str
    outlet_id: str
    outlet_code: str
    transfer_type: str
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class WebhookEventLedger:
    """Webhook event, transfer and subscription rows on one autocommit connection (one per thread)."""

    conn: psycopg.Connection[Any]

    @classmethod
    @contextmanager
    def open(cls, dsn: str | None = None) -> Iterator[WebhookEventLedger]:
        """A ledger on a new connection, migrated, closed on exit (opened as the document ledger is)."""
        with Ledger.open(dsn) as documents:
            yield cls(documents.conn)

    # -- storing -------------------------------------------------------------------------------
    def store(self, events: Sequence[WebhookEvent], received_via: str = "webhook") -> int:
        """Store events not stored yet (by uuid); returns how many were new."""
        events = unique_events(events)
        if not events:
            return 0
        rows = self.conn.execute(INSERT_EVENTS_SQL, insert_params(events, received_via)).fetchall()
        stored, collisions = stored_and_collisions((r["outcome"], r["uuid"]) for r in rows)
        if collisions:
            again = self.conn.execute(
                INSERT_EVENTS_SQL, insert_params(rekeyed(events, collisions), received_via)
            ).fetchall()
            stored += stored_and_collisions((r["outcome"], r["uuid"]) for r in again)[0]
        return stored

    def record_rejection(
        self,
        *,
        remote_addr: str | None,
        status_code: int,
        reason: str,
        content_type: str | None,
        body_size: int | None,
        body_excerpt: str | None,
    ) -> None:
        """Keep a refused delivery for audit (never with the token)."""
        self.conn.execute(
            INSERT_REJECTION_SQL, (remote_addr, status_code, reason, content_type, body_size, body_excerpt)
        )

    # -- claiming and reading --------------------------------------------------------------------
    def start_claiming(self, run: RunRef) -> bool:
        """True for the first attempt of ``run`` (it may claim new events); False for its retries/clears."""
        row = self.conn.execute(
            "INSERT INTO sync.webhook_runs (dag_id, run_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING run_id",
            (run.dag_id, run.run_id),
        ).fetchone()
        return row is not None

    def claim_pending(self, run: RunRef, limit: int = 500) -> list[EventRow]:
        """Take up to ``limit`` pending events, oldest first, for ``run`` (parallel runs skip each other)."""
        rows = self.conn.execute(
            f"""
            WITH picked AS (
                SELECT e.id FROM sync.webhook_events e WHERE e.status = 'pending'
                {_OLDEST_FIRST} LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE sync.webhook_events e SET status = 'processing', reason = NULL, transient = false,
                dag_id = %s, run_id = %s, task_id = %s, map_index = %s, try_number = %s, updated_at = now()
            FROM picked WHERE e.id = picked.id
            RETURNING {_EVENT_SELECT}
            """,
            (limit, run.dag_id, run.run_id, run.task_id, run.map_index, run.try_number),
        ).fetchall()
        events = [EventRow(**row) for row in rows]
        events.sort(key=lambda e: (e.event_timestamp or e.received_at, e.id))
        return events

    def run_events(self, run: RunRef, statuses: Sequence[str] = ("processing", "failed")) -> list[EventRow]:
        """Events of ``run`` in ``statuses``, oldest first (a cleared task's work list)."""
        rows = self.conn.execute(
            f"SELECT {_EVENT_SELECT} FROM sync.webhook_events e"
            f" WHERE e.dag_id = %s AND e.run_id = %s AND e.status = ANY(%s) {_OLDEST_FIRST}",
            (run.dag_id, run.run_id, list(statuses)),
        ).fetchall()
        return [EventRow(**row) for row in rows]

    def run_counts(self, run: RunRef) -> dict[str, int]:
        """How many events of ``run`` are in each status."""
        rows = self.conn.execute(
            "SELECT status, count(*) AS n FROM sync.webhook_events WHERE dag_id = %s AND run_id = %s"
            " GROUP BY status",
            (run.dag_id, run.run_id),
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}

    def deletion_recorded(self, event_type: str, accurate_id: int) -> bool:
        """Whether a DELETE event of this document (type and Accurate id) was received."""
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sync.webhook_events WHERE event_type = %s AND accurate_id = %s"
            " AND action = 'DELETE') AS found",
            (event_type, accurate_id),
        ).fetchone()
        return bool(row and row["found"])

    def all_transient(self, events: Sequence[EventRow]) -> bool:
        """Whether every one of these events failed only for a transient reason (a retry may help)."""
        row = self.conn.execute(
            "SELECT bool_and(transient) AS t FROM sync.webhook_events WHERE id = ANY(%s)",
            ([e.id for e in events],),
        ).fetchone()
        return bool(row and row["t"])

    def pending_count(self) -> int:
        """Events waiting for a run."""
        row = self.conn.execute(
            "SELECT count(*) AS n FROM sync.webhook_events WHERE status = 'pending'"
        ).fetchone()
        return int(row["n"]) if row else 0

    def event(self, uuid: str) -> EventRow | None:
        """One event by uuid."""
        row = self.conn.execute(
            f"SELECT {_EVENT_SELECT} FROM sync.webhook_events e WHERE e.uuid = %s", (uuid,)
        ).fetchone()
        return EventRow(**row) if row else None

    # -- outcomes ------------------------------------------------------------------------------
    def begin(self, event_id: int, run: RunRef) -> None:
        """An attempt starts on the event: ``processing``, attempts + 1, this task instance recorded."""
        self.conn.execute(
            "UPDATE sync.webhook_events SET status = 'processing', attempts = attempts + 1,"
            " last_attempt_at = now(), updated_at = now(), dag_id = %s, run_id = %s, task_id = %s,"
            " map_index = %s, try_number = %s WHERE id = %s",
            (run.dag_id, run.run_id, run.task_id, run.map_index, run.try_number, event_id),
        )

    def finish(
        self,
        event_id: int,
        status: str,
        reason: str | None = None,
        *,
        references: Sequence[str] = (),
        transient: bool = False,
    ) -> None:
        """Record the outcome (``done``, ``ignored`` or ``failed``) with its reason or note."""
        if status not in ("done", "ignored", "failed"):
            raise ValueError(f"not a final event status: {status}")
        self.conn.execute(
            "UPDATE sync.webhook_events SET status = %s, reason = %s, transient = %s,"
            " iseller_reference = COALESCE(%s, iseller_reference),"
            " processed_at = CASE WHEN %s IN ('done', 'ignored') THEN now() ELSE processed_at END,"
            " updated_at = now() WHERE id = %s",
            (status, reason, transient, ", ".join(references) or None, status, event_id),
        )

    # -- transfers -----------------------------------------------------------------------------
    @contextmanager
    def document_lock(self, document_type: str, accurate_id: int) -> Iterator[None]:
        """Hold the document for this session: no two tasks reconcile the same document at once."""
        key = f"webhook-document:{document_type}:{accurate_id}"
        self.conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        try:
            yield
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def document_transfers(
        self, document_type: str, accurate_id: int, accurate_number: str
    ) -> list[TransferRow]:
        """Transfers made (or being made) for one Accurate document, in the order they were planned.

        A document is its id *and* number: an id that comes back with another number is another
        document (a sandbox or database that was reset hands out the same ids again).
        """
        rows = self.conn.execute(
            "SELECT id, reference_code, document_type, accurate_id, accurate_number, outlet_id, outlet_code,"
            " transfer_type, lines, status, iseller_transfer_id, iseller_transfer_number, event_id"
            " FROM sync.webhook_transfers WHERE document_type = %s AND accurate_id = %s"
            " AND accurate_number = %s ORDER BY id",
            (document_type, accurate_id, accurate_number),
        ).fetchall()
        return [TransferRow(**row) for row in rows]

    def other_numbers(self, document_type: str, accurate_id: int, accurate_number: str) -> list[str]:
        """Numbers under which transfers were made for this Accurate id, other than ``accurate_number``."""
        rows = self.conn.execute(
            "SELECT DISTINCT accurate_number FROM sync.webhook_transfers"
            " WHERE document_type = %s AND accurate_id = %s AND accurate_number <> %s ORDER BY 1",
            (document_type, accurate_id, accurate_number),
        ).fetchall()
        return [row["accurate_number"] for row in rows]

    def codes_taken(self, base: str) -> set[str]:
        """Reference codes already used that are ``base`` or ``base-<n>`` (any document)."""
        rows = self.conn.execute(
            "SELECT reference_code FROM sync.webhook_transfers"
            " WHERE reference_code = %s OR left(reference_code, %s) = %s",
            (base, len(base) + 1, base + "-"),
        ).fetchall()
        return {row["reference_code"] for row in rows}

    def plan(self, transfers: Sequence[PlannedTransfer], event_id: int | None) -> None:
        """Write the transfers as ``creating`` (before any of them is sent), all or none."""
        if not transfers:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sync.webhook_transfers (reference_code, document_type, accurate_id,"
                " accurate_number,"
                " outlet_id, outlet_code, transfer_type, lines, event_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        t.reference_code,
                        t.document_type,
                        t.accurate_id,
                        t.accurate_number,
                        t.outlet_id,
                        t.outlet_code,
                        t.transfer_type,
                        Jsonb(t.lines),
                        event_id,
                    )
                    for t in transfers
                ],
            )

    def confirm(self, reference_code: str, transfer_id: str | None, transfer_number: str | None) -> None:
        """The transfer is in iSeller."""
        self.conn.execute(
            "UPDATE sync.webhook_transfers SET status = 'created',"
            " iseller_transfer_id = COALESCE(%s, iseller_transfer_id),"
            " iseller_transfer_number = COALESCE(%s, iseller_transfer_number), confirmed_at = now()"
            " WHERE reference_code = %s",
            (transfer_id, transfer_number, reference_code),
        )

    def forget(self, reference_code: str, *, created: bool = False) -> None:
        """Drop a row whose transfer is not in iSeller: a ``creating`` one (refused, or never made), or
        with ``created=True`` one that iSeller no longer has (removed there, or iSeller was reset)."""
        self.conn.execute(
            "DELETE FROM sync.webhook_transfers WHERE reference_code = %s AND status = ANY(%s)",
            (reference_code, ["creating", "created"] if created else ["creating"]),
        )

    # -- subscription --------------------------------------------------------------------------
    def record_renewal(self, expires_at: datetime | None, expires_text: str | None) -> None:
        """Accurate renewed the subscription until ``expires_at``."""
        self.conn.execute(
            "INSERT INTO sync.webhook_subscription (id, renewed_at, expires_at, expires_text, updated_at)"
            " VALUES (true, now(), %s, %s, now()) ON CONFLICT (id) DO UPDATE SET renewed_at = now(),"
            " expires_at = EXCLUDED.expires_at, expires_text = EXCLUDED.expires_text, updated_at = now()",
            (expires_at, expires_text),
        )

    def record_renewal_failure(self, reason: str) -> None:
        """The last renewal attempt failed (kept next to the last good renewal)."""
        self.conn.execute(
            "INSERT INTO sync.webhook_subscription (id, last_error, last_error_at, updated_at)"
            " VALUES (true, %s, now(), now())"
            " ON CONFLICT (id) DO UPDATE SET last_error = EXCLUDED.last_error,"
            " last_error_at = now(), updated_at = now()",
            (reason,),
        )

    def subscription(self) -> dict[str, Any] | None:
        """The subscription as last renewed (``renewed_at``, ``expires_at``, ``last_error`` ...)."""
        row = self.conn.execute("SELECT * FROM sync.webhook_subscription WHERE id").fetchone()
        return dict(row) if row else None
