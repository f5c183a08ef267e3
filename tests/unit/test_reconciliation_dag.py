"""The reconciliation DAG loads, runs daily at ``reconciliation_time`` and picks its days right."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from include.iseller_accurate.reconciliation.tasks import day_range
from include.iseller_accurate.settings import parse_settings

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    import os

    from airflow.dag_processing.dagbag import DagBag

    old = os.environ.get("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS")
    os.environ["AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS"] = json.dumps({"reconciliation_time": "01:15"})
    try:
        return DagBag(dag_folder=str(DAGS / "iseller_accurate_reconciliation.py"))
    finally:
        if old is None:
            os.environ.pop("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", None)
        else:
            os.environ["AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS"] = old


def test_dag_loads_with_its_tasks_params_and_schedule(dagbag):
    assert dagbag.import_errors == {}
    dag = dagbag.dags["iseller_accurate_reconciliation"]
    assert [t.task_id for t in sorted(dag.tasks, key=lambda t: t.task_id)] == [
        "check_stock",
        "reconcile",
        "repost",
    ]
    assert dag.get_task("check_stock").upstream_task_ids == {"reconcile"}
    assert dag.get_task("reconcile").upstream_task_ids == {"repost"}
    assert set(dag.params) == {"date_from", "date_to", "outlet_ids", "repost", "check_stock"}
    assert dag.max_active_runs == 1 and not dag.catchup
    assert "15 1 * * *" in repr(dag.timetable) and "Asia/Jakarta" in repr(dag.timetable)
    for task in dag.tasks:
        assert task.owner == "iseller-accurate" and task.pool == "accurate_api"


def test_default_days_are_the_runs_local_day_and_the_day_before():
    settings = parse_settings(None)
    context = {"logical_date": datetime(2026, 11, 30, 16, 30, tzinfo=UTC)}  # 23:30 in Jakarta
    assert day_range({}, context, settings) == [date(2026, 11, 29), date(2026, 11, 30)]
    one = day_range({"date_from": "2026-11-03"}, context, settings)
    assert one == [date(2026, 11, 3)]
    assert len(day_range({"date_from": "2026-11-01", "date_to": "2026-11-30"}, context, settings)) == 30
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        day_range({"date_from": "30/11/2026"}, context, settings)
