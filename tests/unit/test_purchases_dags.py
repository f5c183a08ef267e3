"""The two DAG files of the Accurate -> iSeller direction load cleanly and follow the project's policy."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "accurate_webhooks_to_iseller.py"))
    bag.process_file(str(DAGS / "accurate_webhook_maintenance.py"))
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"accurate_webhooks_to_iseller", "accurate_webhook_maintenance"} <= set(dagbag.dag_ids)


def test_ingestion_dag_is_event_driven_with_a_safety_poll(dagbag):
    dag = dagbag.dags["accurate_webhooks_to_iseller"]
    assert dag.max_active_runs == 1 and not dag.catchup
    assert [t.task_id for t in dag.tasks] == ["process_events"]
    timetable = dag.timetable
    assert "accurate_webhook_events" in repr(timetable.asset_condition)
    assert dag.doc_md and "clear the failed task" in dag.doc_md


def test_maintenance_dag_tasks_and_params(dagbag):
    dag = dagbag.dags["accurate_webhook_maintenance"]
    assert {t.task_id for t in dag.tasks} == {"renew_subscription", "catch_up", "signal_new_events"}
    assert set(dag.params) == {"window_start", "window_end"}
    signal = dag.get_task("signal_new_events")
    assert [o.name for o in signal.outlets] == ["accurate_webhook_events"]


@pytest.mark.parametrize("dag_id", ["accurate_webhooks_to_iseller", "accurate_webhook_maintenance"])
def test_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "accurate" in dag.tags and "webhooks" in dag.tags
    for task in dag.tasks:
        assert task.owner == "iseller-accurate" and task.retries >= 1
