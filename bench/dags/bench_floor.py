"""The floor of the real-time and shift-close benchmarks: one task that does nothing.

Scheduled on the same asset as real-time sales (``iseller_order_notifications``), so each iSeller
order webhook starts it exactly as it starts ``iseller_sales_to_accurate``; triggered through the REST
API for the shift-close floor. What its runs take is what Airflow alone costs on this machine (asset
event to run, run to task start, task process start), measured in the same run as the sync.

Loaded only by a stack started for the benchmarks (``bench/stack-env.sh``: a second DAG bundle on
``bench/dags``); never part of the deployed ``dags/`` folder.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from include.iseller_accurate.schedules import ISELLER_ORDERS


@dag(
    dag_id="bench_floor",
    schedule=[ISELLER_ORDERS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=16,
    is_paused_upon_creation=False,
    tags=["benchmark"],
)
def bench_floor() -> None:
    @task
    def nothing() -> None:
        """Does nothing: the floor."""

    nothing()


bench_floor()
