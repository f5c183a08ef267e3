"""Care that deliveries cannot give themselves: the subscription's renewal and the history catch-up.

Accurate's subscription lapses silently after 7 days, so it is renewed on every maintenance run;
deliveries can be lost, so ``webhook-history.do`` is read from a bookmark and every event not stored
yet is stored (same uuid key as the receiver: an event that arrives both ways is kept once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg

from include.iseller_accurate.ledger import Ledger
from include.iseller_accurate.purchases.events import parse_event_timestamp, parse_history
from include.iseller_accurate.purchases.store import WebhookEventLedger

log = logging.getLogger(__name__)

#: Bookmark (``sync.cursors``) of the history catch-up: the end of the last window read.
HISTORY_CURSOR = "accurate_webhook_history"
#: Accurate keeps about a month of history; never ask for more than this.
HISTORY_MAX_AGE = timedelta(days=29)
#: Each catch-up re-reads this much before its bookmark (late events, clocks that differ a little).
HISTORY_OVERLAP = timedelta(hours=1)
#: Window of the first catch-up, when there is no bookmark yet.
HISTORY_FIRST_WINDOW = timedelta(hours=24)


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
    events, unreadable = parse_history(rows)
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
