"""
### iSeller transfers to Accurate

iSeller transfers between outlets (the warehouse outlet included) become Accurate **item transfers**:
the **transfer out** `TO/<transfer number>` when the goods leave (they are then in transit), the
**transfer in** `TI/<transfer number>` when they arrive, naming its transfer out. A partial receipt
adds a **transfer difference** `TD/<transfer number>`: an item adjustment out of the destination's
warehouse for the missing units. Supplier goods in/out are not sent back (they come from Accurate).

**Order**: a transfer in waits for its transfer out. While the transfer out fails, the transfer in is
`blocked` with that reason; once the transfer out is repaired and synced, the transfer in follows by
itself, oldest first.

**When it runs** (settings Variable `iseller_accurate_settings`): `transfer_sync_scheduled` true runs
at `transfer_sync_times` (in `timezone`); false runs every minute (real time).

**Sync refresh**: when `load` is red, some transfers failed (see its log or the Sync Status page).
Repair the cause (create the item in Accurate, map the outlet, set the SKU in iSeller), then clear
`load`: exactly the documents not yet in Accurate are re-read and posted, in order.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.iseller_accurate.schedules import fallback_schedule, transfer_schedule
from include.iseller_accurate.settings import settings_for_parsing, settings_notice
from include.iseller_accurate.streams.transfers import TransfersStream
from include.iseller_accurate.tasks import DEFAULT_ARGS, WINDOW_PARAMS, sync_tasks

# An invalid settings Variable must not make the DAG vanish: fallback schedule, runs fail naming the key.
settings, settings_error = settings_for_parsing()


@dag(
    dag_id="iseller_transfers_to_accurate",
    schedule=fallback_schedule() if settings_error else transfer_schedule(settings),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=(__doc__ or "") + settings_notice(settings_error),
    tags=["iseller", "accurate", "transfers"],
    params={**WINDOW_PARAMS},
)
def iseller_transfers_to_accurate() -> None:
    sync_tasks(TransfersStream)


iseller_transfers_to_accurate()
