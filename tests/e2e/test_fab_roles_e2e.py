"""The shop's roles under the FAB auth manager, against the running stack (issue 10, real users and roles).

Runs only when the stack runs with ``AIRFLOW__CORE__AUTH_MANAGER`` = the FAB auth manager (the Celery
lane); under the simple auth manager it is skipped. It runs the project's own role set-up
(``python -m include.iseller_accurate.roles``, twice: idempotent; a permission added by hand is
removed), creates one ``SyncViewer`` and one
``SyncOperator`` user with FAB's CLI, and checks, through the real API server:

- anonymous visitors are refused (pages: redirect to FAB's login; JSON and Refresh: 401);
- the viewer sees the pages and a failed document, but Refresh is refused by Airflow (403) and the
  task instance stays failed;
- the operator's Refresh really clears the failed task instance;
- neither may read a connection or the variables through the REST API (403).

The failed task instance is real: a run of a paused sync DAG whose task the admin marks failed, and a
ledger row that names it (as a load task would have written it); both are removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from include.iseller_accurate.ledger import dsn_from_connection
from include.iseller_accurate.roles import OPERATOR_ROLE, VIEWER_ROLE
from tests.e2e.airflow_api import AirflowAPI, airflow_base_url

REPO = Path(__file__).resolve().parents[2]
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
DAG_ID = "iseller_stock_opname_to_accurate"
PAGES = "/integrations/operator"

pytestmark = pytest.mark.skipif(
    os.environ.get("AIRFLOW__CORE__AUTH_MANAGER", "") != FAB,
    reason="the stack does not run the FAB auth manager (AIRFLOW__CORE__AUTH_MANAGER)",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)


def _roles(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "include.iseller_accurate.roles", *args)


class User:
    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password
        self.api = AirflowAPI(username=name, password=password)


@pytest.fixture(scope="module")
def users(airflow: AirflowAPI) -> Iterator[dict[str, User]]:
    """The roles from the project's set-up, and a viewer and an operator who hold them."""
    first = _roles()
    assert first.returncode == 0, first.stderr[-2000:]
    suffix = uuid.uuid4().hex[:8]
    made: dict[str, User] = {}
    try:
        for key, role in (("viewer", VIEWER_ROLE), ("operator", OPERATOR_ROLE)):
            user = User(f"sync-{key}-{suffix}", secrets.token_urlsafe(18))
            created = _run(
                "airflow", "users", "create", "-u", user.name, f"--password={user.password}", "-r", role,
                "-f", key, "-l", "e2e", "-e", f"{user.name}@example.invalid",
            )  # fmt: skip
            assert created.returncode == 0, created.stderr[-2000:]
            made[key] = user
        yield made
    finally:
        for user in made.values():
            user.api.close()
            _run("airflow", "users", "delete", "-u", user.name)


