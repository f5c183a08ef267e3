"""Run times as plain UTC datetimes (no Airflow import, cheap at DAG parse time)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: str | datetime) -> datetime:
    """A plain ``datetime`` in UTC from an ISO-8601 string or any datetime (naive means UTC).

    Airflow hands run dates to tasks as ``pendulum.DateTime``; pendulum's arithmetic on a value whose
    zone is not a pendulum zone silently drops the zone (``end - timedelta(hours=1)`` comes back
    naive), so run dates are rebuilt as standard-library datetimes before any arithmetic.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    offset = value.utcoffset()
    plain = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )
    return (plain - offset if offset is not None else plain).replace(tzinfo=UTC)
