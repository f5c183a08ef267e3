"""Accurate webhook events in the sync ledger: parsing, durable storage, claiming, outcomes.

Accurate (Accurate -> iSeller direction) pushes deliveries: a JSON array of events
``{databaseId, type, timestamp, uuid, data: [{<kind>Id, <kind>No, action}]}``. Deliveries carry no
signature, may be lost, duplicated or reordered, and the subscription lapses silently after 7 days.
So:

- every event is stored once, keyed by its ``uuid`` (``INSERT ... ON CONFLICT (uuid) DO NOTHING``),
  before the receiver answers 200; events recovered from ``webhook-history.do`` land in the same
  table (``received_via = 'history'``), so an event that arrives both ways is still one row;
- a DAG run *claims* pending events (oldest first) and records itself on them; clearing its failed
  task re-processes exactly its own failed events (:meth:`WebhookEventLedger.run_events`);
- the iSeller transfers made for each Accurate document are rows of ``sync.webhook_transfers``,
  written before the call (see ``streams/purchases.py``);
- the subscription's renewal and the history catch-up (the maintenance DAG) are here too.

Tables: ``sync.webhook_events`` and ``sync.webhook_rejections`` (migration 0003), plus
``sync.webhook_transfers``, ``sync.webhook_runs`` and ``sync.webhook_subscription`` (0004).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from airflow.sdk import Asset
from psycopg.types.json import Jsonb

from include.iseller_accurate import jsonutil
from include.iseller_accurate.ledger import Ledger, RunRef, connect, migrate
from include.iseller_accurate.utc import as_utc, run_time

log = logging.getLogger(__name__)

#: Bookmark (``sync.cursors``) of the history catch-up: the end of the last window read.
HISTORY_CURSOR = "accurate_webhook_history"
#: Accurate keeps about a month of history; never ask for more than this.
HISTORY_MAX_AGE = timedelta(days=29)
#: Each catch-up re-reads this much before its bookmark (late events, clocks that differ a little).
HISTORY_OVERLAP = timedelta(hours=1)
#: Window of the first catch-up, when there is no bookmark yet.
HISTORY_FIRST_WINDOW = timedelta(hours=24)

MAX_UUID_LENGTH = 200
MAX_TYPE_LENGTH = 100
EVENT_STATUSES = ("pending", "processing", "done", "failed", "ignored")


#: Asset updated by the receiver (and by a catch-up that recovered events): the ingestion DAG's trigger.
ACCURATE_WEBHOOK_EVENTS = Asset(name="accurate_webhook_events", uri="accurate://webhooks/events")


class DeliveryError(ValueError):
    """A delivery (or one of its events) is not what Accurate sends; the message says what is wrong."""


# ---------------------------------------------------------------------------------------------
# parsing


@dataclass(frozen=True)
class WebhookEvent:
    """One Accurate webhook event as stored: the raw event plus the columns the ledger indexes."""

    uuid: str
    event_type: str
    payload: dict[str, Any]
    database_id: int | None = None
    event_timestamp: datetime | None = None
    accurate_id: int | None = None
    accurate_number: str | None = None
    action: str | None = None


def parse_event_timestamp(value: Any) -> datetime | None:
    """Accurate's event ``timestamp``: ``dd/MM/yyyy HH:mm:ss`` (Jakarta time) or epoch milliseconds.

    Both forms appear in Accurate's material; ISO-8601 is accepted too. None when unreadable (the
    event is still stored; ordering then falls back to the time it was received).
    """
    from include.iseller_accurate.clients.timeutil import parse_accurate_datetime

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal, float)) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return None
        seconds = number / 1000 if number > 10_000_000_000 else number  # millis (or plain seconds)
        try:
            return datetime.fromtimestamp(float(seconds), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return parse_accurate_datetime(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (str, Decimal)):
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return None
        if number == number.to_integral_value() and abs(number) < 2**63:
            return int(number)
    return None


def document_entries(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``data`` entries of an event as ``{"id", "number", "action", "kind"}`` (kind: ``receiveItem``)."""
    entries = []
    for raw in payload.get("data") or []:
        if not isinstance(raw, Mapping):
            continue
        entry: dict[str, Any] = {
            "id": None,
            "number": None,
            "kind": None,
            "action": str(raw.get("action") or "WRITE").upper(),
        }
        for key, value in raw.items():
            if key.endswith("Id") and len(key) > 2 and entry["id"] is None:
                entry["id"] = _as_int(value)
                entry["kind"] = key[:-2]
            elif key.endswith("No") and len(key) > 2 and entry["number"] is None:
                entry["number"] = None if value in (None, "") else str(value)
                entry["kind"] = entry["kind"] or key[:-2]
        entries.append(entry)
    return entries


