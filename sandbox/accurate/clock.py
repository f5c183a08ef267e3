"""Sandbox clock and the date/time formats of the Accurate API.

Public facts (reference doc): dates travel as ``dd/MM/yyyy`` and timestamps as
``dd/MM/yyyy HH:mm:ss``.

Assumptions (the public record is silent):
- local ``dd/MM/yyyy HH:mm:ss`` timestamps are Asia/Jakarta wall time (UTC+7, no daylight saving),
  the zone of the seeded shop;
- the sandbox clock is the real clock plus an offset that only tests and the demo move
  (``POST /_sandbox/clock``); it drives the signature window, webhook expiry and history.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

#: Asia/Jakarta has no daylight saving: a fixed offset is exact and cheaper than zoneinfo.
JAKARTA = timezone(timedelta(hours=7), "Asia/Jakarta")
DATE_FORMAT = "%d/%m/%Y"
TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"


class SandboxClock:
    """Real time plus an offset that only moves forward (``advance``/``set_now``)."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def time(self) -> float:
        """Sandbox time as Unix seconds."""
        return time.time() + self.offset_seconds

    def now(self) -> datetime:
        """Sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (negative values are refused)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset_seconds += seconds

    def set_now(self, moment: datetime) -> None:
        """Move the clock forward to ``moment`` (an earlier moment is refused)."""
        target = moment.timestamp()
        if target < self.time() - 1:
            raise ValueError("the sandbox clock only moves forward")
        self.offset_seconds = target - time.time()


def from_unix(moment: float) -> datetime:
    """An aware UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(moment, UTC)


def format_timestamp(moment: datetime) -> str:
    """``dd/MM/yyyy HH:mm:ss`` in Jakarta time."""
    return moment.astimezone(JAKARTA).strftime(TIMESTAMP_FORMAT)


def format_date(day: date) -> str:
    """``dd/MM/yyyy``."""
    return day.strftime(DATE_FORMAT)


def parse_date(text: str) -> date | None:
    """Parse ``dd/MM/yyyy``; ``None`` when the text is not such a date."""
    parts = text.strip().split("/")
    if len(parts) != 3 or len(parts[2]) != 4 or not all(p.isdigit() and len(p) <= 4 for p in parts):
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None


def parse_local_timestamp(text: str) -> datetime | None:
    """Parse ``dd/MM/yyyy HH:mm:ss`` (or a bare ``dd/MM/yyyy``) as Jakarta time."""
    text = text.strip()
    for fmt in (TIMESTAMP_FORMAT, DATE_FORMAT):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=JAKARTA)
        except ValueError:
            continue
    return None
