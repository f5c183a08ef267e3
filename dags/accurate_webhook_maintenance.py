"""
### Accurate webhook maintenance

Accurate's webhooks need two kinds of care that deliveries themselves cannot give:

- **Renewal.** A subscription stays active for at most 7 days and then stops *silently*. Task
  `renew_subscription` calls `webhook-renew.do` on every run (every 15 minutes), so the
  subscription always has close to 7 days left; the expiry Accurate answers is kept in
  `sync.webhook_subscription`. Renewing is cheap and idempotent, and it does not depend on our clock
  agreeing with Accurate's. A refused renewal fails the task (red in the grid) after its retries.
- **Catch-up.** Deliveries can be lost (the receiver or the network was down; Accurate's retries are
  undocumented). Task `catch_up` reads `webhook-history.do` from the last bookmark (minus one hour of
  overlap) to the run's time, in 24-hour windows, and stores every event not stored yet (same
  `uuid` key as the receiver, so an event that also arrives late is kept once). When it recovered
  anything, `signal_new_events` updates the asset `accurate_webhook_events`, which starts
  `accurate_webhooks_to_iseller`.

**Backfill**: trigger with `{"window_start": "...", "window_end": "..."}` (ISO-8601) to re-read a
given window (Accurate keeps about a month); the bookmark is not moved by such a run. A value that
is not a date and time is refused by the API (400); one end only, a reversed window or an unknown
key fails `catch_up` at once, naming the key.

This DAG does not read the settings Variable: an invalid Variable does not stop the renewal (the
subscription would lapse silently) nor the catch-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task

from include.iseller_accurate.purchases.events import ACCURATE_WEBHOOK_EVENTS
from include.iseller_accurate.tasks import DEFAULT_ARGS, HISTORY_WINDOW_PARAMS, run_catch_up, run_renewal

MAINTENANCE_CRON = "*/15 * * * *"


@dag(
    dag_id="accurate_webhook_maintenance",
    schedule=CronTriggerTimetable(MAINTENANCE_CRON, timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["accurate", "iseller", "webhooks", "maintenance"],
    params=HISTORY_WINDOW_PARAMS,
)
def accurate_webhook_maintenance() -> None:
    @task(task_id="renew_subscription", execution_timeout=timedelta(minutes=5))
    def renew_subscription() -> dict[str, Any]:
        """Extend the webhook subscription (it lapses silently after 7 days)."""
        return run_renewal()

    @task(task_id="catch_up", execution_timeout=timedelta(minutes=20))
    def catch_up(**context: Any) -> dict[str, Any]:
        """Store the deliveries missed since the last catch-up (webhook history)."""
        return run_catch_up(context)

    @task(task_id="signal_new_events", outlets=[ACCURATE_WEBHOOK_EVENTS])
    def signal_new_events(summary: Any) -> int:
        """Start the ingestion DAG when the catch-up recovered events (skipped otherwise)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not summary.get("recovered"):
            raise AirflowSkipException("no missed deliveries recovered")
        return int(summary["recovered"])

    renew_subscription()
    signal_new_events(catch_up())


accurate_webhook_maintenance()
