"""DAG schedules derived from the operator settings (read when the DAG file is parsed).

Changing a mode or a time in the settings Variable takes effect at the next parse of the DAG file.
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


def at_times(times: list[str], timezone: str) -> Any:
    """A timetable firing at each "HH:MM" of ``times`` in ``timezone``."""
    crons = SyncSettings.cron_expressions(times)
    if len(crons) == 1:
        return CronTriggerTimetable(crons[0], timezone=timezone)
    return MultipleCronTriggerTimetable(*crons, timezone=timezone)


def sales_schedule(settings: SyncSettings) -> Any:
    """realtime: webhook asset events or a periodic poll; scheduled: the operator's times;
    shift_close: only the REST-API trigger (which also works in the other modes)."""
    if settings.sales_sync_mode == "realtime":
        return AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(REALTIME_POLL_CRON, timezone=settings.timezone),
            assets=ISELLER_ORDERS,
        )
    if settings.sales_sync_mode == "scheduled":
        return at_times(settings.sales_sync_times, settings.timezone)
    return None


def transfer_schedule(settings: SyncSettings) -> Any:
    """Transfers and stock opname: at the operator's times, or every minute (real time)."""
    if settings.transfer_sync_scheduled:
        return at_times(settings.transfer_sync_times, settings.timezone)
    return CronTriggerTimetable(REALTIME_TRANSFER_CRON, timezone=settings.timezone)
