"""
### iSeller sales to Accurate

Completed iSeller orders become Accurate **sales invoices** (customers created when missing), their
payments **sales receipts**, refunds **sales returns**; voided orders are recorded as skipped.

**When it runs** (settings Variable `iseller_accurate_settings`, key `sales_sync_mode`):
`realtime` (iSeller order webhooks, plus a poll every 10 minutes), `scheduled` (at
`sales_sync_times` in `timezone`), `shift_close` (only when a register shift closes). The shift-close
trigger works in every mode:

    POST /api/v2/dags/iseller_sales_to_accurate/dagRuns
    {"logical_date": null, "conf": {"outlet_id": "...", "register_id": "...", "register_shift_id": "..."}}

**Sync refresh**: when `load` is red, some orders failed (see its log or the Sync Status page). Repair
the cause, then clear `load`: exactly the documents not yet in Accurate are re-read and posted.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag

from include.iseller_accurate.schedules import sales_schedule
from include.iseller_accurate.settings import load_settings
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.tasks import DEFAULT_ARGS, WINDOW_PARAMS, sync_tasks

settings = load_settings()


@dag(
    dag_id="iseller_sales_to_accurate",
    schedule=sales_schedule(settings),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["iseller", "accurate", "sales"],
    params={
        "outlet_id": Param(
            None, type=["null", "string"], minLength=1, description="Shift close: iSeller outlet id."
        ),
        "register_id": Param(
            None, type=["null", "string"], minLength=1, description="Shift close: register id."
        ),
        "register_shift_id": Param(
            None,
            type=["null", "string"],
            minLength=1,
            description="Shift close: the closed register shift id.",
        ),
        **WINDOW_PARAMS,
    },
)
def iseller_sales_to_accurate() -> None:
    sync_tasks(SalesStream)


iseller_sales_to_accurate()
