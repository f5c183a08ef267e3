"""
### iSeller sales to Accurate

Completed iSeller orders become Accurate **sales invoices** (customers created when missing), their
payments **sales receipts**, refunds **sales returns**; voided orders are recorded as skipped.

**When it runs** (settings Variable `iseller_accurate_settings`, key `sales_sync_mode`):
`realtime` (iSeller order webhooks, plus a poll every 10 minutes), `scheduled` (at
`sales_sync_times` in `timezone`), `shift_close` (when a register shift closes). The shift-close
trigger works in every mode:

    POST /api/v2/dags/iseller_sales_to_accurate/dagRuns
    {"logical_date": null, "conf": {"outlet_id": "...", "register_id": "...", "register_shift_id": "..."}}

The trigger is a hint for speed, never the only path: in `shift_close` mode a scheduled run every
`shift_sweep_minutes` (default 60) **sweeps** for closed shifts that no run has read yet and syncs
them; in the other modes every scheduled run reads all orders changed since the last one. Invalid
conf is refused by the API (400) or fails the run at once, naming the key (no retries).

**Sync refresh**: when `load` is red, some orders failed (see its log or the Sync Status page). Repair
the cause, then clear `load`: exactly the documents not yet in Accurate are re-read and posted.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.iseller_accurate.conf import id_param
from include.iseller_accurate.schedules import fallback_schedule, sales_schedule
from include.iseller_accurate.settings import settings_for_parsing, settings_notice
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.tasks import DEFAULT_ARGS, WINDOW_PARAMS, sync_tasks

# An invalid settings Variable must not make the DAG vanish (the POS trigger would get 404): parse
# on a fallback schedule; every run then fails at once naming the key.
settings, settings_error = settings_for_parsing()


@dag(
    dag_id="iseller_sales_to_accurate",
    schedule=fallback_schedule() if settings_error else sales_schedule(settings),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=(__doc__ or "") + settings_notice(settings_error),
    tags=["iseller", "accurate", "sales"],
    params={
        "outlet_id": id_param("Shift close: iSeller outlet id."),
        "register_id": id_param("Shift close: register id."),
        "register_shift_id": id_param("Shift close: the closed register shift id."),
        **WINDOW_PARAMS,
    },
)
def iseller_sales_to_accurate() -> None:
    sync_tasks(SalesStream)


iseller_sales_to_accurate()
