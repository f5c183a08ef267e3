"""
### Go-live preflight

Checks, **without writing anything** to iSeller or Accurate, that the sync has everything it needs,
and lists each problem with its fix. Run it before the first sync and after every change to the
outlet mapping (settings Variable `iseller_accurate_settings`). `make demo` runs it once.

It checks: both connections (`accurate_api`, and the discovered Accurate data host; `iseller_api`);
the Accurate webhook subscription; for every mapped outlet, that its branch, warehouse, accounts
(cash, payment types, adjustment) and walk-in customer exist in Accurate; active iSeller outlets that
are not mapped; payment types used in the last 30 days that map to no account; products without SKU;
SKUs with no Accurate item (all counted, the first 50 listed); Accurate items that are not inventory
items where iSeller tracks stock.

**Result**: Browse > **Preflight** shows the latest run. The run **fails** when it finds an error
(something that would make documents fail); warnings (e.g. products without SKU) do not fail it. The
task log ends with the list, each line naming the outlet, payment type or SKU and the fix. A found
problem is not retried: repair, then trigger it again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from include.iseller_accurate.alerts import SyncFailureNotifier
from include.iseller_accurate.preflight import DAG_ID, note_outcome, run_task
from include.iseller_accurate.tasks import ACCURATE_POOL, DEFAULT_ARGS

PREFLIGHT_ARGS: dict[str, Any] = {
    **DEFAULT_ARGS,
    # A problem found fails at once (AirflowFailException: no retry); one retry is kept for a task
    # that could not even start (e.g. Airflow's own API too busy to hand it over).
    "retries": 1,
    "on_failure_callback": [SyncFailureNotifier(), note_outcome],
    "on_success_callback": [note_outcome],
}


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=PREFLIGHT_ARGS,
    doc_md=__doc__,
    tags=["iseller", "accurate", "preflight"],
)
def iseller_accurate_preflight() -> None:
    @task(task_id="preflight", pool=ACCURATE_POOL, execution_timeout=timedelta(minutes=30))
    def preflight(**context: Any) -> dict[str, Any]:
        """Read both sides, store the result, end the log with the problems (counts to XCom)."""
        return run_task(context)

    preflight()


iseller_accurate_preflight()
