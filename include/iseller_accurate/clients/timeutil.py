"""Date and time formats of the two APIs.

- iSeller writes ISO-8601 **without an offset**, meaning UTC; we send the same (UTC, no offset).
  Its public doc also shows ``YYYY-MM-DD HH:MM:SS`` (a space for the ``T``): both are read. When a
  server applies the ``time_zone`` (hours) a read sends, its dates are that zone's wall time:
  :func:`iseller_local_to_utc` turns them back into UTC and :func:`format_iseller_local` writes a
  window bound in it.
- Accurate writes dates ``dd/MM/yyyy`` and timestamps ``dd/MM/yyyy HH:mm:ss`` in the database's local
  time, which for this project is Asia/Jakarta (WIB, UTC+7) unless told otherwise.

Every datetime handed back is timezone-aware; naive inputs are refused where they would be ambiguous.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

#: Accurate's local time for this project's databases.
ACCURATE_TZ = ZoneInfo("Asia/Jakarta")

_FRACTION = re.compile(r"(\.\d{6})\d+")  # .NET writes 7 fractional digits; Python reads at most 6


def parse_iseller_datetime(value: str | datetime) -> datetime:
    """Read an iSeller date/time: no offset means UTC; an offset or ``Z`` is honoured. Returns aware UTC.

    Raises ``ValueError`` for an empty or malformed value.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if not text:
            raise ValueError("empty iSeller date/time")
        text = _FRACTION.sub(r"\1", text)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_iseller_datetime(value: datetime) -> str:
    """Write a datetime for an iSeller filter: UTC, ISO-8601, no offset (naive values are taken as UTC).

    Sub-second precision is kept (milliseconds) when present, so that a window bound never moves.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if value.microsecond:
        return value.isoformat(timespec="milliseconds")
    return value.isoformat(timespec="seconds")


def time_zone_hours(tz: tzinfo, at: datetime) -> int | Decimal:
    """The ``time_zone`` iSeller reads take: ``tz``'s offset from UTC at ``at``, in hours
    (Asia/Jakarta: 7). A whole number of hours is an ``int``; a zone such as Asia/Kolkata gives
    ``Decimal("5.5")``."""
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset() or timedelta(0)
    seconds = int(offset.total_seconds())
    if seconds % 3600 == 0:
        return seconds // 3600
    return Decimal(seconds) / Decimal(3600)


def hours_delta(hours: int | Decimal) -> timedelta:
    """A ``time_zone`` value (hours) as a ``timedelta``."""
    return timedelta(seconds=int(Decimal(hours) * 3600))


def format_iseller_local(value: datetime, offset: timedelta) -> str:
    """Write a window bound as the wall time at UTC+``offset``, without an offset (how a server that
    applies ``time_zone`` reads it). Naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return format_iseller_datetime((value.astimezone(UTC) + offset).replace(tzinfo=None))


def iseller_local_to_utc(value: str, offset: timedelta) -> str:
    """A date a server wrote as the wall time at UTC+``offset`` (no offset in the text), written back
    as iSeller's UTC form. A value with its own offset or ``Z`` is honoured. Raises ``ValueError`` for
    a value that is not a date."""
    text = value.strip()
    if not text or len(text) > 64:
        raise ValueError(f"{value[:40]!r} is not an iSeller date/time")
    text = _FRACTION.sub(r"\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone(offset))
    return format_iseller_datetime(parsed)


def _to_accurate_local(value: datetime, tz: tzinfo) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required for Accurate (naive values are ambiguous)")
    return value.astimezone(tz)


def format_accurate_date(value: date | datetime, tz: tzinfo = ACCURATE_TZ) -> str:
    """``dd/MM/yyyy``; an aware datetime is first converted to Accurate's local time ``tz``."""
    if isinstance(value, datetime):
        value = _to_accurate_local(value, tz).date()
    return value.strftime("%d/%m/%Y")


def format_accurate_datetime(value: datetime, tz: tzinfo = ACCURATE_TZ) -> str:
    """``dd/MM/yyyy HH:mm:ss`` in Accurate's local time ``tz`` (the value must be aware)."""
    return _to_accurate_local(value, tz).strftime("%d/%m/%Y %H:%M:%S")


def parse_accurate_date(text: str) -> date:
    """Read an Accurate ``dd/MM/yyyy`` date."""
    return datetime.strptime(text.strip(), "%d/%m/%Y").date()


def parse_accurate_datetime(text: str, tz: tzinfo = ACCURATE_TZ) -> datetime:
    """Read an Accurate ``dd/MM/yyyy HH:mm:ss`` timestamp (local time ``tz``) as an aware datetime."""
    return datetime.strptime(text.strip(), "%d/%m/%Y %H:%M:%S").replace(tzinfo=tz)