def parse_event(raw: Any, where: str = "event") -> WebhookEvent:
    """Validate one event object; :class:`DeliveryError` names what is missing or wrong."""
    if not isinstance(raw, Mapping):
        raise DeliveryError(f"{where} is not a JSON object")
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid.strip():
        raise DeliveryError(f"{where} has no uuid")
    if len(uuid) > MAX_UUID_LENGTH:
        raise DeliveryError(f"{where}: uuid longer than {MAX_UUID_LENGTH} characters")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise DeliveryError(f"{where} ({uuid}) has no type")
    if len(event_type) > MAX_TYPE_LENGTH:
        raise DeliveryError(f"{where} ({uuid}): type longer than {MAX_TYPE_LENGTH} characters")
    data = raw.get("data")
    if data is not None and not isinstance(data, list):
        raise DeliveryError(f"{where} ({uuid}): data must be a list")
    problem = jsonutil.unstorable(raw)
    if problem:
        shown = jsonutil.printable(uuid, 80)
        raise DeliveryError(f"{where} ({shown}): {problem}; the event cannot be stored")
    entries = document_entries(raw)
    first = entries[0] if entries else {}
    return WebhookEvent(
        uuid=uuid.strip(),
        event_type=event_type.strip().upper(),
        payload=dict(raw),
        database_id=_as_int(raw.get("databaseId")),
        event_timestamp=parse_event_timestamp(raw.get("timestamp")),
        accurate_id=first.get("id"),
        accurate_number=first.get("number"),
        action=first.get("action"),
    )


@dataclass(frozen=True)
class RejectedEvent:
    """An event of a delivery that cannot be stored: its place in the body, its uuid if any, why."""

    index: int
    uuid: str | None
    reason: str
    excerpt: str


def split_delivery(body: bytes) -> tuple[list[WebhookEvent], list[RejectedEvent]]:
    """A delivery body (a JSON array of events) as (good events, rejected events).

    Each event is checked on its own, so one bad event never keeps the others out; duplicates within
    the body are dropped. :class:`DeliveryError` when the body as a whole is unusable (not JSON,
    nested deeper than ``jsonutil.MAX_DEPTH``, not an array of events).
    """
    try:
        jsonutil.check_depth(body)
        value = jsonutil.loads(body)
    except jsonutil.JsonTooDeep as exc:
        raise DeliveryError(f"body refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeliveryError(f"body is not valid JSON ({exc})") from None
    if isinstance(value, Mapping):  # be lenient with a single event sent without its array
        value = [value]
    if not isinstance(value, list):
        raise DeliveryError("body must be a JSON array of events")
    events: list[WebhookEvent] = []
    rejected: list[RejectedEvent] = []
    for index, item in enumerate(value):
        try:
            events.append(parse_event(item, f"event {index}"))
        except DeliveryError as exc:
            uuid = item.get("uuid") if isinstance(item, Mapping) else None
            rejected.append(
                RejectedEvent(
                    index=index,
                    uuid=jsonutil.printable(uuid, MAX_UUID_LENGTH) if isinstance(uuid, str) else None,
                    reason=str(exc),
                    excerpt=jsonutil.printable(json.dumps(item, ensure_ascii=True, default=str), 512),
                )
            )
    return unique_events(events), rejected


def parse_delivery(body: bytes) -> list[WebhookEvent]:
    """A delivery body as events, duplicates within the body dropped; any bad event raises."""
    events, rejected = split_delivery(body)
    if rejected:
        raise DeliveryError(rejected[0].reason)
    return events


def unique_events(events: Iterable[WebhookEvent]) -> list[WebhookEvent]:
    """First occurrence of each uuid, in order."""
    seen: set[str] = set()
    result = []
    for event in events:
        if event.uuid not in seen:
            seen.add(event.uuid)
            result.append(event)
    return result


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


_EVENT_COLUMNS = (
    "id",
    "uuid",
    "event_type",
    "event_timestamp",
    "received_at",
    "received_via",
    "payload",
    "accurate_id",
    "accurate_number",
    "action",
    "status",
    "reason",
    "attempts",
)
_EVENT_SELECT = ", ".join(f"e.{name}" for name in _EVENT_COLUMNS)
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


class WebhookEventLedger:
    """Webhook event, transfer and subscription rows on one autocommit connection (one per thread)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    @contextmanager
    def open(cls, dsn: str | None = None) -> Iterator[WebhookEventLedger]:
        """A ledger on a new connection, migrated, closed on exit."""
        conn = connect(dsn, autocommit=True)
        try:
            migrate(conn)
            yield cls(conn)
        finally:
            conn.close()

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


# ---------------------------------------------------------------------------------------------
# maintenance: renewal and catch-up


def renew_subscription(accurate: Any, ledger: WebhookEventLedger) -> dict[str, Any]:
    """Extend Accurate's webhook subscription (``webhook-renew.do``) and record the new expiry.

    Raises (after recording the failure) when Accurate refuses or cannot be reached.
    """
    try:
        body = accurate.webhook_renew()
    except Exception as exc:
        ledger.record_renewal_failure(str(exc))
        raise
    answer = body.get("d")
    text: str | None = None
    if isinstance(answer, Mapping):
        value = answer.get("expiredDate") or answer.get("expiryDate") or answer.get("expired")
        text = None if value in (None, "") else str(value)
    elif isinstance(answer, str | int):
        text = str(answer)
    expires_at = parse_event_timestamp(text) if text else None
    ledger.record_renewal(expires_at, text)
    return {"expires_text": text, "expires_at": expires_at.isoformat() if expires_at else None}


def history_window(
    cursor: datetime | None,
    run_end: datetime,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The history window a catch-up reads: explicit bounds, else from the bookmark (minus the overlap).

    Never older than Accurate keeps (``HISTORY_MAX_AGE`` before the end).
    """
    end = window_end or run_end
    if window_start is not None:
        start = window_start
    elif cursor is None:
        start = end - HISTORY_FIRST_WINDOW
    else:
        start = min(cursor - HISTORY_OVERLAP, end)
    oldest = end - HISTORY_MAX_AGE
    if start < oldest:
        log.warning(
            "Accurate keeps about a month of webhook history: reading from %s instead of %s", oldest, start
        )
        start = oldest
    return start, end


def catch_up(accurate: Any, ledger: WebhookEventLedger, start: datetime, end: datetime) -> dict[str, Any]:
    """Store the events of ``webhook-history.do`` between ``start`` and ``end`` (24-hour windows).

    Events already stored (delivered, or recovered before) are kept once; unreadable history rows are
    counted and logged, never stored. Returns counts for XCom.
    """
    rows = accurate.webhook_history(start, end)
    events: list[WebhookEvent] = []
    unreadable = 0
    for index, row in enumerate(rows):
        try:
            events.append(parse_event(row, f"history row {index}"))
        except DeliveryError as exc:
            unreadable += 1
            log.warning("Skipping a webhook history row Accurate answered: %s", exc)
    stored = ledger.store(events, received_via="history")
    failed_deliveries = sum(1 for row in rows if str(row.get("status") or "").upper() == "FAILED")
    summary = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "history_rows": len(rows),
        "failed_deliveries": failed_deliveries,
        "recovered": stored,
        "unreadable": unreadable,
    }
    log.info("Webhook history catch-up: %s", summary)
    return summary


