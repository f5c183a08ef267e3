"""Run times as plain UTC datetimes (no Airflow import, cheap at DAG parse time)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


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


def run_time(context: Mapping[str, Any]) -> datetime:
    """The moment a run stands for: its data interval end, logical date or run_after; "now" only
    when the context has none of them (so re-running a run reads the same window)."""
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return as_utc(context[key])
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return as_utc(run_after) if run_after is not None else datetime.now(UTC)
