"""
### Daily reconciliation: do iSeller and Accurate agree?

For each mapped outlet and local day: iSeller's completed orders, net sales, tax, discounts, payments
per payment type and refunds, against Accurate's sales invoices, receipts and returns of the outlet's
branch (read through Accurate's API), and against the sync ledger. Each difference is classified
(not synced yet, missing in Accurate, changed in Accurate, only in Accurate, only in iSeller) with
the documents behind it and the fix. Then iSeller's stock per outlet against Accurate's per
warehouse. Results: the **Reconciliation** page (Browse menu). A red day sends the failure alert
once per outlet and day.

**When it runs**: daily at `reconciliation_time` (settings Variable `iseller_accurate_settings`, in
`timezone`; default 23:30, after the last scheduled sync), for that day and the day before. On
demand for a range: trigger with conf `{"date_from": "2026-11-01", "date_to": "2026-11-30"}`
(at most 62 days a run), optionally `outlet_ids` and `check_stock: false`.

**Re-post** (from the page, or conf `{"repost": [<difference id>, ...]}`): a document deleted in
Accurate is posted again under its own number, only after Accurate confirms by number it is gone.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.iseller_accurate.reconciliation.tasks import DAG_ID, PARAMS, reconciliation_tasks
from include.iseller_accurate.schedules import at_times, fallback_schedule
from include.iseller_accurate.settings import settings_for_parsing, settings_notice
from include.iseller_accurate.tasks import DEFAULT_ARGS

# An invalid settings Variable must not make the DAG vanish: parse on a fallback schedule.
settings, settings_error = settings_for_parsing()


@dag(
    dag_id=DAG_ID,
    schedule=(
        fallback_schedule() if settings_error else at_times([settings.reconciliation_time], settings.timezone)
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=(__doc__ or "") + settings_notice(settings_error),
    tags=["iseller", "accurate", "reconciliation"],
    params=PARAMS,
)
def iseller_accurate_reconciliation() -> None:
    reconciliation_tasks()


iseller_accurate_reconciliation()