def advance_history_cursor(conn: psycopg.Connection[Any], position: datetime) -> None:
    """Move the catch-up bookmark forward (never backwards)."""
    Ledger(conn).advance_cursor(HISTORY_CURSOR, position)


def history_cursor(conn: psycopg.Connection[Any]) -> datetime | None:
    """The catch-up bookmark, or None before the first catch-up."""
    return Ledger(conn).cursor(HISTORY_CURSOR)


# ---------------------------------------------------------------------------------------------
# task entry points of the maintenance DAG


def run_renewal() -> dict[str, Any]:
    """Task ``renew_subscription``: renew Accurate's webhook subscription, record the new expiry."""
    from include.iseller_accurate.clients import AccurateHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import dsn_from_connection

    dsn = dsn_from_connection()
    accurate = AccurateHook(rate_limiter=PostgresRateLimiter(dsn))
    with WebhookEventLedger.open(dsn) as ledger:
        result = renew_subscription(accurate, ledger)
    log.info(
        "Accurate webhook subscription renewed; it now expires %s (Accurate's time)", result["expires_text"]
    )
    return result


def run_catch_up(context: Mapping[str, Any]) -> dict[str, Any]:
    """Task ``catch_up``: store the deliveries of ``webhook-history.do`` since the bookmark (or the
    window given in the run's params), then move the bookmark to the end of the window read."""
    from include.iseller_accurate.clients import AccurateHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import dsn_from_connection

    params = dict(context.get("params") or {})
    if bool(params.get("window_start")) != bool(params.get("window_end")):
        raise ValueError("give both window_start and window_end, or neither")
    explicit = bool(params.get("window_start"))
    dsn = dsn_from_connection()
    accurate = AccurateHook(rate_limiter=PostgresRateLimiter(dsn))
    with WebhookEventLedger.open(dsn) as ledger:
        start, end = history_window(
            history_cursor(ledger.conn),
            run_time(context),
            as_utc(params["window_start"]) if explicit else None,
            as_utc(params["window_end"]) if explicit else None,
        )
        summary = catch_up(accurate, ledger, start, end)
        if not explicit:
            advance_history_cursor(ledger.conn, end)
    return summary
