"""Every date and time the sync reads or writes, in one place (no Airflow import: cheap at parse time).

- ISO-8601 (iSeller's times, trigger conf, run dates): :func:`parse_iso` is the one parser. No offset
  means UTC; an offset or ``Z`` is honoured; .NET's 7 fractional digits are read. iSeller's public doc
  also shows ``YYYY-MM-DD HH:MM:SS`` (a space for the ``T``): read too. Everything handed back is an
  aware UTC datetime. Source values a mapping uses go through :func:`checks.read_time`, which adds the
  field's name and the accepted range to the reason.
- Run dates: :func:`as_utc` and :func:`run_time` (Airflow hands tasks ``pendulum.DateTime`` values).
- iSeller filters: we send UTC without an offset (:func:`format_iseller_datetime`). When a server
  applies the ``time_zone`` (hours) a read sends, its dates are that zone's wall time:
  :func:`iseller_local_to_utc` turns them back into UTC and :func:`format_iseller_local` writes a
  window bound in it.
- Accurate writes dates ``dd/MM/yyyy`` and timestamps ``dd/MM/yyyy HH:mm:ss`` in the database's local
  time, which for this project is Asia/Jakarta (WIB, UTC+7) unless told otherwise.

Naive inputs are refused where they would be ambiguous (Accurate's local dates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

#: Accurate's local time for this project's databases.
ACCURATE_TZ = ZoneInfo("Asia/Jakarta")

_FRACTION = re.compile(r"(\.\d{6})\d+")  # .NET writes 7 fractional digits; Python reads at most 6


def _iso(text: str) -> datetime:
    """``datetime.fromisoformat`` after the clean-up every source needs (``Z``, 7 digits); may be naive."""
    text = _FRACTION.sub(r"\1", text.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def parse_iso(text: str, *, naive: tzinfo = UTC) -> datetime:
    """An ISO-8601 date/time as an aware UTC datetime; no offset means ``naive`` (UTC by default).

    Raises ``ValueError`` for a malformed value (``OverflowError`` only for a moment beyond year 9999
    once moved to UTC).
    """
    parsed = _iso(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive)
    return parsed.astimezone(UTC)


# -- run dates ---------------------------------------------------------------------------------------------
def as_utc(value: str | datetime) -> datetime:
    """A plain ``datetime`` in UTC from an ISO-8601 string or any datetime (naive means UTC).

    Airflow hands run dates to tasks as ``pendulum.DateTime``; pendulum's arithmetic on a value whose
    zone is not a pendulum zone silently drops the zone (``end - timedelta(hours=1)`` comes back
    naive), so run dates are rebuilt as standard-library datetimes before any arithmetic.
    """
    if isinstance(value, str):
        value = _iso(value)
    offset = value.utcoffset()
    plain = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )
    return (plain - offset if offset is not None else plain).replace(tzinfo=UTC)


def run_time(context: Mapping[str, Any]) -> datetime:
    """The moment a run stands for: its data interval end, logical date or run_after; "now" only
    when the context has none of them (so re-running a run reads the same window)."""
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return as_utc(context[key])
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return as_utc(run_after) if run_after is not None else datetime.now(UTC)


# -- iSeller -----------------------------------------------------------------------------------------------
def parse_iseller_datetime(value: str | datetime) -> datetime:
    """Read an iSeller date/time: no offset means UTC; an offset or ``Z`` is honoured. Returns aware UTC.

    Raises ``ValueError`` for an empty or malformed value.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not value.strip():
        raise ValueError("empty iSeller date/time")
    return parse_iso(value)


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
    return format_iseller_datetime(parse_iso(text, naive=timezone(offset)))


# -- Accurate ----------------------------------------------------------------------------------------------
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
