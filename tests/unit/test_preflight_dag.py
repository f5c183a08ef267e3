"""The preflight DAG file parses in a real DagBag: manual only, one task, read-only docs."""

from __future__ import annotations

from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "iseller_accurate_preflight.py"


def test_preflight_dag_parses_manual_with_one_task() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags["iseller_accurate_preflight"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: manual only
    assert [t.task_id for t in dag.tasks] == ["preflight"]
    task = dag.tasks[0]
    assert task.retries == 1  # only for a task that could not start; problems fail at once
    assert task.pool == "accurate_api"
    assert task.owner == "iseller-accurate"
    assert "preflight" in dag.tags
    assert "without writing anything" in dag.doc_md
    assert len(task.on_failure_callback) == 2 and task.on_success_callback