@pytest.fixture
def failed_row(airflow: AirflowAPI, users: dict[str, User]) -> Iterator[dict[str, Any]]:
    """A failed task instance of a sync DAG (paused: nothing runs it) and a failed ledger row naming it."""
    was_paused = airflow.dag(DAG_ID)["is_paused"]
    airflow.pause(DAG_ID)
    run = airflow.trigger_dag(DAG_ID, run_id=f"fab-roles-{uuid.uuid4().hex[:10]}")
    run_id = run["dag_run_id"]
    task_id = sorted(ti["task_id"] for ti in airflow.task_instances(DAG_ID, run_id))[0]
    airflow.call(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}",
        json={"new_state": "failed"},
    )
    source_id = f"FAB-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
        row_id = conn.execute(
            """INSERT INTO sync.documents (data_type, source_id, source_key, source_number, source_date,
                   target_module, status, reason, dag_id, run_id, task_id, map_index, try_number)
               VALUES ('stock_opname', %s, %s, %s, %s, 'item-adjustment', 'failed',
                   'e2e: failed on purpose (FAB roles test)', %s, %s, %s, -1, 1)
               RETURNING id""",
            (source_id, source_id, source_id, datetime.now(UTC), DAG_ID, run_id, task_id),
        ).fetchone()[0]  # type: ignore[index]
    try:
        yield {"id": row_id, "source_id": source_id, "run_id": run_id, "task_id": task_id}
    finally:
        with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
            conn.execute("DELETE FROM sync.documents WHERE id = %s", (row_id,))
        airflow.request("DELETE", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        airflow.set_paused(DAG_ID, was_paused)


def _ti_state(airflow: AirflowAPI, row: dict[str, Any]) -> str | None:
    return airflow.task_states(DAG_ID, row["run_id"])[row["task_id"]]


def _refresh(user: User, row_id: int) -> httpx.Response:
    return user.api.request("POST", f"{PAGES}/api/refresh", json={"kind": "documents", "ids": [row_id]})


def test_role_setup_is_idempotent_and_removes_what_was_added_by_hand(users: dict[str, User]) -> None:
    again = _roles()
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{VIEWER_ROLE}: 0 permission(s) added, 0 removed" in again.stdout
    assert f"{OPERATOR_ROLE}: 0 permission(s) added, 0 removed" in again.stdout
    assert _roles("--check").returncode == 0
    # a permission added by hand (FAB's CLI, as an admin might in the UI) is reported, then removed
    drift = _run("airflow", "roles", "add-perms", VIEWER_ROLE, "-a", "can_read", "-r", "Variables")
    assert drift.returncode == 0, drift.stderr[-2000:]
    checked = _roles("--check")
    assert checked.returncode == 1 and '"Variables"' in checked.stdout, checked.stdout[-2000:]
    repaired = _roles()
    assert f"{VIEWER_ROLE}: 0 permission(s) added, 1 removed" in repaired.stdout, repaired.stdout
    assert _roles("--check").returncode == 0


def test_anonymous_visitors_are_refused(users: dict[str, User]) -> None:
    with httpx.Client(base_url=airflow_base_url(), timeout=30.0, follow_redirects=False) as http:
        for page in ("sync-status", "webhook-log"):
            answer = http.get(f"{PAGES}/{page}")
            assert answer.status_code == 303 and "/auth/login" in answer.headers["location"]
        assert http.get(f"{PAGES}/api/documents").status_code == 401
        assert http.post(f"{PAGES}/api/refresh", json={"kind": "documents", "ids": [1]}).status_code == 401


def test_viewer_sees_the_failed_document_but_refresh_is_refused(
    airflow: AirflowAPI, users: dict[str, User], failed_row: dict[str, Any]
) -> None:
    viewer = users["viewer"]
    for page in ("sync-status", "webhook-log"):
        answer = viewer.api.request("GET", f"{PAGES}/{page}")
        assert answer.status_code == 200, answer.text[:500]
    listed = viewer.api.call("GET", f"{PAGES}/api/documents", params={"q": failed_row["source_id"]})
    assert [row["id"] for row in listed["rows"]] == [failed_row["id"]]
    assert listed["rows"][0]["refreshable"] is True

    answer = _refresh(viewer, failed_row["id"])
    assert answer.status_code == 403, answer.text
    (run,) = answer.json()["runs"]
    assert run["ok"] is False and run["status_code"] == 403, run
    assert "may not clear" in run["message"]
    # and straight at Airflow's REST API: the same refusal
    direct = viewer.api.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": failed_row["run_id"], "only_failed": True, "dry_run": True},
    )
    assert direct.status_code == 403, direct.text
    assert _ti_state(airflow, failed_row) == "failed"


def test_operator_refresh_clears_the_failed_task(
    airflow: AirflowAPI, users: dict[str, User], failed_row: dict[str, Any]
) -> None:
    operator = users["operator"]
    assert operator.api.request("GET", f"{PAGES}/sync-status").status_code == 200
    answer = _refresh(operator, failed_row["id"])
    assert answer.status_code == 200, answer.text
    (run,) = answer.json()["runs"]
    assert run["ok"] is True, run
    assert {"task_id": failed_row["task_id"], "map_index": -1} in run["cleared"]
    assert _ti_state(airflow, failed_row) != "failed"


@pytest.mark.parametrize("who", ["operator", "viewer"])
def test_sync_roles_cannot_read_connections_or_variables(
    airflow: AirflowAPI, users: dict[str, User], who: str
) -> None:
    api = users[who].api
    for conn_id in ("sync_db", "accurate_api"):
        answer = api.request("GET", f"/api/v2/connections/{conn_id}")
        assert answer.status_code == 403, (conn_id, answer.status_code, answer.text[:300])
    assert api.request("GET", "/api/v2/connections").status_code == 403
    assert api.request("GET", "/api/v2/variables").status_code == 403
    assert api.request("GET", "/api/v2/config").status_code == 403
    # the admin is not refused (the connections live in the environment here: 404, not 403)
    assert airflow.request("GET", "/api/v2/connections/sync_db").status_code in (200, 404)
