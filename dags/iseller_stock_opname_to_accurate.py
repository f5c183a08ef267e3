"""
### iSeller stock opname to Accurate

Each completed iSeller stock take becomes an Accurate **item adjustment** `SO/<stock take number>`:
per item whose count differs, `ADJUSTMENT_IN` or `ADJUSTMENT_OUT` of |counted - system| units in the
outlet's warehouse, with the iSeller buying price as unit cost, on the outlet's `adjustment_account`.

**Order**: the difference was counted against the stock after every earlier movement of the outlet,
so the adjustment waits (`blocked`, with the reason) until every earlier sale, refund, transfer and
the previous stock take of that outlet are in Accurate. It is then posted by whichever sync posts the
last of them: nothing has to be re-ordered by hand.

**When it runs** (settings Variable `iseller_accurate_settings`): `transfer_sync_scheduled` true runs
at `transfer_sync_times` (in `timezone`); false runs every minute (real time).

**Sync refresh**: when `load` is red, read the reasons (log or Sync Status page). A stock opname that
waits for another document needs that document repaired; one that failed itself (missing
`adjustment_account`, a product without SKU) needs its own repair, then clear `load`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.iseller_accurate.schedules import fallback_schedule, transfer_schedule
from include.iseller_accurate.settings import settings_for_parsing, settings_notice
from include.iseller_accurate.streams.stock_opname import StockOpnameStream
from include.iseller_accurate.tasks import DEFAULT_ARGS, WINDOW_PARAMS, sync_tasks

# An invalid settings Variable must not make the DAG vanish: fallback schedule, runs fail naming the key.
settings, settings_error = settings_for_parsing()


@dag(
    dag_id="iseller_stock_opname_to_accurate",
    schedule=fallback_schedule() if settings_error else transfer_schedule(settings),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=(__doc__ or "") + settings_notice(settings_error),
    tags=["iseller", "accurate", "stock_opname"],
    params={**WINDOW_PARAMS},
)
def iseller_stock_opname_to_accurate() -> None:
    sync_tasks(StockOpnameStream)


iseller_stock_opname_to_accurate()
