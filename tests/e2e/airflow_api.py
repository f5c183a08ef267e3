"""A small client for the REST API of the running local Airflow (``make up`` / ``make test``).

Authentication: ``POST /auth/token`` with ``{"username", "password"}`` (the simple auth manager's
login route, answers 201 ``{"access_token": ...}``); the token goes in ``Authorization: Bearer``.
A 401 later (expired token) logs in again once.

    api = AirflowAPI()                       # http://127.0.0.1:$AIRFLOW_PORT, admin / admin
    api.unpause("iseller_sales_to_accurate")
    run = api.trigger_dag("iseller_sales_to_accurate", {"outlet_id": "..."})
    state = api.wait_for_run("iseller_sales_to_accurate", run["dag_run_id"], timeout=300)
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
UNFINISHED_TI_STATES = frozenset(
    {None, "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}
)


def airflow_base_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('AIRFLOW_PORT', '8080')}"


def accurate_sandbox_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ACCURATE_SANDBOX_PORT', '8181')}"


def iseller_sandbox_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ISELLER_SANDBOX_PORT', '8182')}"


class AirflowAPIError(RuntimeError):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        super().__init__(
            f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} "
            f"{response.text[:2000]}"
        )


class AirflowAPI:
    def __init__(
        self,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = (base_url or airflow_base_url()).rstrip("/")
        self.username = username or os.environ.get("AIRFLOW_ADMIN_USER", "admin")
        self.password = password or os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    # --- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        self.http.close()

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no login needed)."""
        return self._check(self.http.get("/api/v2/monitor/health"))

    def get_token(self, username: str | None = None, password: str | None = None) -> str:
        resp = self.http.post(
            "/auth/token",
            json={"username": username or self.username, "password": password or self.password},
        )
        return str(self._check(resp)["access_token"])

    def login(self) -> str:
        self._token = self.get_token()
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; the raw response (no status check)."""
        if self._token is None:
            self.login()
        extra_headers = kwargs.pop("headers", None) or {}
        for attempt in (1, 2):
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}"}
            resp = self.http.request(method, path, headers=headers, **kwargs)
            if resp.status_code == 401 and attempt == 1:
                self.login()
                continue
            return resp
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated request; its JSON body, AirflowAPIError on HTTP >= 400."""
        return self._check(self.request(method, path, **kwargs))

    @staticmethod
    def _check(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise AirflowAPIError(resp)
        if not resp.content:
            return None
        return resp.json()

    # --- DAGs -----------------------------------------------------------------------------------
    def dags(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/api/v2/dags", params={"limit": 100, "offset": len(found)})
            found.extend(page["dags"])
            if not page["dags"] or len(found) >= page["total_entries"]:
                return found

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{dag_id}")

    def import_errors(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v2/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fails with the import errors."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request("GET", f"/api/v2/dags/{dag_id}")
            if resp.status_code == 200:
                return resp.json()
            if time.monotonic() >= deadline:
                errors = [f"{e['filename']}: {e['stack_trace'][-800:]}" for e in self.import_errors()]
                raise TimeoutError(f"DAG {dag_id} not parsed after {timeout}s; import errors: {errors}")
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, False)

    def pause(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, True)

    # --- DAG runs -------------------------------------------------------------------------------
    def post_dag_run(self, dag_id: str, body: dict[str, Any]) -> httpx.Response:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` with ``body`` as is (for tests of refusals)."""
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def trigger_dag(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        logical_date: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Trigger a run; returns the DAG run (``dag_run_id``, ``state``, ...)."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self._check(self.post_dag_run(dag_id, body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str, **params: Any) -> list[dict[str, Any]]:
        params.setdefault("limit", 100)
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0, poll: float = 1.0) -> str:
        """Wait until the run is ``success`` or ``failed``; returns that state.

        TimeoutError (with the task states) when it is still unfinished after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_RUN_STATES:
                return str(state)
            if time.monotonic() >= deadline:
                tis = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout}s; tasks: {tis}")
            time.sleep(poll)

    # --- task instances -------------------------------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.call(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}`` (mapped tasks: ``task_id[map_index]``)."""
        states: dict[str, str | None] = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"
            states[key] = ti["state"]
        return states

    def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: list[str] | None = None,
        only_failed: bool = True,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """``POST /api/v2/dags/{dag_id}/clearTaskInstances`` for one run (not a dry run).

        Returns the cleared task instances. ``options``: other fields of the body
        (``include_downstream``, ``reset_dag_runs``, ...).
        """
        body: dict[str, Any] = {
            "dry_run": False,
            "dag_run_id": run_id,
            "only_failed": only_failed,
            **options,
        }
        if task_ids is not None:
            body["task_ids"] = task_ids
        return self.call("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text (one line per structured log event)."""
        data = self.call(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True, "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        content = data.get("content", [])
        if isinstance(content, str):
            return content
        lines = []
        for entry in content:
            if isinstance(entry, dict):
                lines.append(" ".join(str(entry.get(k, "")) for k in ("timestamp", "level", "event")).strip())
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    # --- variables and pools --------------------------------------------------------------------
    def get_variable(self, key: str, deserialize_json: bool = False) -> Any:
        """The Variable's value (a string, or parsed JSON), or None when it does not exist."""
        resp = self.request("GET", f"/api/v2/variables/{key}")
        if resp.status_code == 404:
            return None
        value = self._check(resp)["value"]
        return json.loads(value) if deserialize_json else value

    def set_variable(self, key: str, value: Any, description: str | None = None) -> None:
        """Create or replace a Variable; a non-string value is stored as JSON."""
        text = value if isinstance(value, str) else json.dumps(value)
        body: dict[str, Any] = {"key": key, "value": text}
        if description is not None:
            body["description"] = description
        resp = self.request("PATCH", f"/api/v2/variables/{key}", json=body)
        if resp.status_code == 404:
            resp = self.request("POST", "/api/v2/variables", json=body)
        self._check(resp)

    def delete_variable(self, key: str) -> None:
        resp = self.request("DELETE", f"/api/v2/variables/{key}")
        if resp.status_code != 404:
            self._check(resp)

    def pool(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/pools/{name}")


def stack_required() -> bool:
    """True in CI (env ``CI``) and under ``make test`` (env ``SYNC_STACK_REQUIRED``)."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
        for name in ("CI", "SYNC_STACK_REQUIRED")
    )


def skip_or_fail(reason: str) -> None:
    """Skip the test for a missing stack, or fail it where the stack must be running."""
    import pytest

    if stack_required():
        pytest.fail(f"{reason}; the local stack must be running here (CI / make test start it)")
    pytest.skip(f"{reason}; start the local stack with `make up` to run the end-to-end tests")


def stack_is_up(timeout: float = 20.0) -> str | None:
    """None when Airflow answers its health check, else the reason it does not."""
    try:
        resp = httpx.get(f"{airflow_base_url()}/api/v2/monitor/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"Airflow API not reachable at {airflow_base_url()} ({exc.__class__.__name__})"
    if resp.status_code != 200:
        return f"Airflow health check at {airflow_base_url()} answered HTTP {resp.status_code}"
    return None
