"""Accurate webhook deliveries as events: parsing, checks, and the asset that wakes the ingestion DAG.

Accurate (Accurate -> iSeller direction) pushes deliveries: a JSON array of events
``{databaseId, type, timestamp, uuid, data: [{<kind>Id, <kind>No, action}]}``. Deliveries carry no
signature, may be lost, duplicated or reordered, and the subscription lapses silently after 7 days
(see ``maintenance.py``). Each event is checked on its own here; ``store.py`` keeps it once by uuid.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from airflow.sdk import Asset

from include.iseller_accurate import jsonutil

log = logging.getLogger(__name__)

MAX_UUID_LENGTH = 200
MAX_TYPE_LENGTH = 100

#: Asset updated by the receiver (and by a catch-up that recovered events): the ingestion DAG's trigger.
ACCURATE_WEBHOOK_EVENTS = Asset(name="accurate_webhook_events", uri="accurate://webhooks/events")


class DeliveryError(ValueError):
    """A delivery (or one of its events) is not what Accurate sends; the message says what is wrong."""


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
    from include.iseller_accurate.times import parse_accurate_datetime

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


def parse_history(rows: Sequence[Any]) -> tuple[list[WebhookEvent], int]:
    """The rows ``webhook-history.do`` answered as events, and how many were unreadable (logged, never
    stored: Accurate answered them, so nobody can repair them here)."""
    events: list[WebhookEvent] = []
    unreadable = 0
    for index, row in enumerate(rows):
        try:
            events.append(parse_event(row, f"history row {index}"))
        except DeliveryError as exc:
            unreadable += 1
            log.warning("Skipping a webhook history row Accurate answered: %s", exc)
    return events, unreadable


def unique_events(events: Iterable[WebhookEvent]) -> list[WebhookEvent]:
    """First occurrence of each uuid, in order."""
    seen: set[str] = set()
    result = []
    for event in events:
        if event.uuid not in seen:
            seen.add(event.uuid)
            result.append(event)
    return result
