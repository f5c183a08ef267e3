"""Run times as tasks receive them from Airflow: windows stay timezone-aware through arithmetic.

Airflow's Task SDK puts ``pendulum.DateTime`` values in the context (``coerce_datetime``). Converting
one with ``astimezone(UTC)`` keeps a pendulum value whose arithmetic drops the zone, which made every
scheduled catch-up fail with "webhook_history needs timezone-aware datetimes".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.execution_time.task_runner import coerce_datetime

from include.iseller_accurate.pipeline import run_window
from include.iseller_accurate.purchases.maintenance import history_window
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.times import as_utc, run_time

SCHEDULED = datetime(2026, 11, 26, 2, 45, tzinfo=UTC)


def _scheduled_context() -> dict[str, Any]:
    """What a CronTriggerTimetable run's task sees: interval start == end == logical date."""
    moment = coerce_datetime(SCHEDULED)
    return {
        "data_interval_start": moment,
        "data_interval_end": moment,
        "logical_date": moment,
        "params": {},
        "dag_run": SimpleNamespace(run_after=moment),
    }


class _Ledger:
    def __init__(self, cursor: datetime | None) -> None:
        self._cursor = cursor

    def cursor(self, stream: str) -> datetime | None:
        return self._cursor


def _plain_aware(value: datetime) -> None:
    assert type(value) is datetime, type(value)
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-26T02:45:00Z",
        "2026-11-26T09:45:00+07:00",
        "2026-11-26T02:45:00",
        datetime(2026, 11, 26, 2, 45),
        datetime(2026, 11, 26, 9, 45, tzinfo=timezone(timedelta(hours=7))),
        coerce_datetime(SCHEDULED),
    ],
)
def test_as_utc_gives_a_plain_utc_datetime(value):
    result = as_utc(value)
    _plain_aware(result)
    assert result == SCHEDULED
    _plain_aware(result - timedelta(hours=1))


def test_as_utc_keeps_microseconds():
    assert as_utc("2026-11-26T02:45:00.123456Z").microsecond == 123456


def test_scheduled_catch_up_window_stays_aware_without_and_with_a_bookmark():
    end = run_time(_scheduled_context())
    assert end == SCHEDULED
    for cursor in (None, SCHEDULED - timedelta(minutes=15), SCHEDULED - timedelta(days=60)):
        start, stop = history_window(cursor, end)
        _plain_aware(start)
        _plain_aware(stop)
        assert start < stop


@pytest.mark.parametrize("cursor", [None, SCHEDULED - timedelta(minutes=5)])
def test_scheduled_sales_window_stays_aware(cursor):
    start, end = run_window(SalesStream(), _Ledger(cursor), _scheduled_context())  # type: ignore[arg-type]
    _plain_aware(start)
    _plain_aware(end)
    assert end == SCHEDULED and start < end


def test_an_asset_triggered_run_reads_up_to_its_start_not_only_to_its_first_event() -> None:
    # Airflow dates an asset-triggered run by its first queued event and hands it only the events up to
    # then; orders whose webhooks came while the run waited behind the active one started no run of
    # their own. The run reads up to when it started: those orders are in its window.
    first_event = datetime(2026, 11, 30, 21, 34, 11, tzinfo=UTC)
    started = first_event + timedelta(seconds=40)
    dag_run = SimpleNamespace(
        run_type=SimpleNamespace(value="asset_triggered"),
        run_after=coerce_datetime(first_event),
        start_date=coerce_datetime(started),
    )
    context: dict[str, Any] = {"dag_run": dag_run, "params": {}}
    start, end = run_window(SalesStream(), _Ledger(first_event - timedelta(minutes=5)), context)  # type: ignore[arg-type]
    assert end == started
    assert start == first_event - timedelta(minutes=5) - SalesStream.overlap
    # a manual run keeps its run_after (a re-run reads the same window)
    manual = SimpleNamespace(run_type="manual", run_after=coerce_datetime(first_event), start_date=started)
    assert run_window(SalesStream(), _Ledger(None), {"dag_run": manual, "params": {}})[1] == first_event  # type: ignore[arg-type]
