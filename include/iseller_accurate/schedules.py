"""DAG schedules derived from the operator settings (read when the DAG file is parsed).

Changing a mode or a time in the settings Variable takes effect at the next parse of the DAG file.
An invalid Variable never removes a DAG: its file parses on :func:`fallback_schedule` (hourly; every
run then fails at once naming the bad key) and the REST trigger keeps answering.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, MultipleCronTriggerTimetable

from include.iseller_accurate.settings import SyncSettings

#: Asset updated by the iSeller order webhook receiver: the real-time trigger of sales sync.
ISELLER_ORDERS = Asset(name="iseller_order_notifications", uri="iseller://notifications/orders")
#: How often real-time mode polls anyway, to catch webhooks that never arrived.
REALTIME_POLL_CRON = "*/10 * * * *"
#: How often real-time transfers are read (transfer_sync_scheduled false: "within a minute").
REALTIME_TRANSFER_CRON = "* * * * *"
#: While the settings Variable is invalid: one run an hour, which fails at once naming the key (a
#: reminder in the grid and the alerts, not a red cell every minute).
FALLBACK_CRON = "0 * * * *"


def fallback_schedule() -> Any:
    """The schedule of a settings-driven DAG while its settings Variable is invalid."""
    return CronTriggerTimetable(FALLBACK_CRON, timezone="UTC")


def at_times(times: list[str], timezone: str) -> Any:
    """A timetable firing at each "HH:MM" of ``times`` in ``timezone``."""
    crons = SyncSettings.cron_expressions(times)
    if len(crons) == 1:
        return CronTriggerTimetable(crons[0], timezone=timezone)
    return MultipleCronTriggerTimetable(*crons, timezone=timezone)


def sales_schedule(settings: SyncSettings) -> Any:
    """realtime: webhook asset events or a periodic poll; scheduled: the operator's times;
    shift_close: the shift sweep every ``shift_sweep_minutes`` (closed shifts no run has read), besides
    the REST-API trigger (which also works in the other modes).

    Every mode thus has a periodic path: the POS trigger only makes a shift's sync faster.
    """
    if settings.sales_sync_mode == "realtime":
        return AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(REALTIME_POLL_CRON, timezone=settings.timezone),
            assets=ISELLER_ORDERS,
        )
    if settings.sales_sync_mode == "scheduled":
        return at_times(settings.sales_sync_times, settings.timezone)
    return CronTriggerTimetable(settings.shift_sweep_cron, timezone=settings.timezone)


def transfer_schedule(settings: SyncSettings) -> Any:
    """Transfers and stock opname: at the operator's times, or every minute (real time)."""
    if settings.transfer_sync_scheduled:
        return at_times(settings.transfer_sync_times, settings.timezone)
    return CronTriggerTimetable(REALTIME_TRANSFER_CRON, timezone=settings.timezone)
