"""Every DAG file in ``dags/`` loads in a real ``DagBag`` and follows the project's DAG policy.

Parsed three times: on a fresh deployment (no settings Variable, no connections: what the DAG
processor sees before the operator configured anything), on a configured one (the Variable and the
``sync_db``, ``iseller_api``, ``accurate_api`` connections present), and with a settings Variable the
sync cannot use (a DAG must never vanish for it: its runs fail naming the key instead). Each time: no
import error, every file gives its DAG, and every DAG has its documentation, tags, and tasks owned
by ``iseller-accurate`` with retries and the failure notifier (the alert to the people on call).

The Variable and the connections come from ``AIRFLOW_VAR_*`` / ``AIRFLOW_CONN_*``, the environment
secrets backend Airflow reads before its metadata database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from include.iseller_accurate.alerts import SyncFailureNotifier

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(path.name for path in DAGS.glob("*.py") if not path.name.startswith("_"))
OWNER = "iseller-accurate"

SETTINGS = {
    "sales_sync_mode": "scheduled",
    "sales_sync_times": ["21:30"],
    "transfer_sync_scheduled": True,
    "transfer_sync_times": ["23:00"],
    "timezone": "Asia/Jakarta",
    "reconciliation_time": "23:45",
    "outlets": {"outlet-1": {"name": "Jakarta 01", "branch": "Jakarta", "warehouse": "Gudang Jakarta"}},
}
CONNECTIONS = {
    "sync_db": {
        "conn_type": "postgres", "host": "127.0.0.1", "port": 9, "schema": "sync_db", "login": "sync",
        "password": "not-a-real-password", "extra": {"sslmode": "require"},
    },
    "iseller_api": {
        "conn_type": "http", "host": "https://isellershop.com", "login": "client-id",
        "password": "client-secret", "extra": {"webhook_api_key": "webhook-key"},
    },
    "accurate_api": {
        "conn_type": "http", "host": "https://account.accurate.id", "password": "api-token",
        "extra": {"signature_secret": "signature-secret"},
    },
}


@pytest.fixture(params=["absent", "present", "invalid_settings"], scope="module")
def dagbag(request: pytest.FixtureRequest) -> Any:
    """All DAG files parsed by one DagBag, with the Variable and connections absent or present, or
    with a settings Variable the sync cannot use (the DAGs must still be there: see ``settings.py``)."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", raising=False)
        for conn_id in CONNECTIONS:
            mp.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
        if request.param == "present":
            mp.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps(SETTINGS))
            for conn_id, conn in CONNECTIONS.items():
                mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        if request.param == "invalid_settings":
            mp.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps({"reconciliation_time": "25:00"}))
        bag = DagBag(dag_folder=str(DAGS))
        bag.state = request.param
        return bag


def test_every_dag_file_is_checked() -> None:
    assert len(DAG_FILES) >= 7, DAG_FILES


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_every_file_gives_its_dag(dagbag: Any) -> None:
    files = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files == set(DAG_FILES)
    for name in DAG_FILES:  # each DAG is named after its file
        assert name.removesuffix(".py") in dagbag.dag_ids


def test_the_settings_reach_the_dags(dagbag: Any) -> None:
    """Parsing really read the Variable: the configured times are the schedules."""
    sales = repr(dagbag.dags["iseller_sales_to_accurate"].timetable)
    reconciliation = repr(dagbag.dags["iseller_accurate_reconciliation"].timetable)
    if dagbag.state == "present":
        assert "'30 21 * * *'" in sales and "'45 23 * * *'" in reconciliation
    else:
        assert "'30 21 * * *'" not in sales and "'45 23 * * *'" not in reconciliation


@pytest.mark.parametrize("file_name", DAG_FILES)
def test_dag_policy(dagbag: Any, file_name: str) -> None:
    dag = dagbag.dags[file_name.removesuffix(".py")]
    assert dag.doc_md and len(dag.doc_md.strip()) > 200, "doc_md: what it does and what to do when red"
    assert dag.tags and {"iseller", "accurate"} <= set(dag.tags)
    assert not dag.catchup
    assert dag.tasks
    for task in dag.tasks:
        where = f"{dag.dag_id}.{task.task_id}"
        assert task.owner == OWNER, where
        assert task.retries >= 1, where
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert any(isinstance(cb, SyncFailureNotifier) for cb in callbacks), f"{where}: no failure notifier"


@pytest.mark.parametrize("task_id", ["reconcile", "check_stock"])
def test_reconciliation_tasks_fail_at_once_on_invalid_settings(
    monkeypatch: pytest.MonkeyPatch, task_id: str
) -> None:
    """As every sync task: an unusable Variable fails the task at once (no retries), naming the key."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps({"reconciliation_time": "25:00"}))
    bag = DagBag(dag_folder=str(DAGS / "iseller_accurate_reconciliation.py"))
    task = bag.dags["iseller_accurate_reconciliation"].get_task(task_id)
    with pytest.raises(AirflowFailException) as info:
        task.python_callable(None, params={})
    assert "iseller_accurate_settings.reconciliation_time" in str(info.value)
    assert "Repair the Variable iseller_accurate_settings" in str(info.value)
