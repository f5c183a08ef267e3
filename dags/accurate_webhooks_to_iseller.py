"""
### Accurate webhooks to iSeller

Goods bought from suppliers are entered in Accurate; this DAG brings them into iSeller stock:
**receive items** and **purchase invoices** (lines not received with a receive item) become iSeller
**transfers in** at the outlet mapped to the line's warehouse, **purchase returns** become
**transfers out**. The iSeller `reference_code` is `ACC-RI-<number>` (`ACC-PI-`, `ACC-PRT-`), looked up
with GetTransfers before every CreateTransfer, so nothing is ever created twice. An edited document
gets an adjusting transfer for the difference; a deleted one is reversed.

**When it runs**: within seconds of a delivery. The receiver
`POST /integrations/accurate/webhook?token=...` stores each event in the ledger
(`sync.webhook_events`), answers 200, then updates the asset `accurate_webhook_events`, which
schedules this DAG (a burst of deliveries coalesces into few runs). Every 10 minutes a run starts
anyway, for events whose signal was lost. A run processes the pending events oldest first.

**Event types** other than PURCHASE_ORDER, RECEIVE_ITEM, PURCHASE_INVOICE and PURCHASE_RETURN are
recorded as `ignored`, never failed. A purchase order becomes a pending transfer in iSeller; the
receive item naming it completes it; closing or deleting the order cancels what is still pending.

**Failed events** (a product without that SKU in iSeller, an unmapped warehouse, a deleted document,
an iSeller refusal) fail alone, with their reason in the task log and on the Webhook Log page; the
task turns red. Repair the cause, then **clear the failed task**: exactly the failed events of that
run are processed again.

**Invalid settings** (Variable `iseller_accurate_settings`): the run fails at once, without retries,
naming the key; the events stay pending and the first run after the repair applies them.

Missed deliveries and the 7-day subscription are handled by DAG `accurate_webhook_maintenance`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from include.iseller_accurate.purchases.events import ACCURATE_WEBHOOK_EVENTS
from include.iseller_accurate.tasks import DEFAULT_ARGS, run_webhook_events

#: Safety net: a run every 10 minutes even without a signal from the receiver.
POLL_CRON = "*/10 * * * *"


@dag(
    dag_id="accurate_webhooks_to_iseller",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(POLL_CRON, timezone="UTC"), assets=ACCURATE_WEBHOOK_EVENTS
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["accurate", "iseller", "purchases", "webhooks"],
)
def accurate_webhooks_to_iseller() -> None:
    @task(task_id="process_events", execution_timeout=timedelta(minutes=30))
    def process_events(**context: Any) -> dict[str, Any]:
        """Apply the pending Accurate purchase events to iSeller; fail when any event failed."""
        return run_webhook_events(context)

    process_events()


accurate_webhooks_to_iseller()
