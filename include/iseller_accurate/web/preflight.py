"""The **Preflight** page: the latest go-live preflight result (DAG ``iseller_accurate_preflight``).

Shown in the Airflow UI's Browse menu next to Sync Status and Webhook Log (same authentication: the
Airflow session cookie or a bearer token, Airflow's auth manager decides). A user who may read the
preflight DAG's task instances sees every problem of the latest run (or of an earlier one, ``?run=<id>``)
with its fix, the discovered Accurate host, and the earlier runs. Read-only: the page triggers nothing.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from include.iseller_accurate import preflight
from include.iseller_accurate.airflow_internals import may_read_task_instances
from include.iseller_accurate.web import auth, shared

router = APIRouter(prefix=shared.PAGES_PREFIX)
#: Earlier runs listed under the result.
HISTORY = 20
STATUS_LABELS = {"clean": "Clean", "warnings": "Warnings only", "failed": "Problems found"}


def external_views() -> list[dict[str, Any]]:
    """The page's entry in the Airflow UI navigation (Browse > Preflight)."""
    return [shared.nav_view("Preflight", "preflight", "preflight")]


def _may_read(user: Any) -> bool:
    """True when ``user`` may read the task instances of the preflight DAG."""
    return may_read_task_instances(user, preflight.DAG_ID)


def _runs() -> list[dict[str, Any]]:
    with shared.ledger() as conn:
        return preflight.recent_results(conn, HISTORY)


def _present(run: dict[str, Any]) -> dict[str, Any]:
    problems = [p for p in run.get("problems") or [] if isinstance(p, dict)]
    return {
        **run,
        "headline": preflight.headline(run),
        "status_label": STATUS_LABELS.get(run["status"], run["status"]),
        "errors_list": [p for p in problems if p.get("severity") == "error"],
        "warnings_list": [p for p in problems if p.get("severity") != "error"],
        "checked_local": run["checked_at"].isoformat(timespec="seconds") if run.get("checked_at") else "",
        "run_link": shared.airflow_ui_path(preflight.DAG_ID, run["run_id"]),
    }


def _render(user: Any, selected: int | None) -> Response:
    if not _may_read(user):
        return shared.denied("You may not read the runs of the preflight DAG.")
    started = time.perf_counter()
    runs = _runs()
    shown = next((r for r in runs if r["id"] == selected), None) if selected else (runs[0] if runs else None)
    if selected and shown is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no preflight run {selected} among the last {HISTORY}"
        )
    return shared.render(
        "preflight.html",
        run=_present(shown) if shown else None,
        runs=[_present(r) for r in runs],
        dag_id=preflight.DAG_ID,
        dag_link=shared.airflow_ui_path(preflight.DAG_ID),
        elapsed_ms=(time.perf_counter() - started) * 1000,
        user_name=shared.user_name(user),
    )


@router.get("/preflight", response_class=HTMLResponse, name="operator_preflight")
async def preflight_page(request: Request, run: int | None = None) -> Response:
    """Preflight: the latest result (or run ``run``), each problem with its fix."""
    return await auth.signed_in_page(request, _render, run)


@router.get("/api/preflight", name="operator_api_preflight")
async def preflight_json(request: Request) -> JSONResponse:
    """The latest result as JSON (401 without a signed-in user, 403 without read access)."""
    user = await auth.api_user(request)
    if not await run_in_threadpool(_may_read, user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not read the runs of the preflight DAG.")
    runs = await run_in_threadpool(_runs)
    if not runs:
        return JSONResponse({"run": None})
    latest = runs[0]
    return JSONResponse(
        {
            "run": {
                "id": latest["id"],
                "run_id": latest["run_id"],
                "checked_at": latest["checked_at"].isoformat(),
                "status": latest["status"],
                "errors": latest["errors"],
                "warnings": latest["warnings"],
                "facts": latest["facts"],
                "problems": latest["problems"],
            }
        }
    )
